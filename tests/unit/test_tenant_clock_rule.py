"""The bound on how far behind its Kafka append time an event time may be, run by Flink's local mini-cluster
over a file: records further behind are dead letters with the reason, and every record, valid or not, moves
the watermark to at least its append time - bound - out-of-orderness, so a partition whose event time stands
still does not hold the watermark back. Compared exactly with the plain-Python oracle."""

from __future__ import annotations

import dataclasses
import itertools
import random
import time

import pytest

from bench.run import BenchSpec, _flow_workload, _workload, flow_max_behind_s
from jobs.alarm_rate import alarm_rate_job
from operators.windows import tumbling
from pipeline.job import DEFAULT_MAX_BEHIND_S
from submit.simulate import HOUR_MS, SimulationSpec, alarm_events, flow_readings
from tests.flink_local import epoch_ms
from tests.oracle import Reading, alarm_rate, routed
from tests.unit.test_alarm_rate_windows import DELAY_S, run_routed

WINDOW = tumbling(seconds=10)
MAX_BEHIND_S = 20
TENANT = "acme"
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a window edge


def readings_with_a_frozen_clock(seed: int) -> list[Reading]:
    """A tenant's partition: live stretches; a stretch whose event time stands still while the append time
    runs on for three bounds; a stretch of undecodable records; records exactly at and just past the bound."""
    rng = random.Random(seed)
    readings: list[Reading] = []
    appended = START

    def add(event_time: int | None, **change) -> None:
        fields = {"tenant": TENANT, "station_id": f"bts-{rng.randrange(3)}", "datapoint_id": "dp-0",
                  "event_time": event_time, "value": float(rng.randrange(0, 12)), "threshold": 5.0,
                  "alarm_id": f"a{len(readings)}", **change}
        readings.append(Reading(offset=len(readings), kafka_ts=appended, **fields))

    for stretch in range(3):
        for _ in range(150):  # live: event time = append time, now and then a little out of order
            appended += rng.choice([13, 250, 1000])
            add(appended - (rng.randrange(1, DELAY_S * 1000) if rng.random() < 0.1 else 0))
        frozen = appended
        while appended < frozen + 3 * MAX_BEHIND_S * 1000:  # the event time stands still
            appended += rng.choice([250, 500])
            add(frozen)
        for _ in range(40):  # bytes that do not decode, while the broker's clock runs on
            appended += 500
            readings.append(Reading(offset=len(readings), kafka_ts=appended, decode_error="corrupt Avro body: test"))
        appended += 1000
        add(appended - MAX_BEHIND_S * 1000)  # exactly at the bound: valid
        add(appended - MAX_BEHIND_S * 1000 - 1)  # a millisecond past it
        if stretch == 1:
            add(appended - 2 * 24 * 3600 * 1000)  # two days behind
    return readings


@pytest.fixture(scope="module")
def flink_run(tmp_path_factory):
    """(readings, windows, late offsets, invalid offset -> reason, offset -> watermark before the record)."""
    readings = readings_with_a_frozen_clock(seed=20261207)
    job = dataclasses.replace(alarm_rate_job([TENANT], window=WINDOW), max_behind_s=MAX_BEHIND_S)
    rows, windows, late, invalid = run_routed(job, readings, tmp_path_factory.mktemp("tenant_clock"))
    watermarks = {r[0]: r[1] and epoch_ms(r[1]) for r in rows(
        f"SELECT kafka_offset, CAST(CURRENT_WATERMARK(`rowtime`) AS STRING) FROM `{job.table('source')}`")}
    return readings, windows, late, invalid, watermarks


def oracle(readings: list[Reading]):
    return alarm_rate(readings, TENANT, WINDOW.size_ms, DELAY_S * 1000, MAX_BEHIND_S * 1000)


def test_records_further_behind_their_append_time_than_the_bound_are_dead_letters_with_the_reason(flink_run):
    readings, _, _, invalid, _ = flink_run
    behind = {r.offset for r in readings if r.event_time is not None
              and r.event_time < r.kafka_ts - MAX_BEHIND_S * 1000}
    assert len(behind) > 100
    assert sorted(invalid) == sorted(oracle(readings).invalid)
    assert behind <= set(invalid)
    for offset in behind:
        assert invalid[offset].startswith("event time too far behind: event_time "), invalid[offset]
        assert f"is more than {MAX_BEHIND_S} s before the Kafka append time" in invalid[offset]
    at_the_bound = [r.offset for r in readings if r.event_time == r.kafka_ts - MAX_BEHIND_S * 1000]
    assert len(at_the_bound) >= 3 and not set(at_the_bound) & set(invalid)


def test_every_record_moves_the_watermark_to_its_append_time_less_the_bound(flink_run):
    """The watermark each record meets in Flink is the oracle's after the record before it; after a frozen or
    undecodable stretch it has moved on with the append times."""
    readings, _, _, _, watermarks = flink_run
    after = [w for *_, w in routed(readings, lambda _r: None, DELAY_S * 1000, MAX_BEHIND_S * 1000)]
    before = [None, *after[:-1]]
    assert [watermarks[r.offset] for r in readings] == before
    for previous, r in itertools.pairwise(readings):
        if previous.decode_error or previous.event_time < previous.kafka_ts - MAX_BEHIND_S * 1000:
            assert watermarks[r.offset] >= previous.kafka_ts - (MAX_BEHIND_S + DELAY_S) * 1000


def test_windows_and_late_records_equal_the_oracle(flink_run):
    readings, windows, late, invalid, _ = flink_run
    expected = oracle(readings)
    assert windows == expected.windows and late == expected.late
    assert sum(events for _, events, _ in windows.values()) + len(late) + len(invalid) == len(readings)


def test_simulated_times_are_within_both_bounds_of_their_append_times():
    """Simulations are sent in seconds: their times start at the next whole hour, ahead of the wall clock, and
    the bench's days of flow readings are a history ending there, read by a job whose bound covers it."""
    now = int(time.time() * 1000)
    alarms = SimulationSpec(tenants=("acme",), events=20_000, late=0.02)
    times = [r.fields["event_time"] for r in alarm_events(alarms) if r.kind in ("on time", "out of order", "late")]
    assert now < alarms.start_ms <= now + HOUR_MS and alarms.start_ms % HOUR_MS == 0
    assert min(times) > now - DEFAULT_MAX_BEHIND_S * 1000 and max(times) < now + 23 * HOUR_MS

    bench = BenchSpec(events=2_000, tenants=2, sensors=100, flow_events=30_000)
    flow = _flow_workload(bench, _workload(bench, "abc123"))
    times = [r.fields["event_time"] for r in flow_readings(flow)]
    assert max(times) - min(times) > 24 * HOUR_MS  # more than the 24 h ahead a job takes
    assert now - flow_max_behind_s(flow) * 1000 < min(times) and max(times) < now + HOUR_MS
