"""The latency probe of `tenantstream bench`: how long after an event is appended its window's result is visible.

While a contender runs live on fresh per-tenant topics, the probe appends records of its load
(alarm events, or the flow readings of the simulated plant) at a fixed offered rate with
`event_time` = the wall-clock time of the append (the Kafka record timestamp is the same
millisecond), in three phases: warm-up (excluded), measurement, and a tail that keeps the
watermark moving until the last measured windows have closed. A consumer thread reads the
contender's results with read_committed and notes when each result key (tenant, sensor,
window_start) first becomes visible: a result row stands for the events of its sensor in its
window. For each event of the measurement phase, latency = visible(its window) - its append
time; close-to-visible = visible - (window end + out-of-orderness) isolates the processing and
commit delay from the window's length. A window whose result never shows counts as infinitely
late: it is reported as missing and pushes the percentiles up rather than leaving them.
"""

from __future__ import annotations

import bisect
import json
import math
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupState,
    IsolationLevel,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from connectors.kafka import admin_client, client_settings, group_consumer
from schemas import codec
from submit.simulate import NO_THRESHOLD, SimulationSpec, flow_readings

ResultKey = tuple[str, str, int]  # tenant, sensor (its records' Kafka key), window_start (epoch ms)
Decoder = Callable[[bytes], ResultKey]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class LatencySpec:
    """The offered load and the phases of one latency run; every contender gets the same."""

    rate: float = 2000.0  # events per second over all tenants, well below every contender's throughput
    tenants: int = 10
    sensors: int = 1000  # over all tenants, of the alarm load (the flow load has its plant's sensors)
    window_ms: int = 10_000  # short, so a minute of measurement spans several windows
    out_of_orderness_ms: int = 5_000
    warmup_s: float = 20.0  # start-up effects, excluded
    measure_s: float = 60.0
    margin_s: float = 10.0  # tail beyond window + out-of-orderness, so the last measured windows close
    wait_s: float = 60.0  # after the last append: how long to wait for the measured windows still missing

    @property
    def tail_s(self) -> float:
        return (self.window_ms + self.out_of_orderness_ms) / 1000 + self.margin_s

    def phase_events(self) -> tuple[int, int, int]:
        """Events of the warm-up, measurement and tail phases: whole numbers fixed in advance, so a
        contender that stops after a number of records can be told exactly how many."""
        warmup, measure, tail = (round(self.rate * s) for s in (self.warmup_s, self.measure_s, self.tail_s))
        return warmup, measure, tail

    @property
    def total_events(self) -> int:
        return sum(self.phase_events())

    def due(self, n: int) -> float:
        """Seconds after the start at which event `n` (from 0) is appended."""
        return n / self.rate

    def measured(self, n: int) -> bool:
        """Whether event `n` falls in the measurement phase (by count, so the phases hold exact numbers)."""
        warmup, measure, _ = self.phase_events()
        return warmup <= n < warmup + measure


@dataclass(frozen=True)
class LoadRecord:
    """A record for the probe to append; its event time is set when it is appended."""

    topic: str
    tenant: str
    sensor: str  # the record's Kafka key, and the sensor of its window's result key
    schema: str
    fields: dict  # encoded with event_time replaced by the append time

    def encode(self, event_ms: int) -> bytes:
        return codec.encode(self.schema, {**self.fields, "event_time": event_ms})


def alarm_sensor(station: str, datapoint: str) -> str:
    """An alarm sensor as one id, the Kafka key of its events (as the simulator keys them)."""
    return f"{station}/{datapoint}"


def alarm_load(tenants: Sequence[str], sensors: int, seed: int = 7) -> Iterator[LoadRecord]:
    """Alarm events as the simulator's look (some fire, some have no threshold): tenants in turn, each tenant's
    `sensors // len(tenants)` sensors in turn, so every sensor reports in every window and every partition moves
    its watermark."""
    per_tenant = max(1, sensors // len(tenants))
    stations = max(1, per_tenant // 10)
    datapoints = max(1, per_tenant // stations)
    rng = random.Random(seed)
    for n in range(sys.maxsize):
        tenant = tenants[n % len(tenants)]
        s = (n // len(tenants)) % (stations * datapoints)
        station, datapoint = f"bts-{s // datapoints:04d}", f"dp-{s % datapoints}"
        threshold = NO_THRESHOLD if rng.random() < 0.2 else float(rng.choice([50, 75, 90]))
        yield LoadRecord(f"{tenant}.sensors.alarms", tenant, alarm_sensor(station, datapoint), "alarm_event.v2", {
            "tenant": tenant, "station_id": station, "datapoint_id": datapoint, "alarm_id": f"lat-{n}",
            "value": float(rng.randint(0, 100)), "valueThreshold": threshold, "isActive": True})


def flow_load(tenants: Sequence[str], seed: int = 7) -> Iterator[LoadRecord]:
    """The flow readings of each tenant's simulated plant (submit.simulate.flow_readings), clean, tenants in turn:
    the plant decides which of its sensors read and what (counters rising, resets marked, the ship silent at sea),
    the probe only when. The sensors are the ones the flow job's metadata knows (flow_topology)."""
    plant = SimulationSpec(tenants=tuple(tenants), events=sys.maxsize, out_of_order=0.0, late=0.0, malformed=0.0,
                           old_schema=0.0, seed=seed)
    for r in flow_readings(plant):
        yield LoadRecord(r.topic, r.tenant, r.key.decode(), "flow_reading.v1", r.fields)


def live_load(stream: str, tenants: Sequence[str], spec: LatencySpec) -> Iterator[LoadRecord]:
    """The probe's records for a contender reading `<tenant>.sensors.<stream>` ("alarms" or "flow")."""
    if stream == "alarms":
        return alarm_load(tenants, spec.sensors)
    if stream == "flow":
        return flow_load(tenants)
    raise ValueError(f"no latency load for the {stream!r} stream")


def _epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def decode_alarm_result(value: bytes) -> ResultKey:
    """The key of an `alarm_rate_result.v1` record (the Flink job and the hand-written SQL)."""
    r = codec.decode(value, "alarm_rate_result.v1")
    return r["tenant"], alarm_sensor(r["station_id"], r["datapoint_id"]), _epoch_ms(r["window_start"])


def decode_json_result(value: bytes) -> ResultKey:
    """The key of a JSON alarm result (Quix Streams and the plain loop: bench.plain_python.result_record)."""
    r = json.loads(value)
    return r["tenant"], alarm_sensor(r["station_id"], r["datapoint_id"]), int(r["window_start"])


def decode_flow_result(value: bytes) -> ResultKey:
    """The key of a `flow_result.v1` record (the flow job). Its rows for power sensors without readings
    (readings 0) have keys no event falls into: they are seen, and stand for no event."""
    r = codec.decode(value, "flow_result.v1")
    return r["tenant"], r["sensor_id"], _epoch_ms(r["window_start"])


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile `q` (0-100) of `values` (inf for a value that never came)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class LatencyFigures:
    """Latency of the measured events; a percentile is None when it falls on a missing window."""

    events: int  # appended in the measurement phase
    windows: int  # result keys those events fall into
    missing_windows: int  # of those, never visible
    missing_events: int  # events in the missing windows
    p50_latency_ms: float | None
    p99_latency_ms: float | None
    close_to_visible_p50_ms: float | None  # over windows: visible - (window end + out-of-orderness)
    close_to_visible_p99_ms: float | None


def _finite(x: float) -> float | None:
    return None if math.isinf(x) or math.isnan(x) else round(x, 1)


class Ledger:
    """Append times of the measured events by window, and when each result key first became visible."""

    def __init__(self, window_ms: int, out_of_orderness_ms: int) -> None:
        self.window_ms, self.out_of_orderness_ms = window_ms, out_of_orderness_ms
        self.appends: dict[ResultKey, list[int]] = {}
        self.visible: dict[ResultKey, int] = {}
        self.results_seen = 0
        self.undecodable = 0

    def appended(self, tenant: str, sensor: str, append_ms: int) -> None:
        """A measurement-phase event, appended at `append_ms` (its event time)."""
        key = (tenant, sensor, append_ms - append_ms % self.window_ms)
        self.appends.setdefault(key, []).append(append_ms)

    def saw(self, key: ResultKey, at_ms: int) -> bool:
        """A result record for `key` was read at `at_ms`; only the first one counts (returns whether this was it)."""
        self.results_seen += 1
        first = key not in self.visible
        if first:
            self.visible[key] = at_ms
        return first

    def missing(self, visible: dict[ResultKey, int] | None = None) -> int:
        return sum(1 for key in self.appends if key not in (self.visible if visible is None else visible))

    def figures(self, visible: dict[ResultKey, int] | None = None) -> LatencyFigures:
        """The figures against `visible` (default: when the results showed on their topics)."""
        visible = self.visible if visible is None else visible
        latencies, close, missing_events = [], [], 0
        for key, appends in self.appends.items():
            seen = visible.get(key)
            if seen is None:
                missing_events += len(appends)
                latencies.extend([math.inf] * len(appends))
                close.append(math.inf)
                continue
            latencies.extend(seen - t for t in appends)
            close.append(seen - (key[2] + self.window_ms + self.out_of_orderness_ms))
        return LatencyFigures(
            events=len(latencies), windows=len(self.appends), missing_windows=self.missing(visible),
            missing_events=missing_events, p50_latency_ms=_finite(percentile(latencies, 50)),
            p99_latency_ms=_finite(percentile(latencies, 99)), close_to_visible_p50_ms=_finite(percentile(close, 50)),
            close_to_visible_p99_ms=_finite(percentile(close, 99)))


@dataclass(frozen=True)
class ProbeReport:
    """What one latency run found."""

    visible: LatencyFigures  # on the results topics
    stored: LatencyFigures | None  # rows acknowledged by Cassandra, for a contender with a results writer
    results_seen: int  # result records read, every phase
    undecodable_results: int
    behind_schedule_s: float  # how late the last append was (a busy machine shows here)

    def as_dict(self) -> dict:
        return {**asdict(self.visible), "results_seen": self.results_seen,
                "undecodable_results": self.undecodable_results, "behind_schedule_s": round(self.behind_schedule_s, 2),
                **({"in_cassandra": asdict(self.stored)} if self.stored else {})}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Watcher:
    """A daemon thread running `step` until stopped; a failure is kept and raised by stop()."""

    def __init__(self, name: str) -> None:
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.step()
        except BaseException as err:
            self.failure = err
        finally:
            self.close()

    def step(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.failure is not None:
            raise RuntimeError(f"{self._thread.name} failed: {self.failure}") from self.failure


class ResultsWatcher(_Watcher):
    """Reads committed results from the start of `topics` into a ledger, noting when each arrived and where."""

    def __init__(self, bootstrap: str, topics: list[str], decode: Decoder, ledger: Ledger) -> None:
        super().__init__("latency-results")
        self.decode, self.ledger = decode, ledger
        # fetch.wait.max.ms: the broker answers within 50 ms, so an idle fetch never hides a commit for long
        self.consumer = Consumer(client_settings(bootstrap, **{"group.id": f"bench-latency-{time.time_ns()}",
                                  "isolation.level": "read_committed", "enable.auto.commit": False,
                                  "fetch.wait.max.ms": 50}))
        metadata = self.consumer.list_topics(timeout=10)
        self.partitions = [TopicPartition(t, p, OFFSET_BEGINNING)
                           for t in topics for p in metadata.topics[t].partitions]
        self.consumer.assign(self.partitions)
        self.where: dict[ResultKey, tuple[str, int, int]] = {}  # the first record of each key: topic, partition, offset
        self.last_result = time.monotonic()
        self._thread.start()

    def step(self) -> None:
        msg = self.consumer.poll(0.1)  # one at a time: a batch would delay the first record's time
        if msg is None:
            return
        at = _now_ms()
        if msg.error():
            raise KafkaException(msg.error())
        self.last_result = time.monotonic()
        try:
            key = self.decode(msg.value())
        except (ValueError, KeyError, TypeError):  # codec.DecodeError and bad JSON are ValueErrors
            self.ledger.undecodable += 1
            return
        if self.ledger.saw(key, at):
            self.where[key] = (msg.topic(), msg.partition(), msg.offset())

    def close(self) -> None:
        self.consumer.close()


class CommitHistory:
    """When a consumer group's committed offset of each partition passed which offset."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, int], list[tuple[int, int]]] = {}  # (committed offset, first seen at), rising

    def note(self, topic: str, partition: int, committed: int, at_ms: int) -> None:
        history = self.seen.setdefault((topic, partition), [])
        if committed >= 0 and (not history or committed > history[-1][0]):
            history.append((committed, at_ms))

    def passed(self, where: dict[ResultKey, tuple[str, int, int]]) -> dict[ResultKey, int]:
        """For each key whose record (topic, partition, offset) the group has committed past: when."""
        out = {}
        for key, (topic, partition, offset) in list(where.items()):  # a copy: the results thread adds keys
            history = self.seen.get((topic, partition), [])
            i = bisect.bisect_right(history, offset, key=lambda h: h[0])  # the first commit beyond the record
            if i < len(history):
                out[key] = history[i][1]
        return out


class CommitWatcher(_Watcher):
    """Polls consumer group `group`'s committed offsets of `partitions` every `every_s` into a history.

    The alarm-rate job's results writer commits its offsets only after Cassandra acknowledged the rows
    it read, so the moment its offset passes a result record is when that row became queryable.
    """

    def __init__(self, bootstrap: str, group: str, partitions: list[TopicPartition], every_s: float = 0.25) -> None:
        super().__init__("latency-commits")
        self.every_s = every_s
        self.consumer = group_consumer(bootstrap, group, **{"enable.auto.commit": False})
        self.partitions = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
        self.history = CommitHistory()
        self._thread.start()

    def step(self) -> None:
        committed = self.consumer.committed(self.partitions, timeout=10)
        at = _now_ms()
        for tp in committed:
            self.history.note(tp.topic, tp.partition, tp.offset, at)
        self._stop.wait(self.every_s)

    def close(self) -> None:
        self.consumer.close()


def open_transactions(admin: AdminClient, partitions: list[TopicPartition]) -> bool:
    """Whether a transaction still holds records on any of `partitions` (its last stable offset is behind
    the end). An unbounded Flink job cancelled then would leave it open for the transaction timeout."""
    ends = {}
    for isolation in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED):
        asked = {TopicPartition(tp.topic, tp.partition): OffsetSpec.latest() for tp in partitions}
        answers = admin.list_offsets(asked, isolation_level=isolation, request_timeout=10)
        ends[isolation] = {(tp.topic, tp.partition): f.result().offset for tp, f in answers.items()}
    return ends[IsolationLevel.READ_COMMITTED] != ends[IsolationLevel.READ_UNCOMMITTED]


def group_ready(admin: AdminClient, group: str, topics: list[str]) -> bool:
    """Whether consumer group `group` is stable with all of `topics` assigned: the contender is reading."""
    try:
        description = admin.describe_consumer_groups([group], request_timeout=10)[group].result()
    except KafkaException:  # not there yet
        return False
    assigned = {tp.topic for m in description.members for tp in m.assignment.topic_partitions}
    return description.state == ConsumerGroupState.STABLE and set(topics) <= assigned


def probe(bootstrap: str, load: Iterator[LoadRecord], results_topics: list[str], decode: Decoder, spec: LatencySpec,
          writer_group: str | None = None, progress: Callable[[str], None] = lambda _: None) -> ProbeReport:
    """Append `spec.total_events` records of `load` at `spec.rate` while reading the results; then
    wait (up to `spec.wait_s`) for the measured windows still missing and for open transactions to commit.

    `writer_group`: the consumer group of a results writer into Cassandra, timed as well.
    """
    from connectors.kafka import producer

    ledger = Ledger(spec.window_ms, spec.out_of_orderness_ms)
    results = ResultsWatcher(bootstrap, results_topics, decode, ledger)
    commits = CommitWatcher(bootstrap, writer_group, results.partitions) if writer_group else None
    # linger 5 ms: the append is what is timed, so the producer must not hold records back for long
    p = producer(bootstrap, **{"linger.ms": 5})
    failures: list[str] = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            failures.append(str(err))

    warmup, measure, _ = spec.phase_events()
    phase_starts = {0: f"warm-up {spec.warmup_s:.0f} s", warmup: f"measuring {spec.measure_s:.0f} s",
                    warmup + measure: f"tail {spec.tail_s:.0f} s"}
    started = time.monotonic()
    try:
        for n, record in zip(range(spec.total_events), load, strict=False):
            if n in phase_starts:
                progress(phase_starts[n])
            ahead = started + spec.due(n) - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            at = _now_ms()
            value = record.encode(at)
            while True:
                try:
                    p.produce(record.topic, key=record.sensor.encode(), value=value, timestamp=at,
                              on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
            if spec.measured(n):
                ledger.appended(record.tenant, record.sensor, at)
            p.poll(0)
        if p.flush(60) or failures:
            raise RuntimeError(f"events not delivered: {failures[:1] or 'flush timed out'}")
        behind = time.monotonic() - started - spec.due(spec.total_events)
        progress(f"appended {spec.total_events:,} ({behind:.1f} s behind schedule); waiting for results")

        def settled() -> bool:
            stored = commits is None or not ledger.missing(commits.history.passed(results.where))
            return (stored and not ledger.missing() and time.monotonic() - results.last_result > 5
                    and not open_transactions(admin, results.partitions))

        admin = admin_client(bootstrap, log_level=4)  # warnings, not its info chatter
        deadline = time.monotonic() + spec.wait_s
        while time.monotonic() < deadline and results.failure is None and not settled():
            time.sleep(0.5)
    finally:
        results.stop()
        if commits:
            commits.stop()
    return ProbeReport(ledger.figures(), ledger.figures(commits.history.passed(results.where)) if commits else None,
                       ledger.results_seen, ledger.undecodable, behind)
