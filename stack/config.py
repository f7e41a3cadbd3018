"""Reads the stack's one config file (ports, heaps, folders) into a typed object."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).with_name("stack.toml")
# `stack ... --profile NAME`: which config file a profile is (the multi-node one runs in network namespaces).
PROFILES = {"single": DEFAULT_CONFIG, "cluster": Path(__file__).with_name("cluster.toml")}
CONFIG_ENV = "TENANTSTREAM_STACK_CONFIG"
CREDENTIALS_ENV = "TENANTSTREAM_CREDENTIALS"


@dataclass(frozen=True)
class KafkaConfig:
    version: str
    port: int
    controller_port: int
    heap: str
    partitions: int
    hosts: tuple[str, ...] = ("127.0.0.1",)  # one broker+controller node per address
    replication: int = 1  # of every topic, the offsets and the transaction state logs
    min_insync_replicas: int = 1

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{host}:{self.port}" for host in self.hosts)


@dataclass(frozen=True)
class CassandraConfig:
    version: str
    port: int
    storage_port: int
    heap: str
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class FerretConfig:
    port: int
    host: str = "127.0.0.1"

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"


@dataclass(frozen=True)
class FlinkConfig:
    rest_port: int
    jobmanager_rpc_port: int
    jobmanager_memory: str
    taskmanager_memory: str
    taskmanager_slots: int
    host: str = "127.0.0.1"  # the JobManager's (RPC and REST)
    taskmanager_hosts: tuple[str, ...] = ("127.0.0.1",)  # one TaskManager per address
    settings: dict[str, str] = field(default_factory=dict)  # more Flink settings, as config.yaml spells them

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"


@dataclass(frozen=True)
class NetworkConfig:
    """The multi-node profile's own network: a bridge with the host's `address`, and a network namespace per
    node whose address is not the host's, linked to the bridge by a veth pair (stack/netns.py)."""

    bridge: str
    address: str
    prefix: int = 24


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path
    cache_dir: Path
    start_timeout: float
    kafka: KafkaConfig
    cassandra: CassandraConfig
    ferretdb: FerretConfig
    flink: FlinkConfig
    network: NetworkConfig | None = None  # None: every server on the host's own loopback

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def data_dir(self, server: str) -> Path:
        return self.state_dir / "data" / server

    @property
    def credentials_file(self) -> Path:
        """The servers' and clients' secrets (connectors.credentials): $TENANTSTREAM_CREDENTIALS, else
        credentials.json in the state folder, written by `stack up` at the first start."""
        return Path(os.environ.get(CREDENTIALS_ENV) or self.state_dir / "credentials.json").expanduser()


def _tuples(section: dict) -> dict:
    """A TOML section with its lists as tuples (the config is immutable)."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in section.items()}


def use_profile(name: str) -> StackConfig:
    """Make profile `name` this process's stack config (so every client of it, credentials included, reads
    that profile's file), and return it."""
    os.environ[CONFIG_ENV] = str(PROFILES[name])
    return load_config()


def load_config(path: Path | None = None) -> StackConfig:
    """Load the stack config from `path`, $TENANTSTREAM_STACK_CONFIG or the default."""
    path = path or Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"stack config {path} does not exist (check {CONFIG_ENV})") from None
    except tomllib.TOMLDecodeError as err:
        raise SystemExit(f"stack config {path} is not valid TOML: {err}") from None
    try:
        return StackConfig(
            state_dir=Path(raw["state_dir"]).expanduser(),
            cache_dir=Path(raw["cache_dir"]).expanduser(),
            start_timeout=float(raw["start_timeout"]),
            kafka=KafkaConfig(**_tuples(raw["kafka"])),
            cassandra=CassandraConfig(**raw["cassandra"]),
            ferretdb=FerretConfig(**raw["ferretdb"]),
            flink=FlinkConfig(**_tuples(raw["flink"])),
            network=NetworkConfig(**raw["network"]) if "network" in raw else None,
        )
    except (KeyError, TypeError) as err:
        raise SystemExit(f"stack config {path} is missing or misnames a setting: {err}") from None
