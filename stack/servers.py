"""The stack's servers: how each is installed, configured, launched and asked if it is up.

A server's `launch` fetches what it runs (cached per user), writes its config
under the state folder and returns the command; its `probe` makes one real
request (a Kafka metadata request, a CQL query, a MongoDB ping, Flink's REST
/overview) and raises if the server does not answer it yet.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from connectors import credentials
from pipeline.errors import StackSetupError
from stack import install
from stack.config import DEFAULT_CONFIG, StackConfig, load_config

CONF_DIR = Path(__file__).with_name("conf")
AUTH_MARKER = "tenantstream-auth"  # in a data folder made with authentication on


class NotReadyError(StackSetupError):
    """The server did not answer its probe (yet)."""


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Server:
    name: str
    address: Callable[[StackConfig], str]
    launch: Callable[[StackConfig], Launch]
    probe: Callable[[StackConfig], None]
    host: Callable[[StackConfig], str] = lambda c: "127.0.0.1"  # the address it listens on


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise install.InstallError("Java is not on PATH; install a JDK 17 and retry")
    return java


def _render(template: str, target: Path, **values: object) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text((CONF_DIR / template).read_text().format(**values))
    return target


# --- Kafka -----------------------------------------------------------------

def kafka_node_name(cfg: StackConfig, index: int) -> str:
    """`kafka` on a single-node stack, else `kafka-1`, `kafka-2`, ... (also their data folders' names)."""
    return "kafka" if len(cfg.kafka.hosts) == 1 else f"kafka-{index + 1}"


def _kafka_quorum(cfg: StackConfig) -> tuple[str, str, list[str]]:
    """The controller quorum's setting of a node's properties, its value, and the storage format's flags: one
    node bootstraps a dynamic quorum of itself; several name their static voters (node ids 1, 2, ...)."""
    k = cfg.kafka
    if len(k.hosts) == 1:
        return "bootstrap.servers", f"{k.hosts[0]}:{k.controller_port}", ["--standalone"]
    return "voters", ",".join(f"{n}@{host}:{k.controller_port}" for n, host in enumerate(k.hosts, 1)), []


def _kafka_cluster_id(cfg: StackConfig) -> str:
    """The id every node's storage is formatted with: made once per data folder."""
    path = cfg.state_dir / "data" / "kafka-cluster-id"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
    return path.read_text().strip()


def _kafka_launcher(index: int) -> Callable[[StackConfig], Launch]:
    def launch(cfg: StackConfig) -> Launch:
        name = kafka_node_name(cfg, index)
        lib = install.maven_jars("kafka", cfg.cache_dir, cfg.kafka.version)
        home = cfg.state_dir / name
        data = cfg.data_dir(name)
        secrets = credentials.ensure(cfg.credentials_file)
        admin, controller = secrets.kafka_admin, secrets.controller
        if (data / "meta.properties").exists() and not (data / AUTH_MARKER).exists():
            raise install.InstallError(f"Kafka's data under {data} was made before the stack had authentication; "
                                       "remove it with `tenantstream stack down --purge` and start again")
        quorum_setting, quorum, format_flags = _kafka_quorum(cfg)
        props = _render("kafka-server.properties", home / "server.properties",
                        node_id=index + 1, host=cfg.kafka.hosts[index], quorum_setting=quorum_setting, quorum=quorum,
                        port=cfg.kafka.port, controller_port=cfg.kafka.controller_port,
                        data_dir=data, partitions=cfg.kafka.partitions, replication=cfg.kafka.replication,
                        min_isr=cfg.kafka.min_insync_replicas,
                        admin_user=admin.username, admin_password=admin.password,
                        controller_user=controller.username, controller_password=controller.password)
        props.chmod(0o600)  # it holds the admin's and the controller's passwords
        log4j = home / "log4j2.properties"
        shutil.copyfile(CONF_DIR / "kafka-log4j2.properties", log4j)
        java = [_java(), f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{lib}/*"]
        if not (data / "meta.properties").exists():
            subprocess.run([*java, "kafka.tools.StorageTool", "format", f"--cluster-id={_kafka_cluster_id(cfg)}",
                            "-c", str(props), *format_flags],
                           check=True, capture_output=True, stdin=subprocess.DEVNULL)
            (data / AUTH_MARKER).touch()
        heap = cfg.kafka.heap
        return Launch([java[0], f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", *java[1:],
                       "kafka.Kafka", str(props)], {})
    return launch


def _kafka_prober(index: int) -> Callable[[StackConfig], None]:
    """A metadata request to node `index` alone."""
    def probe(cfg: StackConfig) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        bootstrap = f"{cfg.kafka.hosts[index]}:{cfg.kafka.port}"
        login = credentials.load(cfg.credentials_file).kafka_admin
        admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0,
                             **credentials.kafka_client_settings(login)})
        try:
            metadata = admin.list_topics(timeout=2)
        except KafkaException as err:
            raise NotReadyError(str(err)) from err
        if not metadata.brokers:
            raise NotReadyError("no broker in the metadata answer")
    return probe


# --- Cassandra ---------------------------------------------------------------

def _cassandra_launch(cfg: StackConfig) -> Launch:
    lib = install.maven_jars("cassandra", cfg.cache_dir, cfg.cassandra.version)
    credentials.ensure(cfg.credentials_file)
    home = cfg.state_dir / "cassandra"
    yaml = _render("cassandra.yaml", home / "cassandra.yaml", host=cfg.cassandra.host, port=cfg.cassandra.port,
                   storage_port=cfg.cassandra.storage_port, data_dir=cfg.data_dir("cassandra"))
    logback = home / "logback.xml"
    shutil.copyfile(CONF_DIR / "cassandra-logback.xml", logback)
    options = [line for line in (CONF_DIR / "cassandra-jvm.options").read_text().splitlines()
               if line and not line.startswith("#")]
    heap = cfg.cassandra.heap
    # Run as root, Cassandra mlockall()s its whole heap (RSS 1.5 GB idle); without the
    # IPC_LOCK capability that call fails harmlessly and RSS stays near 0.5 GB.
    drop_lock = ["setpriv", "--bounding-set=-ipc_lock", "--inh-caps=-ipc_lock"] if (
        os.geteuid() == 0 and shutil.which("setpriv")) else []
    return Launch([*drop_lock, _java(), f"-Xms{heap}", f"-Xmx{heap}", *options,
                   f"-Dcassandra.config={yaml.as_uri()}", f"-Dcassandra.storagedir={cfg.data_dir('cassandra')}",
                   f"-Dcassandra.logdir={cfg.log_dir}", f"-Dlogback.configurationFile={logback.as_uri()}",
                   "-cp", f"{lib}/*", "org.apache.cassandra.service.CassandraDaemon"], {})


def _cassandra_probe(cfg: StackConfig) -> None:
    """One query as the credentials' admin; at a node's first start, the default superuser is replaced first."""
    from connectors.cassandra import CassandraUnavailableError, release_version, secure_new_node

    secrets = credentials.load(cfg.credentials_file)  # written by the launch
    try:
        release_version(cfg.cassandra.port, login=secrets.cassandra_login("admin"), host=cfg.cassandra.host)
    except CassandraUnavailableError as err:
        if not (secrets.cassandra and secure_new_node(cfg.cassandra.port, secrets, host=cfg.cassandra.host)):
            raise NotReadyError(str(err)) from err


# --- FerretDB (MongoDB wire protocol) ----------------------------------------

def _ferret_launch(cfg: StackConfig) -> Launch:
    binary = install.ferretdb_binary(cfg.cache_dir)
    return Launch([str(binary), "-listen", f"{cfg.ferretdb.host}:{cfg.ferretdb.port}",
                   "-data-dir", str(cfg.data_dir("ferretdb"))], {})


def _ferret_probe(cfg: StackConfig) -> None:
    import pymongo
    from pymongo.errors import PyMongoError

    client = pymongo.MongoClient(cfg.ferretdb.uri, serverSelectionTimeoutMS=1500)
    try:
        client.admin.command("ping")
    except PyMongoError as err:
        raise NotReadyError(str(err)) from err
    finally:
        client.close()


# --- Flink standalone cluster ----------------------------------------------

def flink_home() -> Path:
    """Flink's distribution as PyFlink's wheel carries it (bin/, lib/, conf/)."""
    import pyflink

    return Path(pyflink.__file__).parent


def _flink_conf(cfg: StackConfig, taskmanager_host: str, folder: str) -> Path:
    conf = cfg.state_dir / "flink" / folder
    f = cfg.flink
    _render("flink-config.yaml", conf / "config.yaml",
            jobmanager_host=f.host, taskmanager_host=taskmanager_host,
            jobmanager_rpc_port=f.jobmanager_rpc_port, jobmanager_memory=f.jobmanager_memory,
            taskmanager_memory=f.taskmanager_memory, taskmanager_slots=f.taskmanager_slots,
            rest_port=f.rest_port, python=sys.executable,
            checkpoint_dir=cfg.data_dir("flink") / "checkpoints",
            savepoint_dir=cfg.data_dir("flink") / "savepoints",
            extra="".join(f"{key}: {value}\n" for key, value in f.settings.items()))
    for name in ("log4j-console.properties", "log4j-cli.properties"):
        shutil.copyfile(flink_home() / "conf" / name, conf / name)
    return conf


def _flink_launcher(script: str, name: str, taskmanager: int = 0) -> Callable[[StackConfig], Launch]:
    """The JobManager's or TaskManager `taskmanager`'s launch. On a stack of several nodes each has its own config,
    log and pid folder: two TaskManagers of one folder would write the same log file."""
    def launch(cfg: StackConfig) -> Launch:
        home = flink_home()
        own = cfg.network is not None
        conf = _flink_conf(cfg, cfg.flink.taskmanager_hosts[taskmanager], f"conf-{name}" if own else "conf")
        env = {"FLINK_HOME": str(home), "FLINK_CONF_DIR": str(conf),
               "FLINK_LOG_DIR": str(cfg.log_dir / name if own else cfg.log_dir),
               "FLINK_PID_DIR": str(cfg.run_dir / name if own else cfg.run_dir)}
        return Launch(["bash", str(home / "bin" / script), "start-foreground"], env)
    return launch


def flink_rest(cfg: StackConfig, path: str, timeout: float = 2.0) -> dict:
    """GET `path` of the stack's Flink REST API, as JSON (NotReadyError if it does not answer)."""
    try:
        with urllib.request.urlopen(f"{cfg.flink.rest_url}{path}", timeout=timeout) as resp:
            return json.load(resp)
    except OSError as err:
        raise NotReadyError(f"REST {cfg.flink.rest_url}{path}: {err}") from err


def flink_overview(cfg: StackConfig, timeout: float = 2.0) -> dict:
    """Flink REST /overview of the standalone cluster."""
    return flink_rest(cfg, "/overview", timeout)


def _jobmanager_probe(cfg: StackConfig) -> None:
    flink_overview(cfg)


def _taskmanager_prober(index: int) -> Callable[[StackConfig], None]:
    """Whether TaskManager `index` is registered with the JobManager (the only one: whether any is)."""
    def probe(cfg: StackConfig) -> None:
        hosts = cfg.flink.taskmanager_hosts
        if len(hosts) == 1:
            if flink_overview(cfg).get("taskmanagers", 0) < 1:
                raise NotReadyError("no TaskManager registered with the JobManager yet")
            return
        if not any(tm["id"].startswith(f"{hosts[index]}:") for tm in flink_rest(cfg, "/taskmanagers")["taskmanagers"]):
            raise NotReadyError(f"no TaskManager of {hosts[index]} registered with the JobManager")
    return probe


def taskmanager_name(cfg: StackConfig, index: int) -> str:
    """`flink-taskmanager` on a single-node stack, else `flink-taskmanager-1`, `flink-taskmanager-2`, ..."""
    return "flink-taskmanager" if len(cfg.flink.taskmanager_hosts) == 1 else f"flink-taskmanager-{index + 1}"


def servers(cfg: StackConfig) -> tuple[Server, ...]:
    """The servers of `cfg`'s profile, in start order: a Kafka node per address, Cassandra, FerretDB, the Flink
    JobManager and a TaskManager per address."""
    kafka = [Server(kafka_node_name(cfg, i), lambda c, i=i: f"{c.kafka.hosts[i]}:{c.kafka.port}",
                    _kafka_launcher(i), _kafka_prober(i), lambda c, i=i: c.kafka.hosts[i])
             for i in range(len(cfg.kafka.hosts))]
    taskmanagers = [Server(name, lambda c, i=i: f"{c.flink.taskmanager_hosts[i]} (JobManager)",
                           _flink_launcher("taskmanager.sh", name, i), _taskmanager_prober(i),
                           lambda c, i=i: c.flink.taskmanager_hosts[i])
                    for i in range(len(cfg.flink.taskmanager_hosts)) for name in [taskmanager_name(cfg, i)]]
    return (
        *kafka,
        Server("cassandra", lambda c: f"{c.cassandra.host}:{c.cassandra.port}", _cassandra_launch, _cassandra_probe,
               lambda c: c.cassandra.host),
        Server("ferretdb", lambda c: f"{c.ferretdb.host}:{c.ferretdb.port}", _ferret_launch, _ferret_probe,
               lambda c: c.ferretdb.host),
        Server("flink-jobmanager", lambda c: c.flink.rest_url, _flink_launcher("jobmanager.sh", "flink-jobmanager"),
               _jobmanager_probe, lambda c: c.flink.host),
        *taskmanagers,
    )


SERVERS: tuple[Server, ...] = servers(load_config(DEFAULT_CONFIG))  # the single-node stack's


def server_named(name: str) -> Server:
    for server in SERVERS:
        if server.name == name:
            return server
    raise KeyError(f"no server named {name!r}; the stack has: {', '.join(s.name for s in SERVERS)}")
