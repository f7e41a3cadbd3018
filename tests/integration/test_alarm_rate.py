"""The alarm-rate job on the real stack: known events in, oracle rows out, bad and late records diverted."""

from __future__ import annotations

from connectors.kafka import ensure_topics
from jobs.alarm_rate import ALARM_RATE_TABLE, alarm_rate_job
from pipeline.job import RunSettings
from submit.local import run_job
from submit.simulate import SimulationSpec, alarm_events, produce
from tests.integration.alarm_rate_checks import cassandra_windows, committed_windows, diverted
from tests.oracle import alarm_rate, readings_from


def single_partition_topics(stack, job, tenant: str) -> None:
    """One partition per topic: the order of records, and so the watermark, is then exactly known."""
    t = job.topics(tenant)
    ensure_topics(stack.kafka.bootstrap, [t.source, t.results, t.deadletter, t.late], partitions=1)


def test_known_events_give_the_oracle_rows_in_cassandra_and_on_the_results_topic(stack, unique, keyspace,
                                                                                  tmp_path):
    tenant = f"it{unique}"
    spec = SimulationSpec(tenants=(tenant,), events=6000, stations=6, datapoints=2, out_of_order=0.1, late=0.02,
                          malformed=0.03, seed=5)
    job = alarm_rate_job([tenant])
    single_partition_topics(stack, job, tenant)
    records = list(alarm_events(spec))
    produce(iter(records), stack.kafka.bootstrap, len(records), progress=None)

    report = run_job(job, ALARM_RATE_TABLE, stack,
                     RunSettings(stack.kafka.bootstrap, stop_at="latest", watermark_emit="on-event"),
                     tmp_path / "checkpoints", keyspace=keyspace)

    expected = alarm_rate(readings_from(records), tenant, 60_000, 5_000)
    results = committed_windows(stack.kafka.bootstrap, job.topics(tenant).results, f"check-{unique}")
    assert len(results) == len(dict(results)), "a window was committed twice"
    assert dict(results) == expected.windows
    assert cassandra_windows(stack.cassandra.port, keyspace, tenant) == expected.windows
    assert report.events == len(records) and report.results_written == len(expected.windows)

    dead = diverted(stack.kafka.bootstrap, job.topics(tenant).deadletter, f"check-{unique}")
    assert {d["offset"]: d["reason"].split(" (")[0].split(":")[0] for d in dead} == expected.invalid
    assert all(d["payload"] == records[d["offset"]].value and d["source_topic"] == f"{tenant}.sensors.alarms"
               for d in dead)

    late = diverted(stack.kafka.bootstrap, job.topics(tenant).late, f"check-{unique}")
    assert sorted(d["offset"] for d in late) == expected.late
    assert len(late) > 50 and all(d["reason"].startswith("late: event time ") for d in late)


def test_one_job_for_two_tenants_writes_each_tenants_results_only_to_its_own_topics(stack, unique, keyspace,
                                                                                     tmp_path):
    tenants = (f"ita{unique}", f"itb{unique}")
    spec = SimulationSpec(tenants=tenants, events=2000, stations=4, datapoints=2, out_of_order=0.1, late=0.0,
                          malformed=0.03, seed=6)
    job = alarm_rate_job(tenants)
    for tenant in tenants:
        single_partition_topics(stack, job, tenant)
    records = list(alarm_events(spec))
    produce(iter(records), stack.kafka.bootstrap, len(records), progress=None)

    run_job(job, ALARM_RATE_TABLE, stack, RunSettings(stack.kafka.bootstrap, stop_at="latest"),
            tmp_path / "checkpoints", keyspace=keyspace)

    for tenant in tenants:
        own = [r for r in records if r.tenant == tenant]
        expected = alarm_rate(readings_from(own), tenant, 60_000, 5_000)
        # The tenants share a watermark no later than either tenant's own, so with no record late
        # for its own tenant none is late at all, and the windows do not depend on the interleaving.
        assert expected.late == []
        assert dict(committed_windows(stack.kafka.bootstrap, job.topics(tenant).results, f"check-{unique}")) \
            == expected.windows
        assert cassandra_windows(stack.cassandra.port, keyspace, tenant) == expected.windows
        dead = diverted(stack.kafka.bootstrap, job.topics(tenant).deadletter, f"check-{unique}")
        assert {d["offset"]: d["reason"].split(" (")[0].split(":")[0] for d in dead} == expected.invalid
        assert {d["tenant"] for d in dead} == {tenant}
        assert {d["source_topic"] for d in dead} == {f"{tenant}.sensors.alarms"}
