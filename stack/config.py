"""Reads the stack's one config file (ports, heaps, folders) into a typed object."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).with_name("stack.toml")
CONFIG_ENV = "TENANTSTREAM_STACK_CONFIG"
CREDENTIALS_ENV = "TENANTSTREAM_CREDENTIALS"


@dataclass(frozen=True)
class KafkaConfig:
    version: str
    port: int
    controller_port: int
    heap: str
    partitions: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class CassandraConfig:
    version: str
    port: int
    storage_port: int
    heap: str


@dataclass(frozen=True)
class FerretConfig:
    port: int

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"


@dataclass(frozen=True)
class FlinkConfig:
    rest_port: int
    jobmanager_rpc_port: int
    jobmanager_memory: str
    taskmanager_memory: str
    taskmanager_slots: int

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"


@dataclass(frozen=True)
class StackConfig:
    state_dir: Path
    cache_dir: Path
    start_timeout: float
    kafka: KafkaConfig
    cassandra: CassandraConfig
    ferretdb: FerretConfig
    flink: FlinkConfig

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
            kafka=KafkaConfig(**raw["kafka"]),
            cassandra=CassandraConfig(**raw["cassandra"]),
            ferretdb=FerretConfig(**raw["ferretdb"]),
            flink=FlinkConfig(**raw["flink"]),
        )
    except (KeyError, TypeError) as err:
        raise SystemExit(f"stack config {path} is missing or misnames a setting: {err}") from None
