"""Fault primitives on the nodes of a running stack: pure wiring over stack.control, stack.netns and the Kafka
admin tools. A node is named as `stack status` names it (kafka-2, flink-taskmanager-1, cassandra, ...).

- `kill` sends SIGKILL to the node's process group (the server and any helper it forked), like a power cut of
  that process: no shutdown hook runs; `restart` starts it again from its data and waits until it answers.
- `pause` / `resume`: SIGSTOP / SIGCONT (a long GC pause, a frozen VM): the node keeps its sockets but answers
  nothing.
- `cut` / `join`: the host's end of the node's veth down / up: its packets go nowhere, both ways.
- `partition_leader` and `quorum_leader` find the broker that leads a partition and the active controller.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from connectors import credentials
from connectors.kafka import admin_client
from pipeline.errors import FaultsError
from pipeline.sql import jaas_line
from stack import control, install, netns, processes
from stack.config import StackConfig
from stack.servers import NotReadyError, Server, kafka_node_name, servers

QUORUM_LEADER = Path(__file__).with_name("QuorumLeader.java")


class FaultError(FaultsError):
    """A node is unknown, not running, or a leader could not be found; the message says which."""


def node(cfg: StackConfig, name: str) -> Server:
    for server in servers(cfg):
        if server.name == name:
            return server
    raise FaultError(f"no node {name!r} on this stack; it has: {', '.join(s.name for s in servers(cfg))}")


def _record(cfg: StackConfig, name: str) -> processes.ProcessRecord:
    record = processes.load_record(cfg.run_dir, node(cfg, name).name)
    if record is None or not record.alive():
        raise FaultError(f"{name} is not running; start it with `tenantstream stack up --profile cluster`")
    return record


def _signal(record: processes.ProcessRecord, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record.pid, sig)


def kill(cfg: StackConfig, name: str, timeout: float = 30.0) -> int:
    """SIGKILL to `name`'s process group; return its pid once it is gone."""
    record = _record(cfg, name)
    if record.stopped():  # a stopped process takes SIGKILL too, but say so in the order a reader expects
        _signal(record, signal.SIGCONT)
    _signal(record, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while record.alive():
        with contextlib.suppress(ChildProcessError):
            os.waitpid(record.pid, os.WNOHANG)
        if time.monotonic() > deadline:
            raise FaultError(f"{name} (pid {record.pid}) is still alive {timeout:.0f} s after SIGKILL")
        time.sleep(0.05)
    return record.pid


def stop(cfg: StackConfig, name: str) -> None:
    """Stop `name` cleanly (SIGTERM, its shutdown hooks run), as `stack down` does."""
    processes.stop(_record(cfg, name), cfg.run_dir)


def restart(cfg: StackConfig, name: str, forget_s: float = 60.0) -> int:
    """Start `name` again (in its namespace) and return its pid once it answers its probe.

    A TaskManager's probe asks the JobManager, which lists a killed TaskManager until its heartbeats time out:
    the restart waits until the dead one is gone (at most `forget_s`), so that the probe sees the new one.
    """
    server = node(cfg, name)
    record = processes.load_record(cfg.run_dir, name)
    if record is not None and record.alive():
        raise FaultError(f"{name} is still running (pid {record.pid}); kill or stop it first")
    deadline = time.monotonic() + forget_s
    while time.monotonic() < deadline and _answers(cfg, server):
        time.sleep(0.5)
    control.start(cfg, server, io.StringIO())  # its "starting" line: the caller reports what happened
    control.wait_ready(cfg, server)
    return processes.load_record(cfg.run_dir, name).pid


def _answers(cfg: StackConfig, server: Server) -> bool:
    try:
        server.probe(cfg)
    except NotReadyError:
        return False
    return True


def pause(cfg: StackConfig, name: str) -> None:
    _signal(_record(cfg, name), signal.SIGSTOP)


def resume(cfg: StackConfig, name: str) -> None:
    _signal(_record(cfg, name), signal.SIGCONT)


def cut(cfg: StackConfig, name: str) -> None:
    """Cut `name` off from every other node and the host (it must run in a namespace of its own)."""
    if not control.isolated(cfg, node(cfg, name)):
        raise FaultError(f"{name} has no network namespace of its own on this stack: it cannot be cut off")
    netns.set_link(name, up=False)


def join(cfg: StackConfig, name: str) -> None:
    netns.set_link(name, up=True)


def partition_leader(cfg: StackConfig, topic: str, partition: int = 0) -> str:
    """The Kafka node that leads `topic`'s `partition` now."""
    metadata = admin_client(cfg.kafka.bootstrap).list_topics(topic, timeout=10)
    info = metadata.topics.get(topic)
    if info is None or info.error is not None or partition not in info.partitions:
        raise FaultError(f"no partition {topic}[{partition}] on {cfg.kafka.bootstrap}")
    leader = info.partitions[partition].leader
    if leader < 1:
        raise FaultError(f"{topic}[{partition}] has no leader now")
    return kafka_node_name(cfg, leader - 1)  # node ids are 1, 2, ... in the order of kafka.hosts


def quorum_leader(cfg: StackConfig) -> str:
    """The Kafka node that is the KRaft controller quorum's leader (the active controller), from the Admin API's
    describeMetadataQuorum (faults/QuorumLeader.java, run by the JVM in source-file mode: the stack's Kafka jars
    hold the client but not Kafka's command-line tools)."""
    lib = install.maven_jars("kafka", cfg.cache_dir, cfg.kafka.version)
    login = credentials.load(cfg.credentials_file).kafka_admin
    settings = {"bootstrap.servers": cfg.kafka.bootstrap, "request.timeout.ms": "10000",
                "default.api.timeout.ms": "20000"}
    if login is not None:
        settings |= {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": login.mechanism,
                     "sasl.jaas.config": jaas_line(
                         login, "org.apache.kafka.common.security.plain.PlainLoginModule")}
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=cfg.run_dir, suffix=".properties") as conf:  # 0600: a password
        conf.write("".join(f"{key}={value}\n" for key, value in settings.items()))
        conf.flush()
        done = subprocess.run(["java", "-Xmx128m", "-cp", f"{lib}/*", str(QUORUM_LEADER), conf.name],
                              capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    answer = done.stdout.strip().splitlines()[-1:] if done.returncode == 0 else []
    if not answer or not answer[0].isdigit():
        raise FaultError(f"the controller quorum's leader is unknown: {(done.stderr or done.stdout).strip()[-300:]}")
    return kafka_node_name(cfg, int(answer[0]) - 1)
