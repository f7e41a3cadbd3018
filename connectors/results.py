"""Result tables in Cassandra, fed from the committed results topics.

Why a writer beside the job rather than a sink inside it: Flink has no SQL
Cassandra sink for 2.x, and a Python sink in the job would put Python on the
per-result path of the JVM pipeline. The writer consumes `<tenant>.results.<job>`
with read_committed (so it sees only what the job's exactly-once sink committed),
upserts rows keyed by (tenant, key..., window_start) with prepared, concurrent
statements, and commits its Kafka offsets only after Cassandra acknowledged the
rows. A crash replays at most the uncommitted tail, and replaying an upsert
writes the same row again: nothing lost, nothing doubled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import Consumer, IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from connectors.cassandra import connect, ensure_keyspace, ensure_table, insert_statement, upsert
from connectors.kafka import committed_consumer
from schemas import codec
from schemas.codec import DecodeError

log = logging.getLogger(__name__)

_CQL_TYPES = {"string": "text", "long": "bigint", "int": "int", "double": "double", "boolean": "boolean",
              "bytes": "blob", "timestamp-millis": "timestamp"}
DEFAULT_KEYSPACE = "tenantstream"


@dataclass(frozen=True)
class ResultTable:
    """A Cassandra table of one job's results: one row per (tenant, keys, window_start).

    Its rows come from the committed records of `<tenant>.results.<topic>` (`topic` defaults to the name).
    """

    name: str
    schema: str  # Avro schema of the result records
    partition_key: tuple[str, ...]
    clustering: tuple[str, ...] = ("window_start",)
    topic: str = ""

    def results_topic(self, tenant: str) -> str:
        return f"{tenant}.results.{self.topic or self.name}"

    def columns(self) -> list[tuple[str, str]]:
        return [(f["name"], _CQL_TYPES[_kind(f["type"])]) for f in codec.schema(self.schema).parsed["fields"]]

    def ensure(self, session, keyspace: str, replication: int = 1) -> None:
        ensure_keyspace(session, keyspace, replication)
        ensure_table(session, keyspace, self.name, self.columns(), self.partition_key, self.clustering)


def _kind(avro_type: object) -> str:
    """The Avro type name, or logical type, of a field; ["null", T] is T (Cassandra columns take NULL)."""
    if isinstance(avro_type, list):
        (avro_type,) = [t for t in avro_type if t != "null"]
    if isinstance(avro_type, dict):
        return avro_type.get("logicalType") or _kind(avro_type["type"])
    return avro_type


def _cql_value(value: object) -> object:
    return value.replace(tzinfo=None) if isinstance(value, datetime) else value


class ResultsWriter:
    """Copies committed result records of `topics` into `table`, at least once, idempotently."""

    def __init__(self, bootstrap: str, cassandra_port: int, table: ResultTable, topics: Sequence[str],
                 group: str, keyspace: str = DEFAULT_KEYSPACE, replication: int = 1) -> None:
        self.bootstrap, self.table, self.topics, self.group = bootstrap, table, list(topics), group
        self.cluster, self.session = connect(cassandra_port)
        table.ensure(self.session, keyspace, replication)
        self.columns = [name for name, _ in table.columns()]
        self.insert = insert_statement(self.session, keyspace, table.name, self.columns)
        self.written = 0
        self.rejected = 0
        self._stop = threading.Event()
        self._caught_up_at = 0.0
        self._failure: BaseException | None = None

    def stop(self) -> None:
        self._stop.set()

    def run(self, batch: int = 5000) -> None:
        """Consume until stop(): decode, upsert, then commit the offsets."""
        consumer = committed_consumer(self.bootstrap, self.group)
        consumer.subscribe(self.topics)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        try:
            while not self._stop.is_set():
                messages = consumer.consume(batch, timeout=0.5)
                if messages:
                    self._write(messages)
                    consumer.commit(offsets=_next_offsets(messages), asynchronous=False)
                    log.debug("wrote %d result rows (%d in all)", len(messages), self.written)
                elif (lag := _lag(consumer, admin)) == 0:
                    self._caught_up_at = time.monotonic()
                else:
                    log.debug("no new results yet, %d records behind or in open transactions", lag)
        except BaseException as err:
            self._failure = err
            raise
        finally:
            consumer.close()
            self.cluster.shutdown()

    def _write(self, messages: list) -> None:
        rows = []
        for msg in messages:
            if msg.error():
                raise RuntimeError(f"results topic {msg.topic()}: {msg.error()}")
            tenant = msg.topic().split(".", 1)[0]
            try:
                record = codec.decode(msg.value(), self.table.schema)
            except DecodeError as err:
                self.rejected += 1
                log.error("skipped result %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), err)
                continue
            if record["tenant"] != tenant:
                self.rejected += 1
                log.error("skipped result of tenant %r on %s: a tenant's rows come only from its own topic",
                          record["tenant"], msg.topic())
                continue
            rows.append([_cql_value(record[c]) for c in self.columns])
        self.written += upsert(self.session, self.insert, rows)

    def drain(self, timeout: float = 300.0) -> None:
        """Return once the writer has caught up with every results partition (after this call)."""
        asked = time.monotonic()
        deadline = asked + timeout
        while time.monotonic() < deadline:
            if self._caught_up_at > asked:
                return
            if self._failure is not None:
                raise RuntimeError(f"results writer failed: {self._failure}") from self._failure
            time.sleep(0.2)
        raise TimeoutError(f"results writer did not catch up with {self.topics} in {timeout:.0f} s")


def _lag(consumer: Consumer, admin: AdminClient) -> int:
    """Records of the assigned partitions not yet consumed, counting those of open transactions.

    `consumer` reads committed records; its position passes transaction markers, so it reaches the
    last stable offset once it has read everything committed. Records of a transaction still open
    lie between that offset and the end. Both ends come from the admin client in one request each:
    asked of the consumer itself, each waits behind the consumer's own long-poll fetch (0.5 s per
    partition, seen: 10 s for 20 partitions).
    """
    assigned = consumer.assignment()
    if not assigned:
        return 1
    positions = consumer.position(assigned)
    stable = _ends(admin, positions, IsolationLevel.READ_COMMITTED)
    end = _ends(admin, positions, IsolationLevel.READ_UNCOMMITTED)
    return sum(max(0, stable[(tp.topic, tp.partition)] - max(tp.offset, 0))
               + max(0, end[(tp.topic, tp.partition)] - stable[(tp.topic, tp.partition)]) for tp in positions)


def _ends(admin: AdminClient, partitions: list[TopicPartition], isolation: IsolationLevel) -> dict[tuple, int]:
    asked = {TopicPartition(tp.topic, tp.partition): OffsetSpec.latest() for tp in partitions}
    answers = admin.list_offsets(asked, isolation_level=isolation, request_timeout=10)
    return {(tp.topic, tp.partition): future.result().offset for tp, future in answers.items()}


def _next_offsets(messages: list) -> list[TopicPartition]:
    last: dict[tuple[str, int], int] = {}
    for m in messages:
        last[(m.topic(), m.partition())] = max(last.get((m.topic(), m.partition()), -1), m.offset())
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
