"""The sensor health job on the real stack: scripted heartbeats in -> the oracle's silent/recovered sequence
and health windows, on the committed results topics and in Cassandra; bad and late records diverted with
their reason; per-tenant silence minutes."""

from __future__ import annotations

from datetime import UTC

import pytest

from connectors.cassandra import connect
from connectors.kafka import ensure_topics, read_all
from jobs.sensor_health import HEALTH_TABLE, SENSOR_HEALTH_TABLES, SILENCE_TABLE, sensor_health_job
from operators.windows import tumbling
from pipeline.job import RunSettings
from schemas import codec
from schemas.sql import field_names
from submit.local import run_job
from submit.simulate import HeartbeatSpec, heartbeats, produce
from tests.health_oracle import Silence, beats_from, sensor_health
from tests.health_patterns import OUT_OF_ORDERNESS, scripted
from tests.integration.alarm_rate_checks import diverted

WINDOW = tumbling(minutes=5)
HEALTH_FIELDS = field_names("health_result.v1")[3:]  # after the tenant and the window


def _ms(value) -> int:
    return int(value.replace(tzinfo=UTC).timestamp() * 1000)


def committed(bootstrap: str, topic: str, group: str, schema: str) -> list[tuple[bytes, dict]]:
    """(key, record) of every committed record of `topic`, in the topic's order."""
    return [(m.key(), codec.decode(m.value(), schema)) for m in read_all(bootstrap, [topic], group)]


def as_silence(r: dict) -> Silence:
    return Silence(r["tenant"], r["sensor_id"], r["state"], _ms(r["at"]), _ms(r["last_heartbeat"]))


def as_health(r: dict) -> tuple[tuple, dict]:
    return (r["tenant"], _ms(r["window_start"]), _ms(r["window_end"])), {f: r[f] for f in HEALTH_FIELDS}


def cassandra_rows(port: int, keyspace: str, table: str, tenant: str) -> list[dict]:
    cluster, session = connect(port, keyspace)
    try:
        return [r._asdict() for r in session.execute(f"SELECT * FROM {table} WHERE tenant = %s ALLOW FILTERING",
                                                     (tenant,))]
    finally:
        cluster.shutdown()


def assert_health_equal(actual: dict, expected: dict) -> None:
    assert sorted(actual) == sorted(expected)
    for window, fields in actual.items():
        for name, value in fields.items():
            assert value == (expected[window][name] if expected[window][name] is None or isinstance(value, int)
                             else pytest.approx(expected[window][name], rel=1e-9)), (window, name)


def by_sensor(silences: list[Silence]) -> dict[str, list[Silence]]:
    out: dict[str, list[Silence]] = {}
    for s in silences:
        out.setdefault(s.sensor_id, []).append(s)
    return out


def test_scripted_heartbeats_give_the_oracles_silences_and_health_and_divert_bad_input(stack, unique, keyspace,
                                                                                        tmp_path):
    tenant, minutes = f"hb{unique}", 2
    job = sensor_health_job([tenant], window=WINDOW, silence_minutes=lambda t: minutes)
    topics = job.topics(tenant)
    ensure_topics(stack.kafka.bootstrap, topics.all(), partitions=1)
    records = scripted({tenant: minutes})
    produce(iter(records), stack.kafka.bootstrap, len(records), progress=None)

    report = run_job(job, SENSOR_HEALTH_TABLES, stack,
                     RunSettings(stack.kafka.bootstrap, out_of_orderness_s=OUT_OF_ORDERNESS // 1000,
                                 stop_at="latest", watermark_emit="on-event"),
                     tmp_path / "checkpoints", keyspace=keyspace)

    expected = sensor_health(beats_from(records), {tenant: minutes}, WINDOW.size_ms, OUT_OF_ORDERNESS)
    silences = committed(stack.kafka.bootstrap, topics.output(SILENCE_TABLE.topic), f"check-{unique}",
                         "sensor_silence.v1")
    assert by_sensor([as_silence(r) for _, r in silences]) == by_sensor(expected.silences)
    assert len(silences) == len(expected.silences)  # nothing committed twice
    assert all(key == r["sensor_id"].encode() and r["silence_minutes"] == minutes for key, r in silences)
    edge = by_sensor(expected.silences)["edge"]
    assert [s.state for s in edge] == ["silent", "recovered", "silent"] and edge[0].at == edge[1].at
    assert {as_silence(r) for r in cassandra_rows(stack.cassandra.port, keyspace, SILENCE_TABLE.name, tenant)} \
        == set(expected.silences)

    health = [as_health(r) for _, r in committed(stack.kafka.bootstrap, topics.output(HEALTH_TABLE.topic),
                                                 f"check-{unique}", "health_result.v1")]
    assert len(health) == len(dict(health)), "a window was committed twice"
    assert_health_equal(dict(health), expected.health)
    assert_health_equal(dict(as_health(r) for r in cassandra_rows(stack.cassandra.port, keyspace, HEALTH_TABLE.name,
                                                                  tenant)), expected.health)
    assert report.events == len(records)
    assert report.results_written == len(expected.silences) + len(expected.health)

    dead = diverted(stack.kafka.bootstrap, topics.deadletter, f"check-{unique}")
    assert {(tenant, d["offset"]): d["reason"].split(" (")[0].split(":")[0] for d in dead} == expected.invalid
    assert len(dead) == 7 and all(d["payload"] == records[d["offset"]].value for d in dead)
    late = diverted(stack.kafka.bootstrap, topics.late, f"check-{unique}")
    assert sorted((tenant, d["offset"]) for d in late) == sorted(expected.late) and len(late) == 2


def test_each_tenant_is_silent_after_its_own_minutes(stack, unique, keyspace, tmp_path):
    minutes = {f"hba{unique}": 5, f"hbb{unique}": 15}
    job = sensor_health_job(sorted(minutes), window=WINDOW, silence_minutes=minutes.__getitem__)
    for tenant in minutes:
        ensure_topics(stack.kafka.bootstrap, job.topics(tenant).all(), partitions=1)
    spec = HeartbeatSpec(tenants=tuple(sorted(minutes)), events=1500, sensors=12, outage=0.03,
                         outage_ms=(3 * 60_000, 25 * 60_000), malformed=0.01, seed=9)
    records = list(heartbeats(spec))
    produce(iter(records), stack.kafka.bootstrap, len(records), progress=None)

    run_job(job, SENSOR_HEALTH_TABLES, stack, RunSettings(stack.kafka.bootstrap, stop_at="latest"),
            tmp_path / "checkpoints", keyspace=keyspace)

    for tenant, n in minutes.items():
        own = [r for r in records if r.tenant == tenant]
        # No record is late for its own tenant, so the shared watermark (no later than either tenant's own)
        # makes none late either, and the silences and windows do not depend on how the topics interleave.
        expected = sensor_health(beats_from(own), {tenant: n}, WINDOW.size_ms, OUT_OF_ORDERNESS)
        assert expected.late == [] and len(expected.silences) > 10
        topics = job.topics(tenant)
        silences = [as_silence(r) for _, r in committed(stack.kafka.bootstrap, topics.output(SILENCE_TABLE.topic),
                                                         f"check-{unique}", "sensor_silence.v1")]
        assert by_sensor(silences) == by_sensor(expected.silences)
        assert all(s.at - s.last_heartbeat == n * 60_000 for s in silences if s.state == "silent")
        health = dict(as_health(r) for _, r in committed(stack.kafka.bootstrap, topics.output(HEALTH_TABLE.topic),
                                                         f"check-{unique}", "health_result.v1"))
        assert_health_equal(health, expected.health)
        assert {h["silence_minutes"] for h in health.values()} == {n}
        assert_health_equal(dict(as_health(r) for r in cassandra_rows(stack.cassandra.port, keyspace,
                                                                      HEALTH_TABLE.name, tenant)), expected.health)
        dead = diverted(stack.kafka.bootstrap, topics.deadletter, f"check-{unique}")
        assert {(tenant, d["offset"]): d["reason"].split(" (")[0].split(":")[0] for d in dead} == expected.invalid
