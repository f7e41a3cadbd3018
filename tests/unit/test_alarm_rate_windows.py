"""The alarm-rate job's routing and window SQL, run by Flink's local mini-cluster over a file of
randomized events, equals the plain-Python oracle exactly. No server is involved."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from jobs.alarm_rate import alarm_rate_job
from operators.windows import tumbling
from pipeline.job import Job
from pipeline.plan import diverted_query, results_query
from tests.flink_local import epoch_ms, iso, run_over_file
from tests.oracle import Reading, alarm_rate

WINDOW = tumbling(seconds=10)
DELAY_S = 2
TENANT = "acme"
START = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a window edge


def randomized_readings(seed: int, n: int = 1500) -> list[Reading]:
    """Out-of-order, late, duplicate-key, window-edge and invalid readings in one partition's order."""
    rng = random.Random(seed)
    readings, now = [], START
    for offset in range(n):
        now += rng.choice([0, 7, 13, 250, 1000])
        roll = rng.random()
        if roll < 0.05:
            event_time = now - rng.randrange(1, DELAY_S * 1000)  # out of order, within the bound
        elif roll < 0.08:
            event_time = now - rng.randrange(DELAY_S * 1000 + 1, 40_000)  # behind the watermark
        elif roll < 0.14:
            event_time = now - now % WINDOW.size_ms + rng.choice([0, WINDOW.size_ms - 1, WINDOW.size_ms])  # edges
        else:
            event_time = now
        reading = Reading(offset=offset, kafka_ts=now + 5, tenant=rng.choice(["", TENANT]),
                          station_id=f"bts-{rng.randrange(3)}", datapoint_id=f"dp-{rng.randrange(2)}",
                          event_time=event_time, value=float(rng.randrange(0, 12)),
                          threshold=rng.choice([5.0, 9.0, 11.0, 999999.0]))
        bad = rng.random()
        if bad < 0.01:
            reading = Reading(offset=offset, kafka_ts=now + 5, decode_error="corrupt Avro body: test")
        elif bad < 0.02:
            reading = Reading(**{**reading.__dict__, "station_id": ""})
        elif bad < 0.03:
            reading = Reading(**{**reading.__dict__, "event_time": now + 2 * 24 * 3600 * 1000})
        elif bad < 0.04:
            reading = Reading(**{**reading.__dict__, "tenant": "globex"})
        readings.append(reading)
    # A record AT the watermark, in the last millisecond of a window that the watermark has just closed:
    # late, not lost (Flink's window drops it, so the pipeline must route it to the late topic).
    edge = now - now % WINDOW.size_ms + 2 * WINDOW.size_ms
    for offset, event_time in enumerate((edge - 1 + DELAY_S * 1000, edge - 1), len(readings)):
        readings.append(Reading(offset=offset, kafka_ts=event_time + 5, tenant=TENANT, station_id="bts-0",
                                datapoint_id="dp-0", event_time=event_time, value=1.0, threshold=5.0))
    return readings


def _write_json_lines(readings: list[Reading], path) -> None:
    with path.open("w") as out:
        for r in readings:
            out.write(json.dumps({
                "tenant": r.tenant, "station_id": r.station_id, "datapoint_id": r.datapoint_id,
                "alarm_id": f"a{r.offset}", "event_time": iso(r.event_time), "value": r.value,
                "valueThreshold": r.threshold, "isActive": True, "decode_error": r.decode_error,
                "kafka_topic": f"{TENANT}.sensors.alarms",
                "kafka_partition": 0, "kafka_offset": r.offset, "kafka_ts": iso(r.kafka_ts)}) + "\n")


FILE_COLUMNS = ["`tenant` STRING", "`station_id` STRING", "`datapoint_id` STRING", "`alarm_id` STRING",
                "`event_time` TIMESTAMP_LTZ(3)", "`value` DOUBLE", "`valueThreshold` DOUBLE", "`isActive` BOOLEAN",
                "`decode_error` STRING", "`payload` BYTES", "`kafka_topic` STRING", "`kafka_partition` INT",
                "`kafka_offset` BIGINT", "`kafka_ts` TIMESTAMP_LTZ(3)"]


@pytest.fixture(scope="module")
def flink_run(tmp_path_factory):
    """Run the job's SQL once over the file: (readings, windows, late offsets, invalid offset -> reason)."""
    readings = randomized_readings(seed=20261125)
    _, windows, late, invalid = run_routed(alarm_rate_job([TENANT], window=WINDOW), readings,
                                           tmp_path_factory.mktemp("alarm_windows"))
    return readings, windows, late, invalid


def run_routed(job: Job, readings: list[Reading], folder: Path) -> tuple:
    """Run `job`'s SQL over `readings` in a file: (a function that runs a query to the end and returns its rows,
    windows, late offsets, invalid offset -> reason)."""
    _write_json_lines(readings, folder / "events.json")
    rows = run_over_file(job, FILE_COLUMNS, folder / "events.json", DELAY_S, folder)
    windows = {(r[0], r[1], epoch_ms(r[2]), epoch_ms(r[3])): (r[4], r[5], r[6]) for r in rows(
        "SELECT station_id, datapoint_id, CAST(window_start AS STRING), CAST(window_end AS STRING), fires, events, "
        f"rate FROM ({results_query(job)})")}
    diverted = "SELECT `offset`, reason FROM ({}) WHERE `route_suffix` = '{}'"
    late = sorted(r[0] for r in rows(diverted.format(diverted_query(job), ".late")))
    invalid = {r[0]: r[1] for r in rows(diverted.format(diverted_query(job), ".deadletter"))}
    return rows, windows, late, invalid


def test_windows_equal_the_oracle_exactly(flink_run):
    readings, windows, _, _ = flink_run
    expected = alarm_rate(readings, TENANT, WINDOW.size_ms, DELAY_S * 1000)
    assert windows == expected.windows
    assert len(windows) > 50  # many windows and keys were exercised


def test_late_records_are_exactly_those_behind_the_watermark(flink_run):
    readings, _, late, _ = flink_run
    expected = alarm_rate(readings, TENANT, WINDOW.size_ms, DELAY_S * 1000)
    assert late == expected.late
    assert len(late) > 10


def test_invalid_records_are_diverted_with_their_reason(flink_run):
    readings, _, _, invalid = flink_run
    expected = alarm_rate(readings, TENANT, WINDOW.size_ms, DELAY_S * 1000)
    assert sorted(invalid) == sorted(expected.invalid)
    for offset, reason in invalid.items():
        assert reason.startswith(expected.invalid[offset]), (offset, reason)


def test_every_record_is_counted_once(flink_run):
    readings, windows, late, invalid = flink_run
    assert sum(events for _, events, _ in windows.values()) + len(late) + len(invalid) == len(readings)
