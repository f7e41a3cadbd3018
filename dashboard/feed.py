"""The server's one Kafka consumer and the hub that fans its records out to the connected pages.

One consumer per server process reads the committed records (read_committed) of every tenant's results,
alerts, dead-letter and late topics by pattern, and the hub hands each record to the connections of the
tenant its TOPIC names (the payload's tenant field is never trusted for routing), and to operators.
The consumer starts LOOKBACK_MS before the server's start and the hub keeps the window rows and alerts it read
in that span: rows committed but not yet copied into Cassandra by the results writer, rows a page missed
although older than its newest (the consumer reads partitions independently), and alerts, which have no
table; a resuming page must still receive them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from operator import itemgetter

import orjson
from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition

from connectors.kafka import committed_consumer, read_arrived
from connectors.kafka_access import DASHBOARD_GROUPS
from dashboard.metrics import CommitTimes, Metrics
from dashboard.operations import JOB_OF_TABLE, job_of_source
from jobs.tables import RESULT_TABLES
from pipeline.job import ResultTable
from pipeline.sql import Login
from schemas import codec
from schemas.codec import DecodeError

log = logging.getLogger(__name__)

LOOKBACK_MS = 5 * 60_000
RATE_SPAN_S = 60.0
DISCOVER_S = 5.0
FETCH_WAIT_MS = 50
READY_WAIT_S = 20.0
# A table's rows come from `<tenant>.results.<suffix>`: its own topic, else its job's, which is the table's name
# but for the flow job's.
_JOB_TOPICS = {"flow_aggregates": "flow"}
RESULT_TOPICS: dict[str, ResultTable] = {table.topic or _JOB_TOPICS.get(name, name): table
                                         for name, table in RESULT_TABLES.items()}
_PARTICULARS = re.compile(r":| \(| 0x| '")
TOPIC_PATTERN = r"^[A-Za-z0-9_-]+\.(results\.[A-Za-z0-9_-]+|alerts|deadletter|late)$"
_DIVERTED = {"alerts": ("alert", "alert.v1"), "deadletter": ("deadletter", "dead_letter.v1"),
             "late": ("late", "dead_letter.v1")}


def reason_kind(reason: str) -> str:
    """A dead letter's reason without its particulars (times, bytes, names), to count by:
    `bad timestamp: event_time 1990-01-01 ...` is `bad timestamp`."""
    return _PARTICULARS.split(reason, 1)[0].strip() or reason[:60]


def primary_key(table: ResultTable, row: dict) -> tuple:
    """A row's identity in its table (every primary-key column, tenant first): the dedup key."""
    return _key_getter(table.primary_key)(row)


@cache
def _key_getter(columns: tuple[str, ...]) -> Callable[[dict], tuple]:
    """The columns of a row, as a tuple (a table's key has the tenant and a time at least); made once a table."""
    return itemgetter(*columns)


@dataclass(frozen=True)
class Event:
    """One record of a tenant, decoded, and its frame as sent to a page."""

    tenant: str
    kind: str  # window, alert, deadletter or late
    table: ResultTable | None  # of a window
    row: dict
    committed_ms: int
    frame: str
    key: tuple | None  # a window's primary key, an alert's alert_key; None for what a page does not key
    # Read in the look-back of the server's start: committed before it, so a page gets it with its resume's
    # history (Cassandra, or the hub's recent rows), never pushed live, which would push it twice.
    replay: bool = False


def alert_key(row: dict) -> tuple:
    """An alert's identity, as a page keys its highlights."""
    return row["job"], row["key"], row["window_start"], row["metric"]


def sent_key(table: str | None, key: tuple) -> tuple:
    """What a resume's history notes it sent: a window's key with its table's name (two tables' keys can be
    equal: flow_aggregates_rollup's sensor and period against alarm_rate's station and datapoint), an alert's
    with None."""
    return table, key


def window_frame(tenant: str, table: ResultTable, row: dict, committed_ms: int | None, source: str) -> str:
    return _json({"type": "window", "tenant": tenant, "table": table.name, "row": row,
                  "committed_ms": committed_ms, "source": source})


def _json(frame: dict) -> str:
    """A frame's compact JSON text (orjson: a result row in 0.7 us, json.dumps 6.2; the same text)."""
    return orjson.dumps(frame).decode()


def batch_frame(events: Sequence[Event]) -> str:
    """One frame holding the frames of `events`, in order: {"type": "batch", "frames": [...]}."""
    return f'{{"type":"batch","frames":[{",".join(e.frame for e in events)}]}}'


def decode(topic: str, value: bytes | None, committed_ms: int) -> Event | None:
    """The event of a record of `topic`, or None for a topic the dashboard does not show or a record that
    does not decode or names another tenant than its topic's (logged)."""
    tenant, _, rest = topic.partition(".")
    kind, _, suffix = rest.partition(".")
    table = RESULT_TOPICS.get(suffix) if kind == "results" else None
    if table is None and rest not in _DIVERTED:
        return None
    try:
        record = codec.decode(value, table.schema if table else _DIVERTED[rest][1], logical_types=False)
    except DecodeError as err:
        log.warning("skipped a record of %s: %s", topic, err)
        return None
    if record.get("tenant") != tenant:
        log.warning("skipped a record of %s naming tenant %r", topic, record.get("tenant"))
        return None
    if table is not None:
        return Event(tenant, "window", table, record, committed_ms,
                     window_frame(tenant, table, record, committed_ms, "live"), primary_key(table, record))
    kind = _DIVERTED[rest][0]
    if "payload" in record:  # a dead letter's bytes are not the page's to show: their size is
        record["payload_bytes"] = len(record.pop("payload") or b"")
    record.pop("tenant")
    return Event(tenant, kind, None, record, committed_ms, diverted_frame(kind, tenant, record, committed_ms),
                 alert_key(record) if kind == "alert" else None)


def diverted_frame(kind: str, tenant: str, row: dict, committed_ms: int) -> str:
    """The frame of an alert, dead letter or late record."""
    return _json({"type": kind, "tenant": tenant, "row": row, "committed_ms": committed_ms})


class Connection:
    """A page's WebSocket as the hub sees it: what it may see, and its queue of frames.

    Until `go_live` it buffers its events (a resume is loading history meanwhile); then frames queue up
    for its sender, and one that falls QUEUE_LIMIT frames behind is marked `overrun` and closed. One whose
    session ends is closed by its sender after what is queued (`end`).
    """

    QUEUE_LIMIT = 10_000

    def __init__(self, tenant: str | None, token_id: str = "", session_id: str | None = None) -> None:
        self.tenant = tenant  # None: an operator's, every tenant
        # What it was opened with (a token, and the session of a cookie), rechecked for all connections at once;
        # `ended` once either is no more.
        self.token_id, self.session_id = token_id, session_id
        self.ended = False
        # (frame, the commit times of the live records in it: what the push delay is measured from, when the
        # consumer read them: what the fan-out delay is measured from); a None frame once the session ended
        self.queue: asyncio.Queue[tuple[str | None, CommitTimes | None, float | None]] = asyncio.Queue()
        self.buffer: list[Event] | None = []
        self.overrun = asyncio.Event()
        self.batch = False  # live events of one read go out as one `batch` frame (the resume asks for it)

    @property
    def live(self) -> bool:
        return self.buffer is None

    def send(self, frame: str, committed: CommitTimes | None = None, received: float | None = None) -> None:
        if self.queue.qsize() >= self.QUEUE_LIMIT:
            self.overrun.set()
            return
        self.queue.put_nowait((frame, committed, received))

    def end(self) -> None:
        """Its session or token is no more: the sender closes it once it has sent what is queued before."""
        if not self.ended:
            self.ended = True
            self.queue.put_nowait((None, None, None))

    def go_live(self, sent: set[tuple]) -> None:
        """Send the buffered events, less the windows and alerts whose sent_key is in `sent` (sent as
        history), then follow live."""
        buffered, self.buffer = self.buffer or [], None
        for event in buffered:
            if event.key is None or sent_key(event.table and event.table.name, event.key) not in sent:
                self.send(event.frame, CommitTimes.of((event.committed_ms,)))


@dataclass
class TenantFigures:
    """What the server saw of a tenant since it started (its look-back included), by job."""

    times: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))  # job -> results' arrival (s)
    results_total: Counter = field(default_factory=Counter)  # job -> results
    dead_letters: Counter = field(default_factory=Counter)  # (job, reason) -> records
    late: Counter = field(default_factory=Counter)  # job -> records

    def rate(self, job: str) -> float:
        """Results a second over the last RATE_SPAN_S."""
        return len(self.times.get(job, ())) / RATE_SPAN_S


def _fan_out(connections: Iterable[Connection], events: list[Event], received: float | None) -> None:
    """Queue `events` for each of `connections` (buffer them for one loading its history), each frame made
    once for all of them."""
    batch: tuple[str, CommitTimes] | None = None
    singles: list[tuple[str, CommitTimes]] | None = None
    for connection in connections:
        if connection.buffer is not None:
            connection.buffer.extend(events)
        elif connection.batch:
            batch = batch or (batch_frame(events), CommitTimes.of(e.committed_ms for e in events))
            connection.send(*batch, received)
        else:
            singles = singles or [(e.frame, CommitTimes.of((e.committed_ms,))) for e in events]
            for frame, committed in singles:
                connection.send(frame, committed, received)


class Hub:
    """Lives on the event loop: the connections by tenant, the recent window rows and alerts, the figures."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics
        self.connections: dict[str | None, set[Connection]] = defaultdict(set)
        # (tenant, table; None for alerts) -> window or alert key -> row, and -> its commit time. Kept apart,
        # nothing here is an object the garbage collector tracks (a row of plain values is not; a (row, time)
        # tuple is): a full collection over a look-back of 100,000 such tuples held the event loop 100 ms.
        self.recent: dict[tuple[str, str | None], dict[tuple, dict]] = defaultdict(dict)
        self.committed: dict[tuple[str, str | None], dict[tuple, int]] = defaultdict(dict)
        # (committed_ms, the holder's name above, its key) of the recent rows and alerts, oldest first
        self._arrivals: deque[tuple[int, tuple[str, str | None], tuple]] = deque()
        self.figures: dict[str, TenantFigures] = defaultdict(TenantFigures)
        self.ready = asyncio.Event()  # set once the consumer has read its look-back

    def add(self, connection: Connection) -> None:
        self.connections[connection.tenant].add(connection)

    def remove(self, connection: Connection) -> None:
        self.connections[connection.tenant].discard(connection)

    def count(self) -> int:
        return sum(len(c) for c in self.connections.values())

    def publish(self, events: Sequence[Event], received: float | None = None) -> None:
        """Hand a read's events (read by the consumer at `received`, epoch seconds) to their tenants'
        connections and to operators: one frame an event, or one `batch` frame to a connection that asked for
        it, encoded once for all of a tenant's (a frame costs a page and the server the same whatever its size)."""
        now = time.time()
        by_tenant: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            self._remember(event, now)
            if not event.replay:
                by_tenant[event.tenant].append(event)
        if self.metrics is not None and received is not None and by_tenant:  # not the look-back's replays
            self.metrics.handoff_delay.observe(max(0.0, now - received))
            for event in (e for mine in by_tenant.values() for e in mine):
                self.metrics.receive_delay.observe(max(0.0, received - event.committed_ms / 1000))
        for tenant, mine in by_tenant.items():
            _fan_out(self.connections.get(tenant, ()), mine, received)
        if by_tenant and self.connections.get(None):
            _fan_out(self.connections[None], [e for e in events if not e.replay], received)
        self._forget(now)

    def _remember(self, event: Event, now: float) -> None:
        figures = self.figures[event.tenant]
        if event.kind in ("window", "alert"):
            holder = (event.tenant, event.table.name if event.table else None)
            self.recent[holder][event.key] = event.row
            self.committed[holder][event.key] = event.committed_ms
            self._arrivals.append((event.committed_ms, holder, event.key))
        if event.kind == "window":
            job = JOB_OF_TABLE.get(event.table.name, event.table.name)
            figures.times[job].append(now)
            figures.results_total[job] += 1
        elif event.kind == "deadletter":
            figures.dead_letters[(job_of_source(event.row["source_topic"]), reason_kind(event.row["reason"]))] += 1
        elif event.kind == "late":
            figures.late[job_of_source(event.row["source_topic"])] += 1

    def _forget(self, now: float) -> None:
        """Drop recent rows and alerts older than the look-back and result times older than the rate's span."""
        oldest = now * 1000 - LOOKBACK_MS
        while self._arrivals and self._arrivals[0][0] < oldest:
            committed, holder, key = self._arrivals.popleft()
            if self.committed[holder].get(key) == committed:  # not replaced by a newer copy of the window since
                del self.committed[holder][key], self.recent[holder][key]
        for figures in self.figures.values():
            for times in figures.times.values():
                while times and times[0] < now - RATE_SPAN_S:
                    times.popleft()

    def recent_rows(self, tenant: str, table: str, since_ms: int | None,
                    committed_since: int | None = None) -> list[dict]:
        """The recent rows of a tenant's table whose time is at or after `since_ms` (all for None), and those
        committed at or after `committed_since` whatever their time."""
        rows, committed = self.recent.get((tenant, table), {}), self.committed.get((tenant, table), {})
        column = RESULT_TABLES[table].clustering[0]
        return [row for key, row in rows.items() if since_ms is None or row[column] >= since_ms
                or (committed_since is not None and committed[key] >= committed_since)]

    def recent_alerts(self, tenant: str) -> list[tuple[dict, int]]:
        """The alerts of a tenant read in the look-back, (row, committed_ms) oldest first."""
        committed = self.committed.get((tenant, None), {})
        return sorted(((row, committed[key]) for key, row in self.recent.get((tenant, None), {}).items()),
                      key=lambda alert: alert[1])


class Feed:
    """The consumer thread: reads the matching topics from LOOKBACK_MS ago and publishes batches onto the loop;
    looks for new topics (a new tenant's) every DISCOVER_S seconds."""

    def __init__(self, bootstrap: str, login: Login | None, hub: Hub, loop: asyncio.AbstractEventLoop,
                 tenant_pattern: str = "") -> None:
        self.bootstrap, self.login, self.hub, self.loop = bootstrap, login, hub, loop
        self.group = f"{DASHBOARD_GROUPS}{uuid.uuid4().hex[:12]}"  # never joined; its coordinator is looked up
        self.pattern = re.compile(TOPIC_PATTERN if not tenant_pattern else TOPIC_PATTERN.replace(
            "[A-Za-z0-9_-]+", f"(?:{tenant_pattern})", 1))
        self.assigned: set[tuple[str, int]] = set()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="dashboard-feed", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=10)

    def _assign_new(self, consumer: Consumer) -> dict[tuple[str, int], int]:
        """Assign the partitions of matching topics not read yet, each from the first record of the look-back
        (its end if none); the end offset of each with records to read. Assigned by hand, not subscribed: a
        rebalance would move every partition back. A broker that cannot answer yet (a topic just made has
        no leader) leaves them for the next round."""
        try:
            topics = consumer.list_topics(timeout=10).topics
            new = [TopicPartition(name, p) for name, meta in topics.items() if self.pattern.match(name)
                   for p in meta.partitions if (name, p) not in self.assigned]
            if not new:
                return {}
            since = int(time.time() * 1000) - LOOKBACK_MS
            found = consumer.offsets_for_times([TopicPartition(p.topic, p.partition, since) for p in new],
                                               timeout=10)
            ends = {(p.topic, p.partition): consumer.get_watermark_offsets(p, timeout=10)[1]
                    for p in found if p.offset >= 0}
        except KafkaException as err:
            log.warning("dashboard feed: new partitions wait for the next round (%s s): %s", DISCOVER_S, err)
            return {}
        consumer.incremental_assign([TopicPartition(p.topic, p.partition, p.offset if p.offset >= 0 else OFFSET_END)
                                     for p in found])
        self.assigned.update((p.topic, p.partition) for p in new)
        return ends

    def _caught_up(self, consumer: Consumer, ends: dict[tuple[str, int], int], since: float) -> bool:
        """Whether the look-back is read: every partition assigned at start-up is at its end of then (an
        open transaction there holds a read_committed consumer back, so after READY_WAIT_S it is read anyway)."""
        if time.monotonic() - since > READY_WAIT_S:
            log.warning("dashboard feed: the look-back was not read in %.0f s; serving anyway", READY_WAIT_S)
            return True
        positions = consumer.position([TopicPartition(t, p) for t, p in ends])
        return all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in positions)

    def _run(self) -> None:
        """Read until stopped. Partitions assigned before the hub is ready hold the look-back: their records
        from before the start are replays, and the hub is ready once they are read to their ends of then.
        A failed round (the broker away, a bug) is logged and tried again a second later."""
        # A fetch waiting on the broker returns as soon as one partition has committed records, but the records
        # another partition got in the same commit then waited up to the next fetch's whole wait (500 ms by
        # default; seen in bench.dashboard: a page got a checkpoint's windows in two frames 460 ms apart; as
        # confluent-kafka-dotnet#1115 describes). A short wait bounds that, for a fetch 20 times a second.
        consumer = committed_consumer(self.bootstrap, self.group, self.login, **{"fetch.wait.max.ms": FETCH_WAIT_MS})
        started, started_ms = time.monotonic(), int(time.time() * 1000)
        ends: dict[tuple[str, int], int] = {}  # of the partitions assigned before ready
        discovered, ready = 0.0, False
        try:
            while not self._stop.is_set():
                try:
                    if time.monotonic() - discovered > DISCOVER_S:
                        new = self._assign_new(consumer)
                        if not ready:
                            ends.update(new)
                        discovered = time.monotonic()
                    # Not consume(n, timeout): it waited for n records or the timeout, holding every result up to
                    # 100 ms.
                    messages = read_arrived(consumer, 0.1) if self.assigned else []
                    received = time.time()
                    events = []
                    for msg in messages:
                        if msg.error():
                            log.warning("dashboard feed: %s", msg.error())
                            continue
                        committed_ms = msg.timestamp()[1]
                        event = decode(msg.topic(), msg.value(), committed_ms)
                        if event is not None:
                            replay = committed_ms < started_ms and (msg.topic(), msg.partition()) in ends
                            events.append(dataclasses.replace(event, replay=True) if replay else event)
                    if events:
                        self.loop.call_soon_threadsafe(self.hub.publish, events, received)
                    if not ready and not messages and self._caught_up(consumer, ends, started):
                        ready = True
                        self.loop.call_soon_threadsafe(self.hub.ready.set)
                    if not self.assigned:
                        self._stop.wait(0.1)
                except Exception:
                    log.exception("dashboard feed: a round failed; trying again in 1 s")
                    self._stop.wait(1.0)
        finally:
            consumer.close()
