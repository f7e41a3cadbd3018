"""The flow aggregates job's own SQL, run by Flink's local mini-cluster over a file of readings of three
tenants, equals the plain-Python oracle (counts exactly, floats to 1e-9 relative) and, for one tenant,
values computed by hand. No server is involved."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import NamedTuple

import pytest

from jobs.flow_aggregates import flow_aggregates_job
from operators.flow import PlannedMetadata, metadata_from_assets
from operators.windows import tumbling
from pipeline.plan import diverted_query, results_query
from schemas.sql import flink_columns
from tests.flink_local import epoch_ms, iso, run_over_file
from tests.flow_oracle import FlowReading, flow_aggregates, rows_match

WINDOW = tumbling(minutes=15)
W = WINDOW.size_ms
DELAY_S = 120
START = 1_767_240_000_000  # 2026-01-01T04:00:00Z, a window edge
MINUTE = 60_000



class FlowSensor(NamedTuple):
    tenant: str
    sensor_id: str
    element_id: str
    kind: str
    unit: str


SENSORS = (FlowSensor("acme", "flow-1", "pump-1", "non_additive", "m3/h"),
     FlowSensor("acme", "vol-1", "pipe-1", "additive", "m3"),
     FlowSensor("acme", "meter-1", "pump-1", "energy_counter", "kWh"),
     FlowSensor("acme", "power-1", "ship-1", "power", "kW"),
     FlowSensor("acme", "power-2", "ship-2", "power", "kW"),
     FlowSensor("globex", "level-1", "basin-1", "non_additive", "m"),
     FlowSensor("globex", "meter-2", "ship-3", "energy_counter", "kWh"),
     FlowSensor("initech", "level", "basin", "non_additive", "m"),
     FlowSensor("initech", "volume", "pipe", "additive", "m3"),
     FlowSensor("initech", "meter", "ship", "energy_counter", "kWh"),
     FlowSensor("initech", "shore", "ship", "power", "kW"))
LIMITS = {("acme", "pump-1"): {"min": 0.0, "max": 100.0}, ("acme", "pipe-1"): {"max": 5.0},
          ("acme", "ship-1"): {"min": 0.0, "max": 500.0}, ("globex", "basin-1"): {"min": 0.5, "max": 6.0},
          ("initech", "basin"): {"min": 0.5, "max": 6.0}}
# the documents the metadata store would hold: the job reads them from its plan (a `tenantstream-documents` table)
METADATA = PlannedMetadata({
    "sensors": tuple({"tenant": s.tenant, "id": s.sensor_id, "element": s.element_id, "kind": s.kind, "unit": s.unit}
                     for s in SENSORS),
    "elements": tuple({"tenant": tenant, "id": element, "limits": limits}
                      for (tenant, element), limits in LIMITS.items())})
RANDOM_SENSORS = [s for s in SENSORS if s.tenant != "initech"]

# initech, by hand: (ms after 04:00, sensor, value, reset)
HAND = [(0, "level", 1.0, False), (1 * MINUTE, "volume", 1.5, False), (2 * MINUTE, "meter", 100.0, False),
        (3 * MINUTE, "shore", 100.0, False), (5 * MINUTE, "level", 7.0, False), (7 * MINUTE, "meter", 110.0, False),
        (8 * MINUTE, "shore", 300.0, False), (10 * MINUTE, "level", 0.2, False), (12 * MINUTE, "meter", 105.0, False),
        (13 * MINUTE, "meter", 112.0, False), (15 * MINUTE - 1, "volume", 2.5, False),
        (15 * MINUTE, "level", 2.0, False), (15 * MINUTE, "volume", 1.0, False), (20 * MINUTE, "meter", 5.0, True),
        (25 * MINUTE, "meter", 8.0, False), (31 * MINUTE, "level", 3.0, False)]


def randomized_readings(seed: int, n: int = 2000) -> list[FlowReading]:
    """Out-of-order, late, window-edge, reset, backwards and invalid readings in one partition's order,
    with the hand-made readings merged in at their time."""
    rng = random.Random(seed)
    counters = {s.sensor_id: 0.0 for s in RANDOM_SENSORS if s.kind == "energy_counter"}
    readings: list[FlowReading] = []
    hand = list(HAND)
    now = START
    while len(readings) < n + len(HAND):
        now += rng.choice([0, 5_000, 20_000, MINUTE, 90_000])
        while hand and START + hand[0][0] <= now:
            after, sensor_id, value, reset = hand.pop(0)
            s = next(s for s in SENSORS if s.sensor_id == sensor_id)
            t = START + after
            readings.append(FlowReading(len(readings), t + 5, "initech", None, "initech", sensor_id, s.element_id,
                                        s.kind, t, value, s.unit, reset))
        s = rng.choice(RANDOM_SENSORS)
        if s.sensor_id == "power-2" and (now // W) % 3:
            continue  # silent two windows in three: windows without power readings
        roll = rng.random()
        if roll < 0.05:
            event_time = now - rng.randrange(1, DELAY_S * 1000)  # out of order, within the bound
        elif roll < 0.08:
            event_time = now - rng.randrange(DELAY_S * 1000 + 1, 40 * MINUTE)  # behind the watermark
        elif roll < 0.14:
            event_time = now - now % W - rng.choice([0, 1])  # a window's first or the previous one's last ms
        else:
            event_time = now
        value, reset = _value(rng, s, counters)
        reading = FlowReading(len(readings), now + 5, s.tenant, None, rng.choice(["", s.tenant]), s.sensor_id,
                              s.element_id, s.kind, event_time, value, s.unit, reset)
        readings.append(_spoil(rng, reading))
    return readings


def _value(rng: random.Random, s: FlowSensor, counters: dict[str, float]) -> tuple[float, bool]:
    if s.kind == "energy_counter":
        roll = rng.random()
        if roll < 0.04:
            counters[s.sensor_id] = round(rng.uniform(0, 5), 3)
            return counters[s.sensor_id], True
        if roll < 0.08:
            return counters[s.sensor_id] - rng.uniform(1, 20), False  # backwards, no reset marker
        counters[s.sensor_id] += round(rng.uniform(0, 10), 3)
        return counters[s.sensor_id], False
    high = {"non_additive": 120, "additive": 6, "power": 600}[s.kind]
    return rng.uniform(0, high), False


def _spoil(rng: random.Random, r: FlowReading) -> FlowReading:
    """Now and then a bad record of one kind or another."""
    bad = rng.random()
    change: dict = {}
    if bad < 0.01:
        return FlowReading(r.offset, r.kafka_ts, r.topic_tenant, decode_error="corrupt Avro body: test")
    if bad < 0.02:
        change = {"sensor_id": ""}
    elif bad < 0.03:
        change = {"value": None}
    elif bad < 0.04:
        change = {"event_time": r.kafka_ts + 2 * 24 * 3600 * 1000}
    elif bad < 0.05:
        change = {"tenant": "initech"}
    elif bad < 0.06:
        change = {"sensor_id": "ghost"}
    elif bad < 0.07:
        change = {"kind": "additive" if r.kind != "additive" else "non_additive"}
    elif bad < 0.08 and r.kind in ("power", "energy_counter"):
        change = {"value": -1.5}
    return FlowReading(**{**r.__dict__, **change})


FILE_COLUMNS = [*flink_columns("flow_reading.v1"), "`decode_error` STRING", "`payload` BYTES", "`kafka_topic` STRING",
                "`kafka_partition` INT", "`kafka_offset` BIGINT", "`kafka_ts` TIMESTAMP_LTZ(3)"]


def _write_json_lines(readings: list[FlowReading], path) -> None:
    with path.open("w") as out:
        for r in readings:
            out.write(json.dumps({
                "tenant": r.tenant, "sensor_id": r.sensor_id, "element_id": r.element_id, "kind": r.kind,
                "event_time": iso(r.event_time), "value": r.value, "unit": r.unit, "reset": r.reset,
                "decode_error": r.decode_error, "kafka_topic": f"{r.topic_tenant}.sensors.flow",
                "kafka_partition": 0, "kafka_offset": r.offset, "kafka_ts": iso(r.kafka_ts)}) + "\n")


@pytest.fixture(scope="module")
def flink_run(tmp_path_factory):
    """Run the job's SQL once over the file: (readings, windows, late offsets, invalid offset -> reason)."""
    folder = tmp_path_factory.mktemp("flow_windows")
    readings = randomized_readings(seed=20260101)
    _write_json_lines(readings, folder / "readings.json")
    job = flow_aggregates_job(["acme", "globex", "initech"], METADATA, window=WINDOW)
    rows = run_over_file(job, FILE_COLUMNS, folder / "readings.json", DELAY_S, folder)
    windows = {}
    for r in rows("SELECT tenant, sensor_id, element_id, kind, CAST(window_start AS STRING), "
                  "CAST(window_end AS STRING), readings, breaches, `sum`, mean, `min`, `max`, increase, energy_kwh "
                  f"FROM ({results_query(job)})"):
        key = (r[0], r[1], r[2], r[3], epoch_ms(r[4]), epoch_ms(r[5]))
        assert key not in windows, f"two rows for {key}"
        windows[key] = tuple(r[6:])
    diverted = "SELECT `offset`, reason FROM ({}) WHERE `route_suffix` = '{}'"
    late = sorted(r[0] for r in rows(diverted.format(diverted_query(job), ".late")))
    invalid = {r[0]: r[1] for r in rows(diverted.format(diverted_query(job), ".deadletter"))}
    return readings, windows, late, invalid


@pytest.fixture(scope="module")
def expected(flink_run):
    return flow_aggregates(flink_run[0], METADATA, W, DELAY_S * 1000)


def test_windows_equal_the_oracle(flink_run, expected):
    _, windows, _, _ = flink_run
    assert rows_match(windows, expected.windows) == []
    assert len(windows) > 300
    assert {k[3] for k in windows} == {"additive", "non_additive", "energy_counter", "power"}


def test_power_sensors_without_readings_report_zero_energy_in_their_tenants_windows(flink_run, expected):
    _, windows, _, _ = flink_run
    empty = {k: v for k, v in windows.items() if v[0] == 0}
    assert len(empty) > 20 and {k[1] for k in empty} <= {"power-1", "power-2", "shore"}
    assert all(v == (0, 0, None, None, None, None, None, 0.0) for v in empty.values())


def test_counter_resets_and_backward_steps_were_exercised(flink_run, expected):
    readings, _, _, invalid = flink_run
    on_time = {r.offset for r in readings} - set(expected.late) - set(invalid)
    assert sum(r.reset for r in readings if r.offset in on_time and r.kind == "energy_counter") > 5
    assert sum(reason.startswith("counter went backwards without reset: ") for reason in invalid.values()) > 5


def test_late_records_are_exactly_those_at_or_behind_the_watermark(flink_run, expected):
    _, _, late, _ = flink_run
    assert late == expected.late
    assert len(late) > 20


def test_invalid_records_are_diverted_with_their_reason(flink_run, expected):
    _, _, _, invalid = flink_run
    assert sorted(invalid) == sorted(expected.invalid)
    for offset, reason in invalid.items():
        assert reason.startswith(expected.invalid[offset]), (offset, reason)
    kinds = {reason.split(":")[0].split(" is ")[0] for reason in expected.invalid.values()}
    assert kinds >= {"corrupt Avro body", "missing sensor_id", "missing value", "bad timestamp", "unknown tenant",
                     "unknown sensor", "negative power", "negative energy", "counter went backwards without reset"}
    assert any(reason.startswith("sensor ") for reason in invalid.values())  # kind against the metadata


def test_every_record_is_counted_once(flink_run):
    readings, windows, late, invalid = flink_run
    assert sum(row[0] for row in windows.values()) + len(late) + len(invalid) == len(readings)


def _at(minutes: int) -> int:
    return START + minutes * MINUTE


def test_hand_computed_windows_with_right_edge_labels(flink_run):
    """04:00, 04:05 and 04:10 land in the window labelled 04:15; 04:14:59.999 too, 04:15:00.000 not."""
    _, windows, _, invalid = flink_run
    hand = {(k[1], k[4], k[5]): v for k, v in windows.items() if k[0] == "initech"}
    assert hand == {
        ("level", _at(0), _at(15)): (3, 2, None, (1.0 + 7.0 + 0.2) / 3, 0.2, 7.0, None, None),
        ("level", _at(15), _at(30)): (1, 0, None, 2.0, 2.0, 2.0, None, None),
        ("level", _at(30), _at(45)): (1, 0, None, 3.0, 3.0, 3.0, None, None),
        ("volume", _at(0), _at(15)): (2, 0, 4.0, None, None, None, None, None),
        ("volume", _at(15), _at(30)): (1, 0, 1.0, None, None, None, None, None),
        # 100 (baseline), 110 (+10), 105 (backwards: dead letter), 112 (+2 from 110) | 5 reset (+5), 8 (+3)
        ("meter", _at(0), _at(15)): (3, 0, None, None, None, None, 12.0, None),
        ("meter", _at(15), _at(30)): (2, 0, None, None, None, None, 8.0, None),
        # mean 200 kW over a quarter hour; then silent while the tenant's other sensors report
        ("shore", _at(0), _at(15)): (2, 0, None, 200.0, None, None, None, 50.0),
        ("shore", _at(15), _at(30)): (0, 0, None, None, None, None, None, 0.0),
        ("shore", _at(30), _at(45)): (0, 0, None, None, None, None, None, 0.0),
    }
    assert "counter went backwards without reset: 105.0 after 110.0" in invalid.values()


def test_the_metadata_comes_from_asset_records_of_the_jobs_tenants():
    from submit.assets import read_assets

    metadata = metadata_from_assets(read_assets(Path("stack/assets.example.yaml")), ["globex"])
    assert {d["id"]: (d["element"], d["kind"], d["unit"]) for d in metadata.documents["sensors"]} == {
        "aurora-shore-power": ("mv-aurora", "power", "kW"),
        "aurora-shore-energy": ("mv-aurora", "energy_counter", "kWh"),
        "bts-harbour-temp": ("bts-harbour", "non_additive", "degC")}
    assert all(d["limits"] is None for d in metadata.documents["elements"])  # globex's elements have none
    acme = metadata_from_assets(read_assets(Path("stack/assets.example.yaml")), ["acme"])
    limits = {d["id"]: d["limits"] for d in acme.documents["elements"]}
    assert limits["main-pipe"] == {"max": 10}
    assert {d["tenant"] for d in (*acme.documents["elements"], *acme.documents["sensors"])} == {"acme"}
