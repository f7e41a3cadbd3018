"""The bench without servers: its arguments, its table, what it leaves unmeasured, the flow contender's workload
and job."""

from __future__ import annotations

import io
import os

from bench.flink_job import tenantstream_job
from bench.latency import LatencySpec, decode_alarm_result, decode_flow_result
from bench.measure import Measurement
from bench.run import (
    BenchSpec,
    _cpu_table,
    _flow_workload,
    _latency_report,
    _live_contenders,
    _not_measured,
    _own_group,
    _throughput_table,
    _workload,
    is_run_topic,
    median_runs,
)
from jobs.alarm_rate import ALARM_RATE_TABLE
from jobs.flow_aggregates import FLOW_TABLE
from stack.config import load_config
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
    with_flow = _not_measured(BenchSpec())  # the default
    assert any("flow_aggregates against a baseline" in n for n in with_flow)
    assert not any("flow_aggregates latency" in n for n in with_flow)  # measured now
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


def _argument(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_the_latency_phase_runs_the_flow_job_live_at_each_parallelism_on_flow_topics_of_its_own():
    contenders = _live_contenders(load_config(), LatencySpec(tenants=3), quix=False, run_id="abc123",
                                  parallelism=(1, 2), flow=True)
    assert [c.name for c in contenders] == [
        "hand-written Flink SQL p1", "tenantstream alarm_rate p1", "hand-written Flink SQL p2",
        "tenantstream alarm_rate p2", "plain Python loop", "tenantstream flow_aggregates p1",
        "tenantstream flow_aggregates p2"]
    tenants = [t for c in contenders for t in c.tenants]
    assert len(tenants) == len(set(tenants)) == 7 * 3  # fresh tenants for each contender
    for p, flow in enumerate(contenders[-2:], 1):
        assert (flow.stream, flow.parallelism, flow.decode, flow.group) == ("flow", p, decode_flow_result, None)
        assert flow.inputs == [f"{t}.sensors.flow" for t in flow.tenants]
        assert flow.results_topics == [f"{t}.results.flow" for t in flow.tenants]
        assert flow.argv[3:5] == ["flow", "--tenants"] and "--live" in flow.argv
        assert _argument(flow.argv, "--tenants") == ",".join(flow.tenants)
        assert _argument(flow.argv, "--parallelism") == str(p)
        assert _argument(flow.argv, "--window-s") == "10"  # the window of every contender
        assert flow.writer_group is not None and _argument(flow.argv, "--group") in flow.writer_group
    alarm_job = contenders[1]
    assert (alarm_job.stream, alarm_job.decode, alarm_job.argv[3]) == ("alarms", decode_alarm_result, "job")
    assert alarm_job.inputs == [f"{t}.sensors.alarms" for t in alarm_job.tenants]


def test_the_clean_up_takes_every_topic_of_its_run_and_none_of_another():
    run, other = "abc123", "abc124"
    work = _workload(BenchSpec(tenants=3, sensors=30), run)
    contenders = _live_contenders(load_config(), LatencySpec(tenants=3), quix=True, run_id=run, parallelism=(1, 2),
                                  flow=True)
    topics = [*(f"{t}.sensors.{s}" for t in work.tenants for s in ("alarms", "flow")),
              *(f"{t}.results.{j}" for t in work.tenants for j in ("alarm_rate", "flow")),
              *(topic for c in contenders for topic in (*c.inputs, *c.results_topics)),
              f"bench-{run}.results.handwritten1", f"bench-{run}.results.quix"]
    assert all(is_run_topic(run, topic) for topic in topics)
    assert not any(is_run_topic(other, topic) for topic in topics)
    assert not is_run_topic(run, "acme.sensors.alarms")


def test_without_the_flow_job_the_latency_phase_has_only_alarm_contenders():
    contenders = _live_contenders(load_config(), LatencySpec(), quix=False, run_id="abc123", parallelism=(1,))
    assert [c.stream for c in contenders] == ["alarms"] * 3


def _latency_row(name: str, workload: str) -> dict:
    figures = {"events": 100, "windows": 10, "missing_windows": 0, "missing_events": 0, "p50_latency_ms": 10_500.0,
               "p99_latency_ms": 15_200.0, "close_to_visible_p50_ms": 700.0, "close_to_visible_p99_ms": 900.0}
    return {"name": name, "parallelism": 1, "workload": workload, **figures, "results_seen": 12,
            "undecodable_results": 0, "behind_schedule_s": 0.0, "in_cassandra": figures, "peak_rss_bytes": 2**30}


def test_the_latency_table_has_the_flow_rows_and_says_what_their_rows_stand_for():
    out = io.StringIO()
    report = _latency_report(LatencySpec(), [_latency_row("tenantstream alarm_rate p1", "alarms"),
                                             _latency_row("tenantstream flow_aggregates p1", "flow")], out)
    printed = out.getvalue()
    flow = "tenantstream flow_aggregates p1"
    flow_line = next(line for line in printed.splitlines() if line.startswith(flow + " "))
    assert flow_line[len(flow):].split() == ["10,500", "15,200", "700", "900", "1,024", "0"]
    legend = " ".join(printed.split())
    assert f"{len(FLOW_SENSORS)} sensors per tenant" in legend and "readings 0" in legend
    assert report["flow_sensors"] == 10 * len(FLOW_SENSORS)
    assert [r["workload"] for r in report["contenders"]] == ["alarms", "flow"]
    alarms_only = _latency_report(LatencySpec(), [_latency_row("tenantstream alarm_rate p1", "alarms")], io.StringIO())
    assert (alarms_only["flow_sensors"], alarms_only["flow"]) == (None, None)


def test_the_hand_written_sql_and_the_job_run_three_rounds_by_default():
    assert _spec().rounds == 3
    assert _spec("--rounds", "1").rounds == 1


def test_each_round_of_a_flink_contender_reads_as_a_consumer_group_of_its_own():
    argv = ["python", "-m", "bench.flink_job", "job", "--group", "bench-x-job1", "--keyspace", "k"]
    assert _own_group(argv, 4) == ["python", "-m", "bench.flink_job", "job", "--group", "bench-x-job1-r4",
                                   "--keyspace", "k"]
    assert _own_group(argv, 4) != _own_group(argv, 6)
    drain = ["python", "-m", "bench.drain", "--topics", "t"]
    assert _own_group(drain, 2) == drain


def _run(name: str, seconds: float, peak_mib: int) -> Measurement:
    return Measurement(name, 1000, seconds, peak_mib * 2**20, details={"seconds": seconds})


def test_a_repeated_contender_shows_its_median_run_its_highest_peak_and_every_run():
    runs = [_run("hw p1", 10.0, 100), _run("job p1", 20.0, 300), _run("drain", 2.0, 50),
            _run("hw p1", 30.0, 200), _run("job p1", 12.0, 100), _run("hw p1", 20.0, 150), _run("job p1", 16.0, 200)]
    hw, job, drain = median_runs(runs)
    assert (hw.name, hw.seconds, hw.peak_rss_bytes) == ("hw p1", 20.0, 200 * 2**20)
    assert (job.name, job.seconds, job.peak_rss_bytes) == ("job p1", 16.0, 300 * 2**20)
    assert [r["seconds"] for r in hw.details["runs"]] == [10.0, 30.0, 20.0]  # in the order they ran
    assert hw.details["seconds"] == 20.0
    assert drain == runs[2] and "runs" not in drain.details


def test_of_an_even_count_of_runs_the_slower_middle_one_counts():
    [job] = median_runs([_run("job p1", 10.0, 1), _run("job p1", 14.0, 1), _run("job p1", 12.0, 1),
                         _run("job p1", 40.0, 1)])
    assert job.seconds == 14.0


def test_the_table_says_how_many_runs_a_row_stands_for_and_lists_them():
    job = "tenantstream alarm_rate p1"
    rows, columns = _table(median_runs([_run(job, 10.0, 1), _run(job, 12.0, 1), _run("plain Python loop", 5.0, 1)]))
    printed = columns[""]
    job_line = next(line for line in printed.splitlines() if line.startswith(job + " "))
    assert job_line.split()[-1] == "2"
    assert next(line for line in printed.splitlines() if line.startswith("plain Python loop ")).split()[-1] == "1"
    assert "tenantstream alarm_rate p1 100, 83 events/s" in " ".join(printed.split())
    assert rows[0]["details"]["runs"][1]["events_per_second"] == 83


def test_the_cpu_table_shows_each_median_runs_cpu_by_process_and_the_servers_seen_in_any_row():
    def run(name: str, seconds: float, cpu: dict[str, float]) -> Measurement:
        return Measurement(name, 1000, seconds, 2**20, details={"seconds": seconds, "cpu_seconds": cpu})

    job = "tenantstream alarm_rate p1"
    measurements = median_runs([
        run("hand-written Flink SQL p1", 15.0, {"contender": 25.0, "kafka": 2.5, "idle": 1.0, "seconds": 15.0}),
        run(job, 20.0, {"contender": 30.0, "cassandra": 4.5, "kafka": 4.0, "idle": 0.5, "seconds": 20.0}),
        run(job, 22.0, {"contender": 33.0, "cassandra": 5.5, "kafka": 4.2, "idle": 0.6, "seconds": 22.0}),
        run(job, 18.0, {"contender": 28.0, "cassandra": 4.0, "kafka": 3.9, "idle": 0.4, "seconds": 18.0}),
        Measurement("plain Python loop", 1000, 5.0, 2**20)])  # measured without CPU figures: not a row
    out = io.StringIO()
    _cpu_table(measurements, out)
    lines = out.getvalue().splitlines()
    assert lines[1].split()[-5:] == ["itself", "cassandra", "kafka", "idle", "of"]
    assert lines[2].split()[-5:] == ["25.0", "0.0", "2.5", "1.0", f"{15.0 * os.cpu_count():.1f}"]  # of: seconds x cores
    assert lines[3].split()[-5:][:4] == ["30.0", "4.5", "4.0", "0.5"]  # the median run of three
    assert not any(line.startswith("plain Python loop") for line in lines)
