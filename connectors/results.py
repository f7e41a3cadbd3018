"""Result tables in Cassandra, fed from the committed results topics and read back by window range.

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
import operator
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from cassandra import DriverException, InvalidRequest, OperationTimedOut, RequestExecutionException
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException
from cassandra.query import UNSET_VALUE
from confluent_kafka import Consumer, IsolationLevel, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from connectors.cassandra import (
    CassandraUnavailableError,
    Upserts,
    connect,
    ensure_result_table,
    insert_statement,
    upsert_async,
)
from connectors.kafka import admin_client, committed_consumer
from operators.ranges import RangeQuery, epoch_ms
from pipeline.job import ResultTable
from pipeline.sql import Login
from schemas import codec
from schemas.codec import DecodeError

log = logging.getLogger(__name__)

DEFAULT_KEYSPACE = "tenantstream"


class NoSuchTableError(LookupError):
    """The keyspace or table a query names is not in Cassandra (no results written there yet)."""


def read_windows(port: int, query: RangeQuery) -> list[dict[str, object]]:
    """The rows `query` selects, oldest window first, timestamps as epoch milliseconds.

    Prepared, so the values travel as bound parameters, never as CQL text.
    """
    text, params = query.cql()
    cluster, session = connect(port, role="reader")
    try:
        statement = session.prepare(text)
        rows = session.execute(statement, params)
        return [{name: epoch_ms(value) if isinstance(value, datetime) else value
                 for name, value in row._asdict().items()} for row in rows]
    except InvalidRequest as err:  # what Cassandra says when the keyspace or table is not there
        raise NoSuchTableError(f"no table {query.keyspace}.{query.table.name} in Cassandra ({err}); "
                               "has its job written results into this keyspace?") from err
    except (NoHostAvailable, DriverException) as err:
        raise CassandraUnavailableError(f"Cassandra at 127.0.0.1:{port}: {err}") from err
    finally:
        cluster.shutdown()


def cql_row(columns: Sequence[str]) -> Callable[[dict], tuple]:
    """The values of a record decoded without logical types, in `columns`' order, as bound to the INSERT.

    Timestamps stay epoch milliseconds, which the driver binds as they are (a datetime it takes apart
    field by field). A null is left unset rather than written: a written null is a tombstone, and a
    sensor's partition of nullable aggregates would soon fail reads on them.
    """
    values = operator.itemgetter(*columns)

    def row(record: dict) -> tuple:
        found = values(record)
        return tuple(UNSET_VALUE if v is None else v for v in found) if None in found else found

    return row


class ResultFollower:
    """Follows the committed records of a job's results topics: a base for what consumes them.

    `_handle` gets each batch of messages and must make them count exactly where it writes (and
    commit the consumer's offsets its own way); `drain` waits until everything committed so far,
    including transactions still open when it was called, has been handled.
    """

    name = "results follower"

    def __init__(self, bootstrap: str, topics: Sequence[str], group: str, schema: str,
                 login: Login | None = None) -> None:
        self.bootstrap, self.topics, self.group, self.schema = bootstrap, list(topics), group, schema
        self.login = login  # the Kafka login it reads as (its job's principal); None: the admin
        self.rejected = 0
        self._stop = threading.Event()
        self._progress = threading.Condition()  # guards the three below; notified when one changes
        self._drain_asked_at = 0.0
        self._caught_up_at = 0.0
        self._failure: BaseException | None = None

    def stop(self) -> None:
        self._stop.set()

    @property
    def failure(self) -> BaseException | None:
        """What ended `run` with an error (None while it runs, or after it stopped as asked)."""
        return self._failure

    def run(self, batch: int = 5000, idle_s: float = 0.1) -> None:
        """Consume until stop().

        A consume call returns early only with a full batch, so it waits no longer than `idle_s`: the last
        results of a checkpoint are handled (and a drain answered) that soon, not after a long poll (at 0.5 s
        this wait was a fifth of a bench job's tail). Whether everything is handled is asked of the broker
        only while a drain waits for the answer.
        """
        consumer = committed_consumer(self.bootstrap, self.group, self.login)
        consumer.subscribe(self.topics)
        admin = admin_client(self.bootstrap, self.login)
        try:
            while not self._stop.is_set():
                messages = consumer.consume(batch, timeout=idle_s)
                if messages:
                    self._handle(consumer, messages)
                    continue
                self._settle(consumer)
                if self._drain_asked_at > self._caught_up_at:
                    checked_at = time.monotonic()  # a drain asked before this moment is answered by this check
                    if (lag := _lag(consumer, admin)) == 0:
                        with self._progress:
                            self._caught_up_at = checked_at
                            self._progress.notify_all()
                    else:
                        log.debug("%s: %d records behind or in open transactions", self.name, lag)
            self._settle(consumer)
        except BaseException as err:
            with self._progress:
                self._failure = err
                self._progress.notify_all()
            raise
        finally:
            consumer.close()
            self._close()

    def _handle(self, consumer: Consumer, messages: list) -> None:
        raise NotImplementedError

    def _settle(self, consumer: Consumer) -> None:
        """Finish what `_handle` left in flight (called when nothing new came, and before stopping)."""

    def _close(self) -> None:
        """Release what the follower writes to."""

    def records(self, messages: list, logical_types: bool = True) -> Iterator[tuple[str, dict]]:
        """(tenant, record) of each message (timestamps as epoch milliseconds without `logical_types`); a
        record that does not decode, or names another tenant than its topic's, is logged and counted in
        `rejected`, never passed on."""
        for msg in messages:
            if msg.error():
                raise RuntimeError(f"results topic {msg.topic()}: {msg.error()}")
            tenant = msg.topic().split(".", 1)[0]
            try:
                record = codec.decode(msg.value(), self.schema, logical_types)
            except DecodeError as err:
                self.rejected += 1
                log.error("skipped result %s[%d]@%d: %s", msg.topic(), msg.partition(), msg.offset(), err)
                continue
            if record["tenant"] != tenant:
                self.rejected += 1
                log.error("skipped result of tenant %r on %s: a tenant's rows come only from its own topic",
                          record["tenant"], msg.topic())
                continue
            yield tenant, record

    def drain(self, timeout: float = 300.0) -> None:
        """Return once the follower has caught up with every results partition (after this call)."""
        with self._progress:
            asked = self._drain_asked_at = time.monotonic()
            self._progress.wait_for(lambda: self._caught_up_at > asked or self._failure is not None, timeout)
            if self._failure is not None:
                raise RuntimeError(f"{self.name} failed: {self._failure}") from self._failure
            if self._caught_up_at <= asked:
                raise TimeoutError(f"{self.name} did not catch up with {self.topics} in {timeout:.0f} s")


# What Cassandra answers while it is away, restarting or overloaded: the rows are written again after a wait.
_UNAVAILABLE = (NoHostAvailable, OperationTimedOut, RequestExecutionException, ConnectionException,
                CassandraUnavailableError)


class ResultsWriter(ResultFollower):
    """Copies committed result records of `topics` into `table`, at least once, idempotently.

    While Cassandra is unavailable (stopped, restarting, overloaded) the writer waits and writes the rows
    again, on a new session, after 0.5 s, 1 s, 2 s, ... at most `retry_max_s` apart, until they are written
    or it is stopped; the Kafka offsets of rows not written are never committed. It stays in its consumer
    group while it waits only up to the consumer's max.poll.interval.ms (5 minutes): after a longer outage
    its commit fails and it stops with that error.
    """

    name = "results writer"

    def __init__(self, bootstrap: str, cassandra_port: int, table: ResultTable, topics: Sequence[str],
                 group: str, keyspace: str = DEFAULT_KEYSPACE, replication: int = 1,
                 login: Login | None = None, retry_max_s: float = 5.0, startup_wait_s: float = 180.0) -> None:
        """The table is made by the admin role; rows are written by the writer role, which may only modify
        the rows of the results keyspaces. A writer started while Cassandra is unavailable waits for it as it
        would later, but at most `startup_wait_s` (a restart of the local node takes up to ~80 s): then
        CassandraUnavailableError."""
        super().__init__(bootstrap, topics, group, table.schema, login)
        self.table, self.cassandra_port, self.keyspace = table, cassandra_port, keyspace
        self.retry_max_s = retry_max_s
        self.columns = [name for name, _ in table.columns()]
        self.row = cql_row(self.columns)
        self._start(replication, startup_wait_s)
        self.written = 0
        self.retries = 0  # batches written again after Cassandra was unavailable
        self._in_flight: tuple[list[tuple], Upserts | BaseException, list[TopicPartition]] | None = None
        self._unwritten = False  # rows given up at a stop: no later offset may be committed past them

    def _start(self, replication: int, wait_s: float) -> None:
        """Make the table (as the admin) and the writer's session, trying again while Cassandra is unavailable."""
        delays, deadline = self._delays(), time.monotonic() + wait_s
        while True:
            try:
                admin, session = connect(self.cassandra_port)
                try:
                    ensure_result_table(session, self.table, self.keyspace, replication)
                finally:
                    admin.shutdown()
                self._connect()
                return
            except _UNAVAILABLE as err:
                delay = next(delays)
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("%s: Cassandra is unavailable at the start (%s); trying again in %g s", self.name,
                            str(err).splitlines()[0][:200], delay)
                time.sleep(delay)

    def _delays(self) -> Iterator[float]:
        """The waits between tries while Cassandra is unavailable: 0.5 s, doubling, at most retry_max_s."""
        delay = min(0.5, self.retry_max_s)
        while True:
            yield delay
            delay = min(delay * 2, self.retry_max_s)

    def _connect(self) -> None:
        self.cluster, self.session = connect(self.cassandra_port, role="writer")
        self.insert = insert_statement(self.session, self.keyspace, self.table.name, self.columns)

    def _send(self, rows: list[tuple]) -> Upserts | BaseException:
        """The rows on their way, or why they could not be sent (Cassandra unavailable: `_settle` retries)."""
        try:
            return upsert_async(self.session, self.insert, rows)
        except _UNAVAILABLE as err:
            return err

    def _handle(self, consumer: Consumer, messages: list) -> None:
        """Send these rows, then settle the previous batch's: Python decodes and binds one batch while
        Cassandra writes the one before. (Handled one after the other, Cassandra sat idle while a batch was
        decoded: 0.1 s of every 0.6 s in the tail of a bench run.)"""
        rows = [self.row(record) for _, record in self.records(messages, logical_types=False)]
        sent = self._send(rows)
        self._settle(consumer)
        self._in_flight = (rows, sent, _next_offsets(messages))

    def _settle(self, consumer: Consumer) -> None:
        """Wait for the rows in flight, then commit their offsets: a crash in between writes them again."""
        if self._in_flight is None:
            return
        rows, sent, offsets = self._in_flight
        self._in_flight = None
        if self._unwritten or not self._written_out(rows, sent):
            self._unwritten = True
            log.warning("%s stopped before Cassandra took %d rows: their offsets (and any later) are not "
                        "committed", self.name, len(rows))
            return
        self.written += len(rows)
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as err:
            if not _passing(err.args[0]):
                raise
            log.warning("%s: the commit of %d rows' offsets was refused (%s); they are written again from the "
                        "last committed offset after the group settles, or covered by the next commit", self.name,
                        len(rows), err.args[0].str())
            return
        log.debug("wrote %d result rows (%d in all)", len(rows), self.written)

    def _written_out(self, rows: list[tuple], sent: Upserts | BaseException) -> bool:
        """Wait until `rows` are written, sending them again while Cassandra is unavailable; False if the
        writer was stopped first."""
        delays, failed_at = self._delays(), None
        while True:
            try:
                if isinstance(sent, BaseException):
                    raise sent
                sent.wait()
                if failed_at is not None:
                    log.warning("%s: Cassandra answers again; resumed after %.1f s, %d rows written", self.name,
                                time.monotonic() - failed_at, len(rows))
                return True
            except _UNAVAILABLE as err:
                if failed_at is None:
                    failed_at = time.monotonic()
                    log.warning("%s: Cassandra is unavailable (%s); waiting and writing %d rows again, at most "
                                "%g s apart", self.name, str(err).splitlines()[0][:200], len(rows), self.retry_max_s)
                if self._stop.wait(next(delays)):
                    return False
                self.retries += 1
                self.cluster.shutdown()  # a new session asks the node at once; the old one's reconnection backs off
                try:
                    self._connect()
                except CassandraUnavailableError as down:
                    sent = down
                    continue
                sent = self._send(rows)

    def _close(self) -> None:
        self.cluster.shutdown()


# A commit refused because the group rebalanced (a member or its coordinator was away, as when a broker is cut
# off) or its coordinator moved or did not answer: the rows are in Cassandra, an upsert written again changes
# nothing.
_PASSING = {KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS,
            KafkaError._ASSIGNMENT_LOST, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR,
            KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.REQUEST_TIMED_OUT, KafkaError._TIMED_OUT,
            KafkaError._TRANSPORT, KafkaError._WAIT_COORD}


def _passing(error: KafkaError) -> bool:
    """Whether a refused offset commit is one to let pass: retriable, or refused by a rebalance or a coordinator
    away."""
    return error.retriable() or error.code() in _PASSING


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
    positions = _positions(consumer, assigned)
    stable = _ends(admin, positions, IsolationLevel.READ_COMMITTED)
    end = _ends(admin, positions, IsolationLevel.READ_UNCOMMITTED)
    return sum(max(0, stable[(tp.topic, tp.partition)] - max(tp.offset, 0))
               + max(0, end[(tp.topic, tp.partition)] - stable[(tp.topic, tp.partition)]) for tp in positions)


def _positions(consumer: Consumer, assigned: list[TopicPartition]) -> list[TopicPartition]:
    """Where `consumer` reads next in each assigned partition. Its position stays unset until it has read a
    record there; taken as 0, a follower restarted with nothing new to read counted every record before the
    group's committed offset as unread, and never caught up. It starts at that committed offset (or, with
    none, at the earliest, which the unset position still stands for)."""
    positions = consumer.position(assigned)
    unread = [tp for tp in positions if tp.offset < 0]
    if not unread:
        return positions
    committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(unread, timeout=10)}
    return [TopicPartition(tp.topic, tp.partition, committed[(tp.topic, tp.partition)]) if tp.offset < 0 else tp
            for tp in positions]


def _ends(admin: AdminClient, partitions: list[TopicPartition], isolation: IsolationLevel) -> dict[tuple, int]:
    asked = {TopicPartition(tp.topic, tp.partition): OffsetSpec.latest() for tp in partitions}
    answers = admin.list_offsets(asked, isolation_level=isolation, request_timeout=10)
    return {(tp.topic, tp.partition): future.result().offset for tp, future in answers.items()}


def _next_offsets(messages: list) -> list[TopicPartition]:
    last: dict[tuple[str, int], int] = {}
    for m in messages:
        last[(m.topic(), m.partition())] = max(last.get((m.topic(), m.partition()), -1), m.offset())
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
