"""The simulator is reproducible and produces the shares and kinds of records it is asked for."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from schemas import codec
from schemas.codec import DecodeError
from submit.simulate import (
    DECODE_ERRORS,
    FLOW_MALFORMED_KINDS,
    FLOW_WINDOW_MS,
    HEARTBEAT_MALFORMED_KINDS,
    MALFORMED_KINDS,
    HeartbeatSpec,
    SimulationSpec,
    alarm_events,
    flow_readings,
    flow_topology,
    heartbeats,
)

SPEC = SimulationSpec(tenants=("acme", "globex"), events=4000, late=0.02, malformed=0.03, seed=11)


def decoded_unless_meant_not_to(r, schema: str) -> dict | None:
    """The simulated record `r` decoded with `schema`; None for a kind made not to decode, after checking
    that it fails the way its kind says."""
    if r.kind in DECODE_ERRORS:
        with pytest.raises(DecodeError, match=DECODE_ERRORS[r.kind]):
            codec.decode(r.value, schema)
        return None
    return codec.decode(r.value, schema)


def test_same_seed_same_records_other_seed_other_records():
    first = [(r.topic, r.key, r.value, r.kafka_ts) for r in alarm_events(SPEC)]
    assert first == [(r.topic, r.key, r.value, r.kafka_ts) for r in alarm_events(SPEC)]
    other = SimulationSpec(**{**SPEC.__dict__, "seed": 12})
    assert first != [(r.topic, r.key, r.value, r.kafka_ts) for r in alarm_events(other)]


def test_each_tenant_gets_its_share_of_each_kind_on_its_own_topic():
    records = list(alarm_events(SPEC))
    for tenant in SPEC.tenants:
        mine = [r for r in records if r.tenant == tenant]
        assert len(mine) == SPEC.events and {r.topic for r in mine} == {f"{tenant}.sensors.alarms"}
        kinds = Counter(r.kind for r in mine)
        assert set(kinds) == {"on time", "out of order", "late", *MALFORMED_KINDS}
        assert sum(kinds[k] for k in MALFORMED_KINDS) == pytest.approx(0.03 * SPEC.events, rel=0.25)
        assert kinds["late"] == pytest.approx(0.02 * SPEC.events * 0.9, rel=0.25)


def test_records_are_keyed_by_sensor_and_decode_unless_meant_not_to():
    for r in alarm_events(SimulationSpec(events=500, malformed=0.2, seed=3)):
        event = decoded_unless_meant_not_to(r, "alarm_event.v2")
        if event is None:
            continue
        station = event["station_id"] or r.key.decode().split("/")[0]  # a blanked id keeps its sensor's key
        assert r.key == f"{station}/{event['datapoint_id']}".encode()
        assert int(event["event_time"].timestamp() * 1000) == r.fields["event_time"]


def test_late_records_are_two_windows_behind_and_out_of_order_ones_within_the_bound():
    newest = {}
    for r in alarm_events(SPEC):
        t = r.fields.get("event_time")
        if r.kind == "late":
            assert t < newest[r.tenant] - 2 * SPEC.window_ms
        elif r.kind == "out of order":
            assert newest[r.tenant] - t < SPEC.out_of_orderness_ms
        if r.kind in ("on time", "out of order", "late"):
            newest[r.tenant] = max(newest.get(r.tenant, 0), t)


FLOW_SPEC = SimulationSpec(tenants=("acme", "globex"), events=20_000, malformed=0.03, late=0.01, seed=11,
                           window_ms=FLOW_WINDOW_MS)


def test_flow_readings_are_reproducible_and_come_from_the_topology():
    first = list(flow_readings(FLOW_SPEC))
    assert [(r.topic, r.key, r.value, r.kafka_ts) for r in first] == \
        [(r.topic, r.key, r.value, r.kafka_ts) for r in flow_readings(FLOW_SPEC)]
    sensors = {(s.tenant, s.id): s for s in flow_topology(FLOW_SPEC.tenants).sensors}
    for r in first:
        assert r.topic == f"{r.tenant}.sensors.flow"
        reading = decoded_unless_meant_not_to(r, "flow_reading.v1")
        if reading is not None and r.kind not in ("unknown sensor", "missing sensor_id"):
            s = sensors[(r.tenant, reading["sensor_id"])]
            assert (reading["element_id"], reading["kind"], reading["unit"]) == (s.element, s.kind, s.unit)
            assert r.key == s.id.encode()


def test_flow_readings_have_every_bad_kind_resets_and_silent_ship_minutes():
    records = list(flow_readings(FLOW_SPEC))
    assert set(Counter(r.kind for r in records)) == {"on time", "out of order", "late", *FLOW_MALFORMED_KINDS}
    fields = [r.fields for r in records if r.kind == "on time"]
    assert sum(f["reset"] for f in fields) >= 2
    for label, check in {"missing value": lambda f: f["value"] is None,
                         "not a finite value": lambda f: math.isnan(f["value"]),
                         "negative power": lambda f: f["kind"] == "power" and f["value"] < 0,
                         "negative energy": lambda f: f["kind"] == "energy_counter" and f["value"] < 0,
                         "counter backwards": lambda f: f["kind"] == "energy_counter" and not f["reset"]}.items():
        assert all(check(r.fields) for r in records if r.kind == label), label
    minutes_with_power = {f["event_time"] // 60_000 for f in fields if f["kind"] == "power"}
    minutes = {f["event_time"] // 60_000 for f in fields}
    assert len(minutes - minutes_with_power) > 60  # the ship was at sea for an hour or more


HEARTBEATS = HeartbeatSpec(tenants=("acme", "globex"), events=3000, sensors=20, outage=0.02, malformed=0.02, seed=5)


def test_heartbeats_are_reproducible_by_seed():
    first = [(r.topic, r.key, r.value, r.kafka_ts) for r in heartbeats(HEARTBEATS)]
    assert first == [(r.topic, r.key, r.value, r.kafka_ts) for r in heartbeats(HEARTBEATS)]
    assert first != [(r.topic, r.key, r.value, r.kafka_ts)
                     for r in heartbeats(HeartbeatSpec(**{**HEARTBEATS.__dict__, "seed": 6}))]


def test_sensors_go_silent_and_come_back_and_some_never_return():
    gaps, last_beat = Counter(), {}
    records = list(heartbeats(HEARTBEATS))
    for r in records:
        if r.kind == "on time":
            key = (r.tenant, r.fields["sensor_id"])
            if key in last_beat:
                gaps["silent for over 10 min" if r.fields["event_time"] - last_beat[key] > 10 * 60_000 else
                     "regular"] += 1
            last_beat[key] = r.fields["event_time"]
    end = max(r.kafka_ts for r in records)
    stopped = sum(1 for t in last_beat.values() if end - t > 45 * 60_000)  # longer than the longest outage
    assert gaps["silent for over 10 min"] >= 10 and gaps["regular"] > 5000
    assert stopped >= 1


def test_heartbeats_decode_on_their_tenants_topic_keyed_by_sensor_and_none_is_late():
    newest = {}
    kinds = Counter()
    for r in heartbeats(HEARTBEATS):
        kinds[r.kind] += 1
        assert r.topic == f"{r.tenant}.sensors.heartbeats"
        beat = decoded_unless_meant_not_to(r, "heartbeat.v1")
        if beat is None:
            continue
        assert r.key == (beat["sensor_id"] or r.key.decode()).encode()
        if r.kind == "on time":
            assert r.fields["event_time"] > newest.get(r.tenant, 0) - 5000  # within the out-of-orderness
            newest[r.tenant] = max(newest.get(r.tenant, 0), r.fields["event_time"])
    assert set(kinds) == {"on time", *HEARTBEAT_MALFORMED_KINDS}



class _PacedClock:
    """time.monotonic and time.sleep of a clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, 0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1


class _RecordingProducer:
    """Stands in for confluent-kafka's Producer: notes when each record was produced, delivers it at once."""

    def __init__(self, clock: _PacedClock) -> None:
        self.clock, self.sent_at = clock, []

    def produce(self, topic, key, value, timestamp, on_delivery) -> None:
        self.sent_at.append(self.clock.now)
        on_delivery(None, _Delivered(timestamp))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


class _Delivered:
    def __init__(self, ts: int) -> None:
        self.ts = ts

    def timestamp(self) -> tuple[int, int]:
        return 1, self.ts


def test_a_paced_produce_sleeps_once_a_pace_not_once_a_record(monkeypatch):
    """At 2,000 records a second a sleep a record cost the bench's producer more CPU than its sends: records go
    out PACE_S's worth at a time, never more than PACE_S ahead of the rate, and all of them."""
    import connectors.kafka
    from submit import simulate

    clock = _PacedClock()
    fake = _RecordingProducer(clock)
    monkeypatch.setattr(connectors.kafka, "producer", lambda *a, **k: fake)
    monkeypatch.setattr(simulate.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(simulate.time, "sleep", clock.sleep)
    records = list(alarm_events(SimulationSpec(tenants=("acme",), events=1000)))
    sent = simulate.produce(iter(records), "unused:9092", len(records), rate=2000, progress=None)
    assert sum(sent.values()) == 1000 and len(fake.sent_at) == 1000
    assert clock.sleeps <= 1000 / (2000 * simulate.PACE_S) + 1
    assert all(n / 2000 - at <= simulate.PACE_S + 1 / 2000 for n, at in enumerate(fake.sent_at))
    assert clock.now == pytest.approx(1000 / 2000, abs=simulate.PACE_S)
