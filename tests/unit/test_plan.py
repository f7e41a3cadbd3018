"""The job plan names only its own tenant's topics, and refuses incomplete or inconsistent jobs."""

from __future__ import annotations

import dataclasses
import re

import pytest

from jobs.alarm_rate import alarm_rate_job
from pipeline.job import Job, RunSettings
from pipeline.plan import plan

TOPIC = re.compile(r"'topic' = '([^']+)'")


def test_the_plan_names_only_the_tenants_own_topics_and_routes_by_source_topic():
    ddl, inserts = plan(alarm_rate_job(["acme", "globex"]), RunSettings())
    topics = [t for listed in TOPIC.findall("\n".join(ddl)) for t in listed.split(";")]
    assert sorted(topics) == sorted(f"{t}.{s}" for t in ("acme", "globex")
                                    for s in ("sensors.alarms", "results.alarm_rate", "deadletter", "late"))
    prefixes = re.findall(r"'sink.transactional-id-prefix' = '([^']+)'", "\n".join(ddl))
    assert len(prefixes) == len(set(prefixes)) == 2  # results, and diverted (dead letters and late records)
    assert all("acme+globex" in p for p in prefixes)
    # A record's tenant, and so the topic it is written to, comes from the topic it was read from.
    source = next(d for d in ddl if "'scan.startup.mode'" in d)
    assert "`topic_tenant` AS TOPIC_TENANT(`kafka_topic`, '.sensors.alarms')" in source
    assert [i.split(" FROM ")[0].rsplit(", ", 1)[1] for i in inserts] == [
        "`topic_tenant` || '.results.alarm_rate'", "`topic_tenant` || `route_suffix`"]
    assert "CASE WHEN `rejected` THEN '.deadletter' ELSE '.late' END AS `route_suffix`" in inserts[1]


def test_exactly_once_settings_are_in_every_sink_and_committed_reads_in_every_source():
    ddl, _ = plan(alarm_rate_job(["acme"]), RunSettings())
    sinks = [d for d in ddl if "'sink.delivery-guarantee'" in d]
    assert len(sinks) == 2 and all("'exactly-once'" in s for s in sinks)
    sources = [d for d in ddl if "'scan.startup.mode'" in d]
    assert len(sources) == 1 and "'properties.isolation.level' = 'read_committed'" in sources[0]


def test_incomplete_job_is_refused():
    with pytest.raises(ValueError, match="needs a source, key_by, window and aggregate"):
        plan(Job("half", tenants=["acme"]).source("alarms", schema="alarm_event.v2", time="event_time"),
             RunSettings())


def test_result_schema_fields_must_all_be_computed():
    job = alarm_rate_job(["acme"])
    incomplete = job.aggregate(events=job.aggregates[1][1])
    with pytest.raises(ValueError, match="does not compute: fires, rate"):
        plan(incomplete, RunSettings())


@pytest.mark.parametrize("tenants", [[], ["acme; DROP"], ["a.b"]])
def test_tenant_names_are_checked(tenants):
    with pytest.raises(ValueError, match="tenant"):
        alarm_rate_job(tenants)


def test_a_job_without_result_schema_writes_json_with_tenant_keys_window_and_aggregates():
    from operators.aggregates import Count, Max

    job = (Job("app_peaks", tenants=["acme"]).source("alarms", schema="alarm_event.v2", time="event_time")
           .key_by("station_id").window(alarm_rate_job(["acme"]).tumbling).aggregate(events=Count(), peak=Max("value")))
    ddl, _ = plan(job, RunSettings())
    results = next(d for d in ddl if "app_peaks__results" in d)
    assert ("`tenant` STRING,\n  `station_id` STRING,\n  `window_start` TIMESTAMP_LTZ(3),\n  "
            "`window_end` TIMESTAMP_LTZ(3),\n  `events` BIGINT,\n  `peak` DOUBLE\n") in results
    assert "'format' = 'json'" in results and "'topic' = 'acme.results.app_peaks'" in results


def test_the_flow_plan_reads_and_writes_only_its_tenants_flow_topics_exactly_once():
    from jobs.flow_aggregates import flow_aggregates_job
    from operators.flow import metadata_from_assets
    from submit.simulate import flow_topology

    tenants = ["acme", "globex"]
    ddl, inserts = plan(flow_aggregates_job(tenants, metadata_from_assets(flow_topology(tenants), tenants)),
                        RunSettings())
    topics = [t for listed in TOPIC.findall("\n".join(ddl)) for t in listed.split(";")]
    assert sorted(topics) == sorted(f"{t}.{s}" for t in tenants
                                    for s in ("sensors.flow", "results.flow", "deadletter", "late"))
    assert sum("'sink.delivery-guarantee' = 'exactly-once'" in d for d in ddl) == 2
    # the dead letters: the source's rejects and the energy counters that went backwards
    assert " UNION ALL " in inserts[1] and "`flow__counter_steps`" in inserts[1]
    # the sensor check, the element limits and the power sensors: three lookups of the metadata
    assert sum("'connector' = 'tenantstream-documents'" in d for d in ddl) == 3


def test_the_flow_plan_names_no_sensor_and_keeps_its_size_as_sensors_are_added():
    """The sensors and limits are looked up while the job runs, so the statements that compute (views and
    inserts) are the same for 2 tenants of 4 sensors and 40 tenants of 400 (only topics and documents grow)."""
    from jobs.flow_aggregates import flow_aggregates_job
    from operators.flow import LiveMetadata, metadata_from_assets
    from submit.simulate import flow_topology

    def computing_statements(tenants: list[str], sensors_each: int) -> str:
        plant = flow_topology(tenants)
        sensors = tuple(dataclasses.replace(s, id=f"{s.id}-{i}") for s in plant.sensors for i in range(sensors_each))
        ddl, inserts = plan(flow_aggregates_job(tenants, metadata_from_assets(
            dataclasses.replace(plant, sensors=sensors), tenants)), RunSettings())
        views = [d for d in ddl if d.startswith("CREATE TEMPORARY VIEW")]
        assert not any(s.id in text for s in sensors for text in views + inserts)
        return "\n".join(views + inserts)

    assert computing_statements(["acme", "globex"], 1) == computing_statements([f"t{i:02}" for i in range(40)], 100)
    live, _ = plan(flow_aggregates_job(["acme"], LiveMetadata("mongodb://127.0.0.1:27017", "tenantstream")),
                   RunSettings())
    lookups = [d for d in live if "'connector' = 'tenantstream-mongodb'" in d]
    assert len(lookups) == 3 and all("'tenants' = 'acme'" in d and "documents" not in d for d in lookups)
