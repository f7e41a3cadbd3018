"""The latency probe's arithmetic without servers: pacing, phases, loads, events to windows, percentiles, decoders."""

from __future__ import annotations

import json
from itertools import islice, pairwise

import pytest

from bench.latency import (
    CommitHistory,
    LatencySpec,
    Ledger,
    alarm_load,
    decode_alarm_result,
    decode_flow_result,
    decode_json_result,
    flow_load,
    live_load,
    percentile,
)
from bench.plain_python import result_record
from schemas import codec
from submit.simulate import FLOW_SENSORS

WINDOW, LATE = 10_000, 5_000
T0 = 1_767_225_600_000  # a window start (2026-01-01T00:00:00Z)


def test_percentile_is_the_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([3, 1, 2], 50) == 2  # sorts


def test_percentile_of_nothing_is_nan_not_an_error():
    assert percentile([], 50) != percentile([], 50)


def test_phases_hold_exact_event_counts_and_the_tail_closes_the_last_window():
    spec = LatencySpec(rate=2000, warmup_s=20, measure_s=60, window_ms=WINDOW, out_of_orderness_ms=LATE, margin_s=10)
    assert spec.tail_s == 25
    assert spec.phase_events() == (40_000, 120_000, 50_000)
    assert spec.total_events == 210_000
    assert sum(spec.measured(n) for n in range(spec.total_events)) == 120_000
    assert not spec.measured(39_999) and spec.measured(40_000)
    assert spec.measured(159_999) and not spec.measured(160_000)


def test_pacing_spreads_events_evenly_over_the_phases():
    spec = LatencySpec(rate=300, warmup_s=1, measure_s=2, window_ms=1000, out_of_orderness_ms=0, margin_s=0.5)
    assert spec.phase_events() == (300, 600, 450)
    assert spec.due(0) == 0
    assert spec.due(300) == pytest.approx(1.0)
    assert spec.due(spec.total_events) == pytest.approx(1 + 2 + 1.5)  # the run lasts its phases, not longer


def test_an_odd_rate_still_gives_whole_phases():
    spec = LatencySpec(rate=333.3, warmup_s=2, measure_s=3, window_ms=1000, out_of_orderness_ms=0, margin_s=0)
    assert spec.phase_events() == (667, 1000, 333)
    assert spec.total_events == 2000


def test_the_alarm_load_takes_tenants_and_then_their_sensors_in_turn():
    records = list(islice(alarm_load(["a", "b"], sensors=40), 80))  # 20 per tenant: 2 stations x 10 datapoints
    sensors = [(r.tenant, r.sensor) for r in records]
    assert sensors[:3] == [("a", "bts-0000/dp-0"), ("b", "bts-0000/dp-0"), ("a", "bts-0000/dp-1")]
    assert sensors[2 * 19] == ("a", "bts-0001/dp-9")
    assert sensors[2 * 20] == ("a", "bts-0000/dp-0")  # round again
    assert len(set(sensors)) == 40
    assert {r.topic for r in records} == {"a.sensors.alarms", "b.sensors.alarms"}


def test_the_alarm_load_encodes_the_append_time_as_event_time():
    record = next(alarm_load(["a"], sensors=10))
    decoded = codec.decode(record.encode(T0 + 123), "alarm_event.v2")
    assert (decoded["tenant"], decoded["station_id"], decoded["datapoint_id"]) == ("a", "bts-0000", "dp-0")
    assert int(decoded["event_time"].timestamp() * 1000) == T0 + 123


def test_the_flow_load_is_the_plants_clean_readings_keyed_by_sensor_at_the_append_time():
    records = list(islice(flow_load(["a", "b"]), 2_000))
    assert [r.tenant for r in records[:4]] == ["a", "b", "a", "b"]
    assert {r.topic for r in records} == {"a.sensors.flow", "b.sensors.flow"}
    assert {r.sensor for r in records} == {s for s, *_ in FLOW_SENSORS}  # all the plant's sensors
    decoded = codec.decode(records[7].encode(T0 + 123), "flow_reading.v1")
    assert (decoded["tenant"], decoded["sensor_id"]) == (records[7].tenant, records[7].sensor)
    assert int(decoded["event_time"].timestamp() * 1000) == T0 + 123
    meter = [r.fields for r in records if (r.tenant, r.sensor) == ("a", "ship-1-energy")]
    assert len(meter) > 1
    assert all(later["value"] >= earlier["value"] or later["reset"] for earlier, later in pairwise(meter))


def test_each_stream_has_its_load_and_an_unknown_one_is_an_error():
    spec = LatencySpec(sensors=20)
    assert next(live_load("alarms", ["a"], spec)).topic == "a.sensors.alarms"
    assert next(live_load("flow", ["a"], spec)).topic == "a.sensors.flow"
    with pytest.raises(ValueError, match="heartbeats"):
        live_load("heartbeats", ["a"], spec)


def test_events_fall_into_their_window_and_latency_is_visible_minus_append():
    ledger = Ledger(WINDOW, LATE)
    ledger.appended("a", "s/d", T0 + 1_000)
    ledger.appended("a", "s/d", T0 + 9_999)
    ledger.appended("a", "s/d", T0 + 10_000)  # the next window
    assert ledger.saw(("a", "s/d", T0), T0 + 16_000)
    assert not ledger.saw(("a", "s/d", T0), T0 + 30_000)  # seen again: the first time counts
    ledger.saw(("a", "s/d", T0 + 10_000), T0 + 25_500)
    ledger.saw(("a", "s/d", T0 - 10_000), T0)  # a warm-up window: seen, not measured
    f = ledger.figures()
    assert (f.events, f.windows, f.missing_windows, f.missing_events) == (3, 2, 0, 0)
    # latencies 15,000, 6,001 and 15,500 ms
    assert f.p50_latency_ms == 15_000
    assert f.p99_latency_ms == 15_500
    # close-to-visible: 16,000 - (10,000 + 5,000) and 25,500 - (20,000 + 5,000)
    assert f.close_to_visible_p50_ms == 500
    assert f.close_to_visible_p99_ms == 1_000
    assert ledger.results_seen == 4


def test_missing_windows_are_counted_and_push_the_percentiles_rather_than_vanish():
    ledger = Ledger(WINDOW, LATE)
    for i in range(99):  # 99 windows seen 100 ms after they closed
        start = T0 + i * WINDOW
        ledger.appended("a", "s/d", start)
        ledger.saw(("a", "s/d", start), start + WINDOW + LATE + 100)
    ledger.appended("b", "s/d", T0)  # never seen: two events
    ledger.appended("b", "s/d", T0 + 1)
    f = ledger.figures()
    assert (f.events, f.windows, f.missing_windows, f.missing_events) == (101, 100, 1, 2)
    assert f.p50_latency_ms == WINDOW + LATE + 100
    assert f.p99_latency_ms is None  # it falls on a missing event: reported, not made up
    assert f.close_to_visible_p50_ms == 100
    assert f.close_to_visible_p99_ms == 100  # 99 of 100 windows were seen
    assert ledger.missing() == 1


def test_figures_against_another_visibility_such_as_rows_in_cassandra():
    ledger = Ledger(WINDOW, LATE)
    ledger.appended("a", "s/d", T0)
    ledger.appended("b", "s/d", T0)
    ledger.saw(("a", "s/d", T0), T0 + 15_500)
    ledger.saw(("b", "s/d", T0), T0 + 15_500)
    stored = ledger.figures({("a", "s/d", T0): T0 + 16_000})
    assert (stored.missing_windows, stored.p50_latency_ms, stored.p99_latency_ms) == (1, 16_000, None)
    assert ledger.figures().missing_windows == 0  # the topics' own figures are untouched


def test_commit_history_tells_when_the_writer_committed_past_each_result():
    history = CommitHistory()
    history.note("t", 0, -1001, T0)  # nothing committed yet
    history.note("t", 0, 5, T0 + 100)  # records 0..4 written
    history.note("t", 0, 5, T0 + 200)  # the same offset again: no news
    history.note("t", 0, 9, T0 + 300)
    history.note("t", 1, 2, T0 + 400)
    where = {("a", "s/d0", T0): ("t", 0, 4), ("a", "s/d1", T0): ("t", 0, 5), ("a", "s/d2", T0): ("t", 0, 9),
             ("a", "s/d3", T0): ("t", 1, 1), ("a", "s/d4", T0): ("u", 0, 0)}
    assert history.passed(where) == {("a", "s/d0", T0): T0 + 100, ("a", "s/d1", T0): T0 + 300,
                                     ("a", "s/d3", T0): T0 + 400}


def test_a_run_without_results_reports_every_window_missing():
    ledger = Ledger(WINDOW, LATE)
    ledger.appended("a", "s/d", T0)
    f = ledger.figures()
    assert (f.missing_windows, f.missing_events, f.p50_latency_ms, f.close_to_visible_p50_ms) == (1, 1, None, None)


def test_flink_results_decode_from_avro_to_their_key():
    value = codec.encode("alarm_rate_result.v1", {"tenant": "a", "station_id": "bts-0001", "datapoint_id": "dp-2",
                                                  "window_start": T0, "window_end": T0 + WINDOW, "fires": 1,
                                                  "events": 4, "rate": 0.25})
    assert decode_alarm_result(value) == ("a", "bts-0001/dp-2", T0)


def test_quix_and_plain_results_decode_from_json_to_their_key():
    value = json.dumps(result_record("a", "bts-0001", "dp-2", T0, T0 + WINDOW, 1, 4)).encode()
    assert decode_json_result(value) == ("a", "bts-0001/dp-2", T0)


def test_flow_results_decode_to_their_sensor_and_window_and_rows_without_readings_too():
    row = {"tenant": "a", "sensor_id": "ship-1-power", "element_id": "ship-1", "kind": "power", "window_start": T0,
           "window_end": T0 + WINDOW, "readings": 0, "breaches": 0, "energy_kwh": 0.0}
    assert decode_flow_result(codec.encode("flow_result.v1", row)) == ("a", "ship-1-power", T0)


def test_a_flow_row_stands_for_its_sensors_readings_in_its_window_and_a_row_without_readings_for_none():
    ledger = Ledger(WINDOW, LATE)
    ledger.appended("a", "pump-1-flow", T0 + 500)
    ledger.appended("a", "pump-2-flow", T0 + 600)  # the same tenant and window, another sensor: another result
    ledger.saw(("a", "pump-1-flow", T0), T0 + 15_500)
    ledger.saw(("a", "ship-1-power", T0), T0 + 15_700)  # the ship was at sea: a row with readings 0
    f = ledger.figures()
    assert (f.events, f.windows, f.missing_windows, f.missing_events) == (2, 2, 1, 1)
    assert (f.p50_latency_ms, f.close_to_visible_p50_ms) == (15_000, 500)
    assert ledger.results_seen == 2


@pytest.mark.parametrize("decode", [decode_alarm_result, decode_json_result, decode_flow_result])
def test_undecodable_results_raise_a_value_error_the_watcher_counts(decode):
    with pytest.raises(ValueError):
        decode(b"hello, not a result")
