"""The bench without servers: its arguments, its table, what it leaves unmeasured, the flow contender's workload
and job."""

from __future__ import annotations

import io

from bench.flink_job import tenantstream_job
from bench.measure import Measurement
from bench.run import BenchSpec, _flow_workload, _not_measured, _throughput_table, _workload
from jobs.alarm_rate import ALARM_RATE_TABLE
from jobs.flow_aggregates import FLOW_TABLE
from submit.cli import bench_spec, build_parser
from submit.simulate import FLOW_SENSORS, flow_readings


def _spec(*argv: str) -> BenchSpec:
    return bench_spec(build_parser().parse_args(["bench", *argv]))


def test_the_flow_job_is_measured_by_default_on_as_many_readings_as_there_are_events():
    spec = _spec()
    assert (spec.events, spec.flow, spec.flow_events, spec.flow_total) == (2_000_000, True, None, 2_000_000)
    assert _spec("--events", "30000").flow_total == 30_000
    assert _spec("--events", "30000", "--flow-events", "5000").flow_total == 5_000
    assert not _spec("--no-flow").flow


def _measurement(name: str, events_per_second: float, workload: str = "alarms") -> Measurement:
    return Measurement(name, int(events_per_second * 10), 10.0, 2**30, workload=workload)


def _table(measurements: list[Measurement]) -> tuple[list[dict], dict[str, str]]:
    """The JSON rows, and each printed row's job/it column by contender name."""
    out = io.StringIO()
    rows = _throughput_table(measurements, out)
    printed = out.getvalue()
    columns = {m.name: line[len(m.name):].split()[1] for m in measurements
               for line in printed.splitlines() if line.startswith(m.name + " ")}
    return rows, columns | {"": printed}


def test_the_alarm_rows_compare_with_the_job_at_p1_and_the_flow_rows_say_n_a():
    rows, columns = _table([_measurement("hand-written Flink SQL p1", 200.0),
                            _measurement("tenantstream alarm_rate p1", 100.0),
                            _measurement("tenantstream flow_aggregates p1", 50.0, "flow"),
                            _measurement("tenantstream flow_aggregates p2", 80.0, "flow")])
    assert [r["job_p1_ratio"] for r in rows] == [0.5, 1.0, None, None]
    assert [r["workload"] for r in rows] == ["alarms", "alarms", "flow", "flow"]
    assert columns["hand-written Flink SQL p1"] == "0.50"
    assert columns["tenantstream flow_aggregates p1"] == columns["tenantstream flow_aggregates p2"] == "n/a"
    legend = " ".join(columns[""].split())
    assert "tenantstream flow_aggregates" in legend and "no baseline" in legend and "n/a" in legend


def test_without_the_alarm_job_at_p1_no_row_has_a_ratio():
    rows, columns = _table([_measurement("hand-written Flink SQL p2", 200.0),
                            _measurement("tenantstream alarm_rate p2", 100.0)])
    assert [r["job_p1_ratio"] for r in rows] == [None, None]
    assert columns["tenantstream alarm_rate p2"] == "n/a"
    assert "flow" not in columns[""]  # no flow rows, no flow legend


def test_a_contender_that_read_nothing_has_no_ratio():
    rows, _ = _table([_measurement("tenantstream alarm_rate p1", 100.0), _measurement("plain Python loop", 0.0)])
    assert rows[1]["job_p1_ratio"] is None


def test_not_measured_says_why_the_flow_rows_stand_alone_or_that_they_were_skipped():
    with_flow = _not_measured(BenchSpec(latency=None))  # the default
    assert any("flow_aggregates against a baseline" in n for n in with_flow)
    assert any("flow_aggregates latency" in n for n in with_flow)
    skipped = "tenantstream flow_aggregates: skipped (--no-flow)"
    assert skipped in _not_measured(BenchSpec(flow=False, latency=None))


def test_the_flow_workload_has_its_own_count_over_the_same_tenants_and_is_as_clean():
    spec = BenchSpec(events=1_400, tenants=2, flow_events=700)
    work = _workload(spec, "abc123")
    readings = list(flow_readings(_flow_workload(spec, work)))
    assert len(readings) == 700
    assert {r.kind for r in readings} <= {"on time", "out of order"}  # no bad or late readings, like the alarms
    assert {r.topic for r in readings} == {f"{t}.sensors.flow" for t in work.tenants}
    assert {r.fields["sensor_id"] for r in readings} == {s for s, *_ in FLOW_SENSORS}
    as_many = BenchSpec(events=1_400, tenants=2)
    assert _flow_workload(as_many, _workload(as_many, "abc123")).events == 700  # per tenant: 1,400 in all


def test_the_flow_contender_is_the_flow_job_on_the_simulated_plant_with_its_own_window():
    job, table = tenantstream_job("flow", ["acme", "globex"])
    assert (job.name, job.tenants, table) == ("flow", ("acme", "globex"), FLOW_TABLE)
    assert job.tumbling.size_ms == 15 * 60_000
    assert (job.topics("acme").source, job.topics("acme").results) == ("acme.sensors.flow", "acme.results.flow")
    job, table = tenantstream_job("job", ["acme"], window_s=10)
    assert (job.name, table, job.tumbling.size_ms) == ("alarm_rate", ALARM_RATE_TABLE, 10_000)
