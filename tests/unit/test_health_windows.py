"""The sensor health job's own SQL, run by Flink's local mini-cluster over a file of heartbeats, equals the
plain-Python oracle: the silent/recovered sequence of every sensor exactly, the health windows exactly
(floats to a relative 1e-9), and the late and invalid records. No server is involved."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from jobs.sensor_health import sensor_health_job
from operators.windows import tumbling
from pipeline.plan import diverted_query
from schemas.sql import field_names
from tests.flink_local import epoch_ms, iso, run_over_file
from tests.health_oracle import Silence, beats_from, sensor_health
from tests.health_patterns import OUT_OF_ORDERNESS, randomized, scripted

MINUTES = {"acme": 2, "globex": 3}
WINDOW = tumbling(minutes=5)
FILE_COLUMNS = ["`tenant` STRING", "`sensor_id` STRING", "`event_time` TIMESTAMP_LTZ(3)", "`decode_error` STRING",
                "`payload` BYTES", "`kafka_topic` STRING", "`kafka_partition` INT", "`kafka_offset` BIGINT",
                "`kafka_ts` TIMESTAMP_LTZ(3)"]
HEALTH_FIELDS = field_names("health_result.v1")[3:]  # after the tenant and the window


def _as_string(column: str) -> str:
    return f"CAST(`{column}` AS STRING)"


PATTERNS = {"scripted": lambda: scripted(MINUTES), "random-1": lambda: randomized(MINUTES, seed=1),
            "random-2": lambda: randomized(MINUTES, seed=2)}


@pytest.fixture(scope="module", params=sorted(PATTERNS))
def flink_run(request, tmp_path_factory):
    """Run the job's SQL once over the pattern: (beats, silences in emitted order, health, late, invalid)."""
    folder = tmp_path_factory.mktemp(f"health_{request.param}")
    beats = beats_from(PATTERNS[request.param]())
    with (folder / "beats.json").open("w") as out:
        for b in beats:
            out.write(json.dumps({
                "tenant": b.tenant, "sensor_id": b.sensor_id, "event_time": iso(b.event_time),
                "decode_error": b.decode_error, "kafka_topic": f"{b.topic_tenant}.sensors.heartbeats",
                "kafka_partition": 0, "kafka_offset": b.offset, "kafka_ts": iso(b.kafka_ts)}) + "\n")
    job = sensor_health_job(sorted(MINUTES), window=WINDOW, silence_minutes=MINUTES.__getitem__)
    rows = run_over_file(job, FILE_COLUMNS, folder / "beats.json", OUT_OF_ORDERNESS // 1000, folder)
    silence_query, health_query = (sink.query for sink in job.result_sinks())

    silences = [Silence(r[0], r[1], r[2], epoch_ms(r[3]), epoch_ms(r[4])) for r in rows(
        f"SELECT `tenant`, `sensor_id`, `state`, {_as_string('at')}, {_as_string('last_heartbeat')} "
        f"FROM ({silence_query})")]
    health = {(r[0], epoch_ms(r[1]), epoch_ms(r[2])): dict(zip(HEALTH_FIELDS, r[3:], strict=True)) for r in rows(
        f"SELECT `tenant`, {_as_string('window_start')}, {_as_string('window_end')}, "
        f"{', '.join(f'`{f}`' for f in HEALTH_FIELDS)} FROM ({health_query})")}
    diverted = "SELECT `tenant`, `offset`, `reason` FROM ({}) WHERE `route_suffix` = '{}'"
    late = sorted((r[0], r[1]) for r in rows(diverted.format(diverted_query(job), ".late")))
    invalid = {(r[0], r[1]): r[2] for r in rows(diverted.format(diverted_query(job), ".deadletter"))}
    return beats, silences, health, late, invalid


def _expected(beats):
    return sensor_health(beats, MINUTES, WINDOW.size_ms, OUT_OF_ORDERNESS)


def _by_sensor(silences: list[Silence]) -> dict[tuple[str, str], list[Silence]]:
    out = defaultdict(list)
    for s in silences:
        out[(s.tenant, s.sensor_id)].append(s)
    return dict(out)


def test_each_sensors_silent_and_recovered_sequence_equals_the_oracle(flink_run):
    beats, silences, _, _, _ = flink_run
    expected = _expected(beats).silences
    assert _by_sensor(silences) == _by_sensor(expected)  # the same events, each sensor's in the same order
    assert len(silences) == len(expected) > 20
    for sequence in _by_sensor(silences).values():
        assert [s.state for s in sequence] == ["silent", "recovered"] * (len(sequence) // 2) + \
            ["silent"] * (len(sequence) % 2)


def test_health_windows_equal_the_oracle(flink_run):
    beats, _, health, _, _ = flink_run
    expected = _expected(beats).health
    assert sorted(health) == sorted(expected)
    for window, fields in health.items():
        want = expected[window]
        assert {f: v for f, v in fields.items() if v is None} == {f: v for f, v in want.items() if v is None}
        assert {f: v for f, v in fields.items() if v is not None} == pytest.approx(
            {f: v for f, v in want.items() if v is not None}, rel=1e-9, abs=1e-9), window
    assert {tenant for tenant, _, _ in health} == set(MINUTES)


def test_late_and_invalid_records_equal_the_oracle(flink_run):
    beats, _, _, late, invalid = flink_run
    expected = _expected(beats)
    assert late == sorted(expected.late)
    assert sorted(invalid) == sorted(expected.invalid)
    for key, reason in invalid.items():
        assert reason.startswith(expected.invalid[key]), (key, reason)


@pytest.mark.parametrize("flink_run", ["scripted"], indirect=True)
def test_the_scripted_pattern_shows_what_it_was_written_for(flink_run):
    _, silences, health, late, invalid = flink_run
    for tenant, n_min in MINUTES.items():
        states = {sensor: [s.state for s in seq] for (t, sensor), seq in _by_sensor(silences).items() if t == tenant}
        # every sensor ends silent (the end of the input closes every session)
        assert all(seq[-1] == "silent" for seq in states.values())
        assert states["gone"] == ["silent"] and states["steady"] == ["silent"]
        assert states["blip"] == ["silent"] and states["exact"] == ["silent"]  # gaps of N - 30 s and of N
        assert states["back"] == ["silent", "recovered", "silent"]
        assert states["twice"] == ["silent", "recovered"] * 2 + ["silent"]
        edge = [s for s in silences if (s.tenant, s.sensor_id) == (tenant, "edge")]
        assert edge[0].at == edge[1].at == edge[0].last_heartbeat + n_min * 60_000  # silent and back at once
        assert len([k for k in late if k[0] == tenant]) == 2
        assert len([k for k in invalid if k[0] == tenant]) == 7
        assert max(h["known_sensors"] for (t, _, _), h in health.items() if t == tenant) == 10
