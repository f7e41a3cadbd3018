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
from stack import install
from stack.config import StackConfig

CONF_DIR = Path(__file__).with_name("conf")
AUTH_MARKER = "tenantstream-auth"  # in a data folder made with authentication on


class NotReadyError(Exception):
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

def _kafka_launch(cfg: StackConfig) -> Launch:
    lib = install.maven_jars("kafka", cfg.cache_dir, cfg.kafka.version)
    home = cfg.state_dir / "kafka"
    data = cfg.data_dir("kafka")
    secrets = credentials.ensure(cfg.credentials_file)
    admin, controller = secrets.kafka_admin, secrets.controller
    if (data / "meta.properties").exists() and not (data / AUTH_MARKER).exists():
        raise install.InstallError(f"Kafka's data under {data} was made before the stack had authentication; "
                                   "remove it with `tenantstream stack down --purge` and start again")
    props = _render("kafka-server.properties", home / "server.properties",
                    port=cfg.kafka.port, controller_port=cfg.kafka.controller_port,
                    data_dir=data, partitions=cfg.kafka.partitions,
                    admin_user=admin.username, admin_password=admin.password,
                    controller_user=controller.username, controller_password=controller.password)
    props.chmod(0o600)  # it holds the admin's and the controller's passwords
    log4j = home / "log4j2.properties"
    shutil.copyfile(CONF_DIR / "kafka-log4j2.properties", log4j)
    java = [_java(), f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{lib}/*"]
    if not (data / "meta.properties").exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        subprocess.run([*java, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                        "-c", str(props), "--standalone"],
                       check=True, capture_output=True, stdin=subprocess.DEVNULL)
        (data / AUTH_MARKER).touch()
    heap = cfg.kafka.heap
    return Launch([java[0], f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", *java[1:],
                   "kafka.Kafka", str(props)], {})


def _kafka_probe(cfg: StackConfig) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    login = credentials.load(cfg.credentials_file).kafka_admin
    admin = AdminClient({"bootstrap.servers": cfg.kafka.bootstrap, "log_level": 0,
                         **credentials.kafka_client_settings(login)})
    try:
        metadata = admin.list_topics(timeout=2)
    except KafkaException as err:
        raise NotReadyError(str(err)) from err
    if not metadata.brokers:
        raise NotReadyError("no broker in the metadata answer")


# --- Cassandra ---------------------------------------------------------------

def _cassandra_launch(cfg: StackConfig) -> Launch:
    lib = install.maven_jars("cassandra", cfg.cache_dir, cfg.cassandra.version)
    credentials.ensure(cfg.credentials_file)
    home = cfg.state_dir / "cassandra"
    yaml = _render("cassandra.yaml", home / "cassandra.yaml", port=cfg.cassandra.port,
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
        release_version(cfg.cassandra.port, login=secrets.cassandra_login("admin"))
    except CassandraUnavailableError as err:
        if not (secrets.cassandra and secure_new_node(cfg.cassandra.port, secrets)):
            raise NotReadyError(str(err)) from err


# --- FerretDB (MongoDB wire protocol) ----------------------------------------

def _ferret_launch(cfg: StackConfig) -> Launch:
    binary = install.ferretdb_binary(cfg.cache_dir)
    return Launch([str(binary), "-listen", f"127.0.0.1:{cfg.ferretdb.port}",
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


def _flink_conf(cfg: StackConfig) -> Path:
    conf = cfg.state_dir / "flink" / "conf"
    f = cfg.flink
    _render("flink-config.yaml", conf / "config.yaml",
            jobmanager_rpc_port=f.jobmanager_rpc_port, jobmanager_memory=f.jobmanager_memory,
            taskmanager_memory=f.taskmanager_memory, taskmanager_slots=f.taskmanager_slots,
            rest_port=f.rest_port, python=sys.executable,
            checkpoint_dir=cfg.data_dir("flink") / "checkpoints",
            savepoint_dir=cfg.data_dir("flink") / "savepoints")
    for name in ("log4j-console.properties", "log4j-cli.properties"):
        shutil.copyfile(flink_home() / "conf" / name, conf / name)
    return conf


def _flink_launcher(script: str) -> Callable[[StackConfig], Launch]:
    def launch(cfg: StackConfig) -> Launch:
        home = flink_home()
        env = {"FLINK_HOME": str(home), "FLINK_CONF_DIR": str(_flink_conf(cfg)),
               "FLINK_LOG_DIR": str(cfg.log_dir), "FLINK_PID_DIR": str(cfg.run_dir)}
        return Launch(["bash", str(home / "bin" / script), "start-foreground"], env)
    return launch


def flink_overview(cfg: StackConfig, timeout: float = 2.0) -> dict:
    """Flink REST /overview of the standalone cluster."""
    try:
        with urllib.request.urlopen(f"{cfg.flink.rest_url}/overview", timeout=timeout) as resp:
            return json.load(resp)
    except OSError as err:
        raise NotReadyError(f"REST {cfg.flink.rest_url}/overview: {err}") from err


def _jobmanager_probe(cfg: StackConfig) -> None:
    flink_overview(cfg)


def _taskmanager_probe(cfg: StackConfig) -> None:
    if flink_overview(cfg).get("taskmanagers", 0) < 1:
        raise NotReadyError("no TaskManager registered with the JobManager yet")


SERVERS: tuple[Server, ...] = (
    Server("kafka", lambda c: c.kafka.bootstrap, _kafka_launch, _kafka_probe),
    Server("cassandra", lambda c: f"127.0.0.1:{c.cassandra.port}", _cassandra_launch, _cassandra_probe),
    Server("ferretdb", lambda c: f"127.0.0.1:{c.ferretdb.port}", _ferret_launch, _ferret_probe),
    Server("flink-jobmanager", lambda c: c.flink.rest_url, _flink_launcher("jobmanager.sh"),
           _jobmanager_probe),
    Server("flink-taskmanager", lambda c: "127.0.0.1 (JobManager)",
           _flink_launcher("taskmanager.sh"), _taskmanager_probe),
)


def server_named(name: str) -> Server:
    for server in SERVERS:
        if server.name == name:
            return server
    raise KeyError(f"no server named {name!r}; the stack has: {', '.join(s.name for s in SERVERS)}")
