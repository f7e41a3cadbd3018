"""Jobs on the standalone Flink cluster of the stack, submitted and managed with the CLI."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta

from connectors.kafka import admin_client, ensure_topics, read_all
from jobs.alarm_rate import alarm_rate_job
from schemas import codec
from submit import cli
from submit.cluster import FlinkRest
from submit.simulate import SimRecord, SimulationSpec, alarm_events, produce
from tests.integration.alarm_rate_checks import cassandra_windows, committed_windows
from tests.oracle import alarm_rate, readings_from

HOUR_MS = 3_600_000


def run_cli(capsys, *argv: str) -> str:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def job_id_in(text: str) -> str:
    return re.search(r"Flink job ([0-9a-f]{32})", text).group(1)


def flush_record(records: list[SimRecord]) -> SimRecord:
    """A valid record an hour after the last: its watermark closes every window before it.

    It copies the newest on-time record: the newest of all may be one of the malformed kinds.
    """
    last = max((r for r in records if r.kind == "on time"), key=lambda r: r.kafka_ts)
    fields = codec.decode(last.value, "alarm_event.v2")
    fields["event_time"] += timedelta(hours=1)
    return SimRecord(last.tenant, last.topic, last.key, codec.encode("alarm_event.v2", fields),
                     last.kafka_ts + HOUR_MS, "flush")


def wait_for_windows(bootstrap: str, topic: str, group: str, expected: int, timeout: float = 90.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        found = committed_windows(bootstrap, topic, group)
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(2)


def test_submit_savepoint_and_resubmit_on_the_cluster_equal_the_oracle(stack, unique, keyspace, capsys):
    tenant = f"cl{unique}"
    job = alarm_rate_job([tenant])
    t = job.topics(tenant)
    ensure_topics(stack.kafka.bootstrap, t.all(), partitions=1)  # one partition: the order is known
    spec = SimulationSpec(tenants=(tenant,), events=3000, stations=4, datapoints=2, out_of_order=0.1, late=0.0,
                          malformed=0.02, seed=9)
    records = list(alarm_events(spec))
    records.append(flush_record(records))
    first, second = records[:1500], records[1500:]
    expected = alarm_rate(readings_from(records), tenant, 60_000, 5_000)
    flush_window = max(expected.windows, key=lambda w: w[2])
    closed = {w: v for w, v in expected.windows.items() if w != flush_window}
    rest = FlinkRest(stack.flink.rest_url)

    produce(iter(first), stack.kafka.bootstrap, len(first), progress=None)
    job_id = job_id_in(run_cli(capsys, "submit", "alarm_rate", "--tenants", tenant, "--watermarks", "on-event"))
    assert rest.state(job_id) == "RUNNING"
    assert any(j.job_id == job_id and j.state == "RUNNING" for j in rest.jobs())
    assert job_id in run_cli(capsys, "jobs", "list")
    before = wait_for_windows(stack.kafka.bootstrap, t.results, f"check1-{unique}", 1)
    assert before, "no results committed before the savepoint"

    saved = run_cli(capsys, "jobs", "savepoint", job_id)
    location = re.search(r"savepoint at (\S+)", saved).group(1)
    assert rest.state(job_id) == "FINISHED"

    produce(iter(second), stack.kafka.bootstrap, len(second), progress=None)
    resumed = job_id_in(run_cli(capsys, "submit", "alarm_rate", "--tenants", tenant, "--watermarks", "on-event",
                                "--from-savepoint", location))
    assert resumed != job_id and rest.state(resumed) == "RUNNING"
    results = wait_for_windows(stack.kafka.bootstrap, t.results, f"check2-{unique}", len(closed))
    run_cli(capsys, "jobs", "cancel", resumed)
    assert rest.state(resumed) == "CANCELED"

    assert len(results) == len(dict(results)), "a window was committed twice across the savepoint"
    assert dict(results) == closed
    assert len(before) < len(closed)  # the savepoint fell in the middle of the stream
    run_cli(capsys, "writer", "alarm_rate", "--tenants", tenant, "--keyspace", keyspace, "--until-caught-up")
    assert cassandra_windows(stack.cassandra.port, keyspace, tenant) == closed


def test_cluster_errors_are_plain_words(capsys):
    assert cli.main(["jobs", "--cluster", "http://127.0.0.1:9", "list"]) == 1
    assert "no Flink cluster answers at http://127.0.0.1:9" in capsys.readouterr().err


def test_unknown_job_id_is_a_clear_error(stack, capsys):
    assert cli.main(["jobs", "cancel", "0" * 32]) == 1
    err = capsys.readouterr().err
    assert "HTTP 404" in err and "0" * 32 in err


APP = '''from operators.aggregates import Count, Max
from operators.windows import tumbling


def app(stream):
    return stream.key_by("station_id").window(tumbling(minutes=1)).aggregate(events=Count(), peak=Max("value"))
'''


def test_a_tenant_app_runs_on_the_cluster_and_writes_only_its_tenants_topic(stack, unique, tmp_path, capsys):
    a, b = f"appa{unique}", f"appb{unique}"
    ensure_topics(stack.kafka.bootstrap, [f"{a}.sensors.alarms", f"{b}.sensors.alarms"], partitions=1)
    records = list(alarm_events(SimulationSpec(tenants=(a, b), events=600, stations=3, datapoints=2,
                                               out_of_order=0.0, late=0.0, malformed=0.0, seed=10)))
    own = [r for r in records if r.tenant == a]
    records.append(flush_record(own))
    produce(iter(records), stack.kafka.bootstrap, len(records), progress=None)
    app_file = tmp_path / "peaks.py"
    app_file.write_text(APP)
    registry = str(tmp_path / "registry")

    assert "v1" in run_cli(capsys, "tenant", "upload", str(app_file), "--tenant", a, "--registry", registry)
    job_id = job_id_in(run_cli(capsys, "tenant", "submit", "peaks", "--tenant", a, "--registry", registry))
    listed = run_cli(capsys, "tenant", "apps", "--tenant", a, "--registry", registry)
    assert "running" in listed

    expected: dict[tuple[str, int], tuple[int, float]] = {}
    for r in own:
        fields = codec.decode(r.value, "alarm_event.v2")
        start = int(fields["event_time"].timestamp() * 1000) // 60_000 * 60_000
        events, peak = expected.get((fields["station_id"], start), (0, float("-inf")))
        expected[(fields["station_id"], start)] = (events + 1, max(peak, fields["value"]))
    topic = f"{a}.results.app_peaks"
    deadline = time.monotonic() + 90
    while True:
        rows = [json.loads(m.value()) for m in read_all(stack.kafka.bootstrap, [topic], f"c-{unique}")]
        if len(rows) >= len(expected) or time.monotonic() > deadline:
            break
        time.sleep(2)
    run_cli(capsys, "jobs", "cancel", job_id)

    got = {(r["station_id"], int(datetime.fromisoformat(r["window_start"]).timestamp() * 1000)):
           (r["events"], r["peak"]) for r in rows}
    assert {r["tenant"] for r in rows} == {a}
    assert got == expected
    topics = admin_client(stack.kafka.bootstrap).list_topics(timeout=10).topics
    assert sorted(t for t in topics if t.startswith(b)) == [f"{b}.sensors.alarms"]


def test_jobs_planned_from_metadata_are_submitted_with_what_the_store_holds(stack, unique, capsys):
    from connectors.metadata import MetadataStore
    from schemas.assets import parse_assets

    tenant = f"hs{unique}"
    assert cli.main(["submit", "sensor_health", "--tenants", tenant]) == 2
    assert capsys.readouterr().err == (f"tenantstream: submit: error: no tenant '{tenant}' in the metadata store; "
                                       "load it with `tenantstream assets load FILE`\n")

    with MetadataStore(stack.ferretdb.uri) as store:
        store.load(parse_assets({"tenants": [{"id": tenant, "name": tenant, "alarm_rate_threshold": 0.5,
                                              "flow_breach_threshold": 0.5, "silence_minutes": 3}]}, "test"))
        try:
            from jobs.catalog import BUILT_IN_JOBS

            health = BUILT_IN_JOBS["sensor_health"].build([tenant], None, store, 10.0)
            assert health.stage.silence_minutes == ((tenant, 3),)
            job_id = job_id_in(run_cli(capsys, "submit", "sensor_health", "--tenants", tenant))
            rest = FlinkRest(stack.flink.rest_url)
            assert rest.state(job_id) == "RUNNING"
            run_cli(capsys, "jobs", "cancel", job_id)
        finally:
            store.db.tenants.delete_one({"_id": tenant})
