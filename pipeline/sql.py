"""Flink SQL text the planner writes: quoting, literals, intervals, table DDL, and the options of the Kafka
tables a plan declares (who logs in, which offsets, which delivery guarantee).

Pure: building options names a login but opens no connection, so planning needs no Kafka client
(connectors/kafka.py builds its clients and re-uses these options where it declares Flink tables).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

from pipeline.errors import PipelineError

FORMAT = "tenantstream-avro"  # the Avro single-object format of our Flink jar (connectors/flink-format)

SCRAM_MECHANISM = "SCRAM-SHA-512"
# The Kafka classes inside Flink's shaded SQL connector jar.
FLINK_SCRAM_LOGIN = "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule"
FLINK_PLAIN_LOGIN = "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.plain.PlainLoginModule"

# How a plan's Kafka sinks deliver: only transactions (exactly once) are planned and allowed (pipeline.check).
DeliveryGuarantee = Literal["exactly-once"]
EXACTLY_ONCE: DeliveryGuarantee = "exactly-once"
# Where a source stops: never, at the offsets latest when the job starts, or at given offsets ("0:100,1:250").
StopKind = Literal["never", "latest", "offsets"]
STOP_KINDS: tuple[StopKind, ...] = get_args(StopKind)
STOP_AT_LATEST = "latest"  # RunSettings.stop_at of the kind "latest"; "" never stops
# When a source emits watermarks: "on-periodic" (fast) or "on-event", after every record, so which records are
# late depends only on their order in the partition (what exact tests need).
WatermarkEmit = Literal["on-periodic", "on-event"]
WATERMARK_EMITS: tuple[WatermarkEmit, ...] = get_args(WatermarkEmit)


def quote(column: str) -> str:
    """A column name quoted for Flink SQL (`value` is a reserved word)."""
    return f"`{column}`"


def sql_string(text: str) -> str:
    """A Flink SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def interval_sql(ms: int) -> str:
    """A Flink SQL interval of `ms` milliseconds, up to 99 days (`INTERVAL 'n' SECOND` stops at 99 s)."""
    days, rest = divmod(ms, 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"INTERVAL '{days} {hours:02}:{minutes:02}:{seconds:02}.{millis:03}' DAY TO SECOND(3)"


def table_ddl(name: str, columns: Iterable[str], options: Mapping[str, str]) -> str:
    """CREATE TABLE for a Flink SQL table with the given column lines and WITH options."""
    cols = ",\n  ".join(columns)
    opts = ",\n  ".join(f"{sql_string(k)} = {sql_string(v)}" for k, v in options.items())
    return f"CREATE TEMPORARY TABLE `{name}` (\n  {cols}\n) WITH (\n  {opts}\n)"


@dataclass(frozen=True)
class Login:
    """A Kafka login (connectors.credentials reads the operator's from configuration)."""

    username: str
    password: str
    mechanism: str = SCRAM_MECHANISM  # the stack's Kafka super user logs in with PLAIN (stack/conf)

    def __repr__(self) -> str:  # never a password in a log line or a traceback
        return f"Login({self.username!r}, password=***)"


def flink_kafka_options(login: Login | None) -> dict[str, str]:
    """Options of a Flink SQL Kafka table that authenticate as `login` (none for a broker without authentication)."""
    if login is None:
        return {}
    module = FLINK_SCRAM_LOGIN if login.mechanism == SCRAM_MECHANISM else FLINK_PLAIN_LOGIN
    return {"properties.security.protocol": "SASL_PLAINTEXT", "properties.sasl.mechanism": login.mechanism,
            "properties.sasl.jaas.config": jaas_line(login, module)}


def jaas_line(login: Login, module: str) -> str:
    """A JAAS line logging in as `login` with the login `module` (SCRAM or PLAIN); the names and passwords made
    here hold no quote or backslash."""
    for value in (login.username, login.password):
        if '"' in value or "\\" in value:
            raise PipelineError(f"Kafka login {login.username!r}: a quote or backslash cannot stand in JAAS")
    return f'{module} required username="{login.username}" password="{login.password}";'


def stop_kind(stop_at: str) -> StopKind:
    """What kind of bound `stop_at` is ("" never, "latest", or offsets that parse_partition_offsets reads)."""
    if not stop_at:
        return "never"
    if stop_at == STOP_AT_LATEST:
        return "latest"
    parse_partition_offsets(stop_at)
    return "offsets"


def parse_partition_offsets(text: str) -> dict[int, int]:
    """'0:100,1:250' -> {0: 100, 1: 250}, with a clear error for anything else."""
    offsets = {}
    for item in text.split(","):
        partition, _, offset = item.strip().partition(":")
        if not (partition.isdigit() and offset.isdigit()):
            raise PipelineError(f"stop offsets are PARTITION:OFFSET pairs like 0:100,1:250, not {text!r}")
        offsets[int(partition)] = int(offset)
    return offsets


def source_options(bootstrap: str, topic: str, group: str, fmt: Mapping[str, str],
                   stop_at: str = "", login: Login | None = None) -> dict[str, str]:
    """Kafka source options: committed records only, from the group's offsets (else the earliest).

    `stop_at` bounds the source (stop_kind): "" never stops, "latest" stops at the offsets that are latest when
    the job starts, "0:100,1:250" at those offsets (kept in checkpoints, so a restored job stops there too).
    """
    options = {"connector": "kafka", "topic": topic, "properties.bootstrap.servers": bootstrap,
               "properties.group.id": group, "properties.isolation.level": "read_committed",
               "scan.startup.mode": "group-offsets", "properties.auto.offset.reset": "earliest",
               **flink_kafka_options(login), **fmt}
    kind = stop_kind(stop_at)
    if kind == "latest":
        options["scan.bounded.mode"] = "latest-offset"
    elif kind == "offsets":
        options["scan.bounded.mode"] = "specific-offsets"
        options["scan.bounded.specific-offsets"] = ";".join(
            f"partition:{p},offset:{o}" for p, o in parse_partition_offsets(stop_at).items())
    return options


def exactly_once_sink_options(bootstrap: str, topic: str, transactional_prefix: str,
                              fmt: Mapping[str, str], login: Login | None = None) -> dict[str, str]:
    """Kafka sink options for Flink's transactional (exactly-once) delivery."""
    return {"connector": "kafka", "topic": topic, "properties.bootstrap.servers": bootstrap,
            "sink.delivery-guarantee": EXACTLY_ONCE, "sink.transactional-id-prefix": transactional_prefix,
            "properties.transaction.timeout.ms": "600000", **flink_kafka_options(login), **fmt}
