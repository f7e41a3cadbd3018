"""`tenantstream simulate`: reproducible BTS alarm events or sensor heartbeats for N tenants, into their
Kafka topics.

The generator is pure (same spec and seed, same records); `produce` sends them
keyed by sensor with the simulated append time as the Kafka timestamp, so a
replayed simulation is byte-for-byte the same.
"""

from __future__ import annotations

import heapq
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

from schemas import codec

NO_THRESHOLD = 999999
DAY_MS = 24 * 3600 * 1000
MALFORMED_KINDS = ("garbage bytes", "truncated body", "unknown schema", "missing station_id",
                   "far-future timestamp", "timestamp before 2000", "foreign tenant")
DECODE_ERRORS = {"garbage bytes": "not Avro single-object encoding", "truncated body": "corrupt Avro body",
                 "unknown schema": "unknown schema fingerprint"}


@dataclass(frozen=True)
class SimulationSpec:
    tenants: tuple[str, ...] = ("acme", "globex")
    events: int = 10_000  # per tenant
    stations: int = 20
    datapoints: int = 5  # per station
    out_of_order: float = 0.05  # share of records up to 80% of the out-of-orderness bound behind
    late: float = 0.0  # share of records more than two windows behind the newest (after a warm-up)
    malformed: float = 0.01  # share of bad records of the MALFORMED_KINDS
    old_schema: float = 0.1  # share written with the older schema alarm_event.v1
    seed: int = 7
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    step_ms: int = 100  # event time between a tenant's consecutive records
    out_of_orderness_ms: int = 5000
    window_ms: int = 60_000
    rate: float = 0.0  # records per second over all tenants; 0 sends as fast as the broker takes them


@dataclass(frozen=True)
class SimRecord:
    tenant: str
    topic: str
    key: bytes
    value: bytes
    kafka_ts: int
    kind: str  # "on time", "out of order", "late", or one of MALFORMED_KINDS
    fields: dict = field(default_factory=dict)  # what was encoded (empty for undecodable bytes)


def alarm_events(spec: SimulationSpec) -> Iterator[SimRecord]:
    """The spec's records, tenants interleaved, each tenant's in its topic's order."""
    rngs = {t: random.Random(f"{spec.seed}:{t}") for t in spec.tenants}
    newest = dict.fromkeys(spec.tenants, spec.start_ms)
    for i in range(spec.events):
        for tenant in spec.tenants:
            rng = rngs[tenant]
            now = spec.start_ms + i * spec.step_ms
            yield _record(spec, rng, tenant, i, now, newest)
            newest[tenant] = max(newest[tenant], now)


def _record(spec: SimulationSpec, rng: random.Random, tenant: str, i: int, now: int,
            newest: dict[str, int]) -> SimRecord:
    station, datapoint = f"bts-{rng.randrange(spec.stations):04d}", f"dp-{rng.randrange(spec.datapoints)}"
    threshold = NO_THRESHOLD if rng.random() < 0.2 else float(rng.choice([50, 75, 90]))
    fields = {"tenant": tenant, "station_id": station, "datapoint_id": datapoint, "alarm_id": f"al-{i}",
              "event_time": now, "value": float(rng.randint(0, 100)), "valueThreshold": threshold,
              "isActive": rng.random() < 0.9}
    kind, roll = "on time", rng.random()
    warmed_up = i > spec.events // 10
    if roll < spec.malformed:
        kind = rng.choice(MALFORMED_KINDS)
    elif roll < spec.malformed + spec.late and warmed_up:
        kind = "late"
        fields["event_time"] = newest[tenant] - 2 * spec.window_ms - rng.randrange(spec.window_ms)
    elif roll < spec.malformed + spec.late + spec.out_of_order:
        kind = "out of order"
        fields["event_time"] = now - rng.randrange(1, max(2, int(spec.out_of_orderness_ms * 0.8)))
    kafka_ts = now + 50
    _spoil(fields, kind, kafka_ts)
    if rng.random() < spec.old_schema and kind != "foreign tenant":
        value = _encode("alarm_event.v1", {k: v for k, v in fields.items() if k not in ("tenant", "isActive")}, kind)
    else:
        value = _encode("alarm_event.v2", fields, kind)
    return SimRecord(tenant, f"{tenant}.sensors.alarms", f"{station}/{datapoint}".encode(), value, kafka_ts,
                     kind, {} if kind in DECODE_ERRORS else fields)


def _spoil(fields: dict, kind: str, kafka_ts: int) -> None:
    """Make `fields` bad in the way `kind` names (undecodable kinds are spoiled by _encode instead)."""
    if kind.startswith("missing "):
        fields[kind.removeprefix("missing ")] = ""
    elif kind == "far-future timestamp":
        fields["event_time"] = kafka_ts + 30 * DAY_MS
    elif kind == "timestamp before 2000":
        fields["event_time"] = 631_152_000_000  # 1990-01-01
    elif kind == "foreign tenant":
        fields["tenant"] = "intruder"


def _encode(schema: str, fields: dict, kind: str) -> bytes:
    if kind == "garbage bytes":
        return b"hello, not avro"
    if kind == "unknown schema":
        return codec.MAGIC + b"\x00" * 8 + b"\x02"
    data = codec.encode(schema, fields)
    return data[:-5] if kind == "truncated body" else data


HEARTBEAT_MALFORMED_KINDS = tuple(k.replace("station_id", "sensor_id") for k in MALFORMED_KINDS)


@dataclass(frozen=True)
class HeartbeatSpec:
    """Sensors beating every `period_ms`; after any beat a sensor may fall silent for an outage (chance
    `outage`), from which it does not come back with chance `never_return`. Outages are drawn from
    `outage_ms`, so some stay under the default 10 silence minutes and most go over."""

    tenants: tuple[str, ...] = ("acme", "globex")
    events: int = 10_000  # records per tenant, bad ones included (fewer once every sensor is gone for good)
    sensors: int = 50  # per tenant
    period_ms: int = 30_000
    jitter_ms: int = 2_000  # event time off the schedule by up to this, both ways: out of order, never late
    outage: float = 0.002
    outage_ms: tuple[int, int] = (5 * 60_000, 40 * 60_000)
    never_return: float = 0.1
    malformed: float = 0.002  # share of bad records of the HEARTBEAT_MALFORMED_KINDS
    seed: int = 7
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    rate: float = 0.0  # records per second over all tenants; 0 sends as fast as the broker takes them


def heartbeats(spec: HeartbeatSpec) -> Iterator[SimRecord]:
    """The spec's heartbeats, each tenant's in schedule order, tenants interleaved by schedule."""
    return heapq.merge(*(_tenant_heartbeats(spec, t) for t in spec.tenants), key=lambda r: r.kafka_ts)


def _tenant_heartbeats(spec: HeartbeatSpec, tenant: str) -> Iterator[SimRecord]:
    rng = random.Random(f"{spec.seed}:{tenant}:heartbeats")
    due = [(spec.start_ms + rng.randrange(spec.period_ms), i) for i in range(spec.sensors)]
    heapq.heapify(due)
    for _ in range(spec.events):
        if not due:
            return
        scheduled, i = heapq.heappop(due)
        yield heartbeat_record(tenant, f"sensor-{i:04d}", scheduled + rng.randint(-spec.jitter_ms, spec.jitter_ms),
                               scheduled + 50,
                               rng.choice(HEARTBEAT_MALFORMED_KINDS) if rng.random() < spec.malformed else "on time")
        if rng.random() >= spec.outage:
            heapq.heappush(due, (scheduled + spec.period_ms, i))
        elif rng.random() >= spec.never_return:
            heapq.heappush(due, (scheduled + rng.randint(*spec.outage_ms), i))


def heartbeat_record(tenant: str, sensor_id: str, event_time: int, kafka_ts: int, kind: str = "on time") -> SimRecord:
    """One heartbeat of `tenant`'s topic, keyed by sensor; `kind` "on time" or one of HEARTBEAT_MALFORMED_KINDS."""
    fields = {"tenant": tenant, "sensor_id": sensor_id, "event_time": event_time}
    _spoil(fields, kind, kafka_ts)
    return SimRecord(tenant, f"{tenant}.sensors.heartbeats", sensor_id.encode(),
                     _encode("heartbeat.v1", fields, kind), kafka_ts, kind, {} if kind in DECODE_ERRORS else fields)


def produce(records: Iterator[SimRecord], bootstrap: str, total: int, rate: float = 0.0,
            progress: TextIO | None = sys.stderr) -> Counter:
    """Send `records` (keyed by sensor) and wait until the broker has them all; return counts by kind."""
    from connectors.kafka import producer

    p = producer(bootstrap, **{"linger.ms": 50, "batch.size": 1_000_000, "compression.type": "lz4"})
    sent: Counter = Counter()
    failures: list[str] = []
    started = time.monotonic()

    def on_delivery(err, _msg) -> None:
        if err is not None:
            failures.append(str(err))

    for n, r in enumerate(records, 1):
        while True:
            try:
                p.produce(r.topic, key=r.key, value=r.value, timestamp=r.kafka_ts, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.1)
        sent[r.kind] += 1
        if rate > 0:
            ahead = n / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        if progress and (n % 50_000 == 0 or n == total):
            elapsed = time.monotonic() - started
            progress.write(f"\rsent {n:,}/{total:,} records ({n / max(elapsed, 1e-9):,.0f}/s)")
            progress.flush()
        p.poll(0)
    p.flush(60)
    if progress:
        progress.write("\n")
    if failures:
        raise RuntimeError(f"{len(failures)} records were not delivered; first error: {failures[0]}")
    return sent
