"""The results writer waits while Cassandra is unavailable and writes the rows again, committing the Kafka offsets
of a batch only once Cassandra took its rows (a fake session and consumer stand in for Cassandra and Kafka)."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import pytest
from cassandra import OperationTimedOut, Unauthorized
from cassandra.cluster import NoHostAvailable
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from connectors import results
from connectors.cassandra import CassandraUnavailableError
from connectors.results import ResultsWriter
from jobs.alarm_rate import ALARM_RATE_TABLE
from schemas import codec

TOPIC = "acme.results.alarm_rate"


class FakeCassandra:
    """One node: the next `failures` requests fail with `error` (raised when sent if `at_send`, else answered as the
    request's failure), then every batch is taken."""

    def __init__(self, failures: int = 0, error: Exception | None = None, at_send: bool = True) -> None:
        self.failures, self.error, self.at_send = failures, error, at_send
        self.rows = 0
        self.sessions = 0
        self.refusals = 0  # connections refused before any is taken

    def connect(self, port: int, keyspace: str | None = None, role: str = "admin"):
        if self.refusals:
            self.refusals -= 1
            raise CassandraUnavailableError(f"Cassandra at 127.0.0.1:{port}: connection refused")
        self.sessions += 1
        return FakeCluster(), FakeSession(self)


class FakeCluster:
    def shutdown(self) -> None:
        pass


class FakeFuture:
    def __init__(self, failure: Exception | None) -> None:
        self.failure = failure

    def add_callbacks(self, callback, errback) -> None:
        errback(self.failure) if self.failure else callback(None)


class FakeSession:
    def __init__(self, node: FakeCassandra) -> None:
        self.node = node

    def prepare(self, text: str) -> str:
        return text.replace("?", "%s")  # a statement the driver binds as a simple one

    def execute_async(self, batch) -> FakeFuture:
        if self.node.failures:
            self.node.failures -= 1
            if self.node.at_send:
                raise self.node.error
            return FakeFuture(self.node.error)
        self.node.rows += len(batch)
        return FakeFuture(None)


class FakeMessage:
    def __init__(self, offset: int, window: int) -> None:
        start = datetime(2026, 3, 1, 12, window, tzinfo=UTC)
        self._offset = offset
        self._value = codec.encode("alarm_rate_result.v1", {
            "tenant": "acme", "station_id": "bts-1", "datapoint_id": "dp-1", "window_start": start,
            "window_end": start.replace(minute=window + 1), "fires": 1, "events": 4, "rate": 0.25})

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None


class FakeConsumer:
    def __init__(self, refusals: list[KafkaError] = ()) -> None:
        self.commits: list[list[tuple[str, int, int]]] = []
        self.refusals = list(refusals)  # what the next commits are refused with

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        if self.refusals:
            raise KafkaException(self.refusals.pop(0))
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])


def _writer(node: FakeCassandra, monkeypatch, startup_wait_s: float = 1.0) -> ResultsWriter:
    monkeypatch.setattr(results, "connect", node.connect)
    monkeypatch.setattr(results, "ensure_result_table", lambda session, table, keyspace, replication=1: None)
    return ResultsWriter("unused:9092", 9042, ALARM_RATE_TABLE, [TOPIC], group="g", retry_max_s=0.05,
                         startup_wait_s=startup_wait_s)


def _batch(first: int, count: int) -> list[FakeMessage]:
    return [FakeMessage(first + i, i) for i in range(count)]


@pytest.mark.parametrize("error, at_send", [(NoHostAvailable("no host", {}), True),
                                            (OperationTimedOut("timed out"), False)],
                         ids=["refused when sent", "failed when answered"])
def test_rows_are_written_again_after_cassandra_came_back_and_only_then_committed(monkeypatch, caplog, error,
                                                                                  at_send):
    node = FakeCassandra(failures=3, error=error, at_send=at_send)
    writer, consumer = _writer(node, monkeypatch), FakeConsumer()
    with caplog.at_level(logging.WARNING, logger=results.__name__):
        writer._handle(consumer, _batch(10, 3))
        assert consumer.commits == []  # in flight: not yet acknowledged
        writer._handle(consumer, _batch(13, 2))  # sent (refused too), then the first batch waits for Cassandra
        assert (node.rows, consumer.commits) == (3, [[(TOPIC, 0, 13)]])
        writer._settle(consumer)  # the second batch, refused when first sent, goes again
    assert (node.rows, writer.written, consumer.commits[-1]) == (5, 5, [(TOPIC, 0, 15)])
    assert writer.retries == 3 and node.sessions == 2 + 3  # the admin's and the writer's, then one per attempt
    said = [r.getMessage() for r in caplog.records]
    assert any("Cassandra is unavailable" in s and "waiting" in s for s in said), said
    assert any("resumed after" in s for s in said), said


def test_a_writer_stopped_while_cassandra_is_away_commits_nothing_after_the_rows_it_could_not_write(monkeypatch):
    node = FakeCassandra(failures=10**6, error=NoHostAvailable("no host", {}))
    writer, consumer = _writer(node, monkeypatch), FakeConsumer()
    writer._handle(consumer, _batch(0, 3))
    threading.Timer(0.3, writer.stop).start()
    writer._handle(consumer, _batch(3, 2))  # waits for the first batch until stopped
    node.failures = 0  # Cassandra answers again: the later batch is still not committed past the lost one
    writer._settle(consumer)
    assert (consumer.commits, writer.written, node.rows) == ([], 0, 0)
    assert writer.retries > 0


def test_a_writer_started_while_cassandra_is_away_waits_for_it(monkeypatch):
    node = FakeCassandra()
    node.refusals = 4
    writer, consumer = _writer(node, monkeypatch), FakeConsumer()
    writer._handle(consumer, _batch(0, 2))
    writer._settle(consumer)
    assert (node.refusals, node.rows, consumer.commits) == (0, 2, [[(TOPIC, 0, 2)]])


def test_a_writer_gives_up_starting_after_its_startup_wait(monkeypatch):
    node = FakeCassandra()
    node.refusals = 10**6
    with pytest.raises(CassandraUnavailableError, match="connection refused"):
        _writer(node, monkeypatch, startup_wait_s=0.2)


def test_a_commit_refused_by_a_rebalance_is_let_pass_and_the_next_commit_covers_the_rows(monkeypatch, caplog):
    node = FakeCassandra()
    writer = _writer(node, monkeypatch)
    consumer = FakeConsumer([KafkaError(KafkaError.ILLEGAL_GENERATION), KafkaError(KafkaError.REQUEST_TIMED_OUT)])
    with caplog.at_level(logging.WARNING, logger=results.__name__):
        for first in (0, 2, 4):
            writer._handle(consumer, _batch(first, 2))
        writer._settle(consumer)
    assert (writer.written, consumer.commits) == (6, [[(TOPIC, 0, 6)]])
    assert sum("commit of 2 rows' offsets was refused" in r.getMessage() for r in caplog.records) == 2


def test_a_commit_refused_for_good_fails_the_writer(monkeypatch):
    writer = _writer(FakeCassandra(), monkeypatch)
    consumer = FakeConsumer([KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED)])
    writer._handle(consumer, _batch(0, 1))
    with pytest.raises(KafkaException):
        writer._settle(consumer)


def test_a_refusal_that_waiting_cannot_mend_fails_the_writer_at_once(monkeypatch):
    node = FakeCassandra(failures=1, error=Unauthorized("writer may not modify"))
    writer, consumer = _writer(node, monkeypatch), FakeConsumer()
    with pytest.raises(Unauthorized):
        writer._handle(consumer, _batch(0, 1))
    assert (consumer.commits, writer.retries) == ([], 0)
