"""`stack up | down | status | logs`: the local servers' life cycle, for the CLI and tests."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pipeline.errors import StackSetupError
from stack import netns, processes
from stack.config import StackConfig
from stack.servers import NotReadyError, Server, servers


class StackError(StackSetupError):
    """A server failed to come up; the message names it and its log file."""


@dataclass(frozen=True)
class ServerStatus:
    name: str
    address: str
    pid: int | None
    state: str  # up, down, "not answering" (running, but its probe fails), "paused" (SIGSTOP), "cut off" (link down)
    rss_bytes: int | None


def log_file(cfg: StackConfig, name: str) -> Path:
    return cfg.log_dir / f"{name}.log"


def _running(cfg: StackConfig, server: Server) -> processes.ProcessRecord | None:
    record = processes.load_record(cfg.run_dir, server.name)
    return record if record is not None and record.alive() else None


def server_pids(cfg: StackConfig) -> dict[str, int]:
    """The pid of each server of the stack that is running, by name."""
    return {server.name: record.pid for server in servers(cfg) if (record := _running(cfg, server)) is not None}


def isolated(cfg: StackConfig, server: Server) -> bool:
    """Whether `server` runs in a network namespace of its own: on a profile with a network, every node whose
    address is not the host's."""
    return cfg.network is not None and server.host(cfg) != cfg.network.address


def _profile_network(cfg: StackConfig, what: str) -> None:
    """The profile's bridge and its nodes' namespaces (as root; a no-op for a profile without a network)."""
    if cfg.network is None:
        return
    netns.require_root(what)
    netns.ensure_bridge(cfg)
    for server in servers(cfg):
        if isolated(cfg, server):
            netns.ensure_node(cfg, server.name, server.host(cfg))


def _log_tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log written)"


def _wait_ready(cfg: StackConfig, server: Server, record: processes.ProcessRecord) -> None:
    deadline = time.monotonic() + cfg.start_timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if not record.alive():
            log = log_file(cfg, server.name)
            raise StackError(f"{server.name} exited while starting; its log {log} ends with:\n"
                             f"{_log_tail(log)}")
        try:
            server.probe(cfg)
            return
        except NotReadyError as err:
            last_error = str(err)
        time.sleep(0.5)
    raise StackError(f"{server.name} did not answer within {cfg.start_timeout:.0f} s ({last_error}); "
                     f"see its log {log_file(cfg, server.name)}")


def up(cfg: StackConfig, out: TextIO | None = None) -> list[str]:
    """Start every server not yet running and wait until each answers; return the names started. On a profile
    with a network (as root), each node runs in its namespace, made first if absent."""
    out = out or sys.stderr  # at the call: a test runner may have replaced sys.stderr since import
    _profile_network(cfg, "stack up on a profile with a network")
    nodes = servers(cfg)
    launched: list[tuple[Server, processes.ProcessRecord, float]] = []
    for server in nodes:
        if _running(cfg, server):
            continue
        t0 = time.monotonic()
        launched.append((server, start(cfg, server, out), t0))
    for server in nodes:
        started = next(((r, t0) for s, r, t0 in launched if s is server), None)
        record, t0 = started if started else (_running(cfg, server), time.monotonic())
        _wait_ready(cfg, server, record)
        how = f"up in {time.monotonic() - t0:.1f} s" if started else "already running"
        out.write(f"{server.name:<18} {how} at {server.address(cfg)} (pid {record.pid})\n")
    return [s.name for s, _, _ in launched]


def start(cfg: StackConfig, server: Server, out: TextIO | None = None) -> processes.ProcessRecord:
    """Launch `server` (in its namespace, if it has one) and record it; it may not answer yet."""
    out = out or sys.stderr
    out.write(f"{server.name:<18} installing and starting ...\n")
    launch = server.launch(cfg)
    argv = netns.in_namespace(server.name, launch.argv) if isolated(cfg, server) else launch.argv
    return processes.start(server.name, argv, cfg.run_dir, log_file(cfg, server.name), env=launch.env,
                           cwd=cfg.state_dir)


def wait_ready(cfg: StackConfig, server: Server) -> None:
    """Return once the running `server` answers its probe (StackError if it exits or does not answer in time)."""
    record = _running(cfg, server)
    if record is None:
        raise StackError(f"{server.name} is not running; start it with `tenantstream stack up`")
    _wait_ready(cfg, server, record)


def down(cfg: StackConfig, purge: bool = False, out: TextIO | None = None) -> list[str]:
    """Stop the servers that `up` started (by their records), newest first, then remove the profile's network;
    return the servers stopped."""
    out = out or sys.stderr
    if cfg.network is not None:
        netns.require_root("stack down on a profile with a network")
    stopped = []
    for server in reversed(servers(cfg)):
        record = processes.load_record(cfg.run_dir, server.name)
        if record is None:
            continue
        if processes.stop(record, cfg.run_dir):
            stopped.append(server.name)
            out.write(f"{server.name:<18} stopped (pid {record.pid})\n")
    if cfg.network is not None:
        removed = netns.remove(cfg, [s.name for s in servers(cfg) if isolated(cfg, s)])
        if removed:
            out.write(f"removed {', '.join(removed)}\n")
    if purge:
        shutil.rmtree(cfg.state_dir / "data", ignore_errors=True)
        shutil.rmtree(cfg.log_dir, ignore_errors=True)
        out.write(f"purged data and logs under {cfg.state_dir}\n")
    return stopped


def status(cfg: StackConfig) -> list[ServerStatus]:
    rows = []
    for server in servers(cfg):
        record = _running(cfg, server)
        if record is None:
            rows.append(ServerStatus(server.name, server.address(cfg), None, "down", None))
            continue
        state = _state(cfg, server, record)
        rows.append(ServerStatus(server.name, server.address(cfg), record.pid, state, record.rss_bytes()))
    return rows


def _state(cfg: StackConfig, server: Server, record: processes.ProcessRecord) -> str:
    if record.stopped():
        return "paused"
    if isolated(cfg, server) and not netns.link_up(server.name):
        return "cut off"
    try:
        server.probe(cfg)
    except NotReadyError:
        return "not answering"
    return "up"


def format_status(rows: list[ServerStatus]) -> str:
    width = max(18, *(len(r.name) for r in rows))
    lines = [f"{'SERVER':<{width}} {'ADDRESS':<30} {'PID':>8}  {'STATE':<14} {'MEMORY':>9}"]
    for r in rows:
        memory = f"{r.rss_bytes / 2**20:.0f} MiB" if r.rss_bytes else "-"
        lines.append(f"{r.name:<{width}} {r.address:<30} {r.pid or '-':>8}  {r.state:<14} {memory:>9}")
    return "\n".join(lines)
