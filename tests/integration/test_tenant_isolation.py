"""A job for tenant A never reads B's topics and never writes B's topics or rows."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from connectors.cassandra import connect
from connectors.kafka import admin_client, ensure_topics, group_consumer, read_all
from jobs.alarm_rate import ALARM_RATE_TABLE, alarm_rate_job
from pipeline.job import RunSettings
from schemas import codec
from submit.local import run_job
from submit.simulate import SimulationSpec, alarm_events, produce


def test_job_of_tenant_a_touches_nothing_of_tenant_b(stack, unique, tmp_path):
    a, b = f"isoa{unique}", f"isob{unique}"
    keyspace = f"iso_{unique}"
    bootstrap = stack.kafka.bootstrap
    ensure_topics(bootstrap, [f"{a}.sensors.alarms", f"{b}.sensors.alarms"])
    records = list(alarm_events(SimulationSpec(tenants=(a, b), events=1500, malformed=0.0, seed=4)))
    produce(iter(records), bootstrap, len(records), progress=None)
    # Records in A's topic that claim to be B's must not become B's rows.
    impostor = codec.decode(records[0].value, "alarm_event.v2") | {"tenant": b}
    produce(iter([records[0].__class__(a, f"{a}.sensors.alarms", b"x", codec.encode("alarm_event.v2", impostor),
                                       records[0].kafka_ts, "foreign tenant")]), bootstrap, 1, progress=None)

    job = alarm_rate_job([a])
    run_job(job, ALARM_RATE_TABLE, stack, RunSettings(bootstrap, stop_at="latest"), tmp_path / "ck", keyspace=keyspace)

    topics = admin_client(bootstrap).list_topics(timeout=10).topics
    assert sorted(t for t in topics if t.startswith(b)) == [f"{b}.sensors.alarms"]  # nothing of B's created
    assert read_all(bootstrap, [f"{a}.results.alarm_rate"], f"iso-{unique}")  # A's job did produce results
    consumer = group_consumer(bootstrap, job.default_group)
    committed = consumer.committed([TopicPartition(f"{b}.sensors.alarms", p) for p in range(2)], timeout=10)
    consumer.close()
    assert all(tp.offset < 0 for tp in committed), "A's job committed offsets on B's topic"

    cluster, session = connect(stack.cassandra.port, keyspace)
    try:
        tenants = {r.tenant for r in session.execute("SELECT tenant FROM alarm_rate")}
    finally:
        session.execute(f"DROP KEYSPACE {keyspace}", timeout=60)
        cluster.shutdown()
    assert tenants == {a}
    dead = [codec.decode(m.value(), "dead_letter.v1") for m in read_all(bootstrap, [f"{a}.deadletter"],
                                                                        f"iso-{unique}")]
    assert [d["reason"] for d in dead] == [f"unknown tenant: record says {b} on a topic of tenant {a}"]
