"""Rollups on the real stack: Flink batch jobs over the results topics, rows in Cassandra and on the rollup topic.

- Two tenants share station ids: a tenant's rollup equals the oracle over its own windows only, writes only its
  own rows and topic, its principal cannot read the other's results, and a rerun rewrites the same rows.
- Batch and stream agree: the day rollups of the alarm-rate job's windows equal the sums of the windows that
  job wrote into Cassandra, per local day.
- An alert recomputes its key's day, week and month, once a minute at most.
- Flow rollups (nullable aggregates) reach Cassandra as the oracle computes them.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime

import pytest
from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

from connectors.alerts import ALERT_SCHEMA, alerts_topic
from connectors.cassandra import connect
from connectors.kafka import admin_client, ensure_topics, read_all
from connectors.kafka_access import authorized
from jobs.alarm_rate import ALARM_RATE_TABLE, alarm_rate_job
from jobs.rollup import ROLLUPS, Rollup
from operators.periods import DAY, PeriodError, parse_period
from operators.rollups import Throttle
from pipeline.job import ResultTable, RunSettings
from schemas import codec
from schemas.assets import parse_assets
from submit.local import run_job
from submit.rollup import RollupTrigger, run_rollups
from submit.simulate import SimRecord, SimulationSpec, alarm_events, produce
from tests.rollup_oracle import FLOW_FIELDS, alarm_rate_rollup, flow_rollup, period_bounds
from tests.unit.test_rollup_oracle import flow_windows

KIND = ROLLUPS["alarm_rate"]
ZONE = "Europe/Amsterdam"
MINUTE = 60_000


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def windows(tenant: str, seed: int, first: str = "2024-10-26T20:00Z", count: int = 300) -> list[dict]:
    """Alarm-rate windows every 5 minutes from `first` (across Amsterdam's autumn change) of stations S1, S2."""
    rng = random.Random(seed)
    rows = []
    for step in range(count):
        start = ms(first) + step * 5 * MINUTE
        for station in ("S1", "S2"):
            events = rng.randint(1, 30)
            fires = rng.randint(0, events)
            rows.append({"tenant": tenant, "station_id": station, "datapoint_id": "D1", "window_start": start,
                         "window_end": start + MINUTE, "fires": fires, "events": events, "rate": fires / events})
    return rows


def publish(bootstrap: str, topic: str, schema: str, rows: list[dict]) -> None:
    records = [SimRecord(r["tenant"], topic, r.get("station_id", "").encode(), codec.encode(schema, r),
                         int(time.time() * 1000), "on time") for r in rows]
    produce(iter(records), bootstrap, len(records), progress=None)


def rollup_rows(port: int, keyspace: str, table: ResultTable, tenant: str) -> dict[tuple, tuple]:
    cluster, session = connect(port, keyspace)
    try:
        rows = session.execute(f"SELECT * FROM {table.name} WHERE tenant = %s ALLOW FILTERING", (tenant,))
        return {(r.station_id, r.datapoint_id, r.period, _ms(r.window_start), _ms(r.window_end)):
                (r.fires, r.events, r.rate) for r in rows}
    finally:
        cluster.shutdown()


def _ms(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


def labelled(label: str, expected: dict[tuple, tuple]) -> dict[tuple, tuple]:
    return {(station, dp, label, start, end): v for (station, dp, start, end), v in expected.items()}


def test_a_tenants_rollup_reads_and_writes_only_its_own_rows_and_a_rerun_rewrites_them(stack, unique, keyspace):
    bootstrap = stack.kafka.bootstrap
    mine, other = f"ra{unique}", f"rb{unique}"
    ensure_topics(bootstrap, [KIND.source_topic(mine), KIND.source_topic(other)], partitions=2)
    own, others = windows(mine, seed=1), windows(other, seed=2)
    publish(bootstrap, KIND.source_topic(mine), KIND.windows.schema, own)
    publish(bootstrap, KIND.source_topic(other), KIND.windows.schema, others)

    rollups = [Rollup(KIND, mine, parse_period(label), ZONE) for label in ("day", "12h")]
    first = run_rollups(rollups, stack, RunSettings(bootstrap), keyspace)
    expected = {**labelled("day", alarm_rate_rollup(own, "day", ZONE)),
                **labelled("12h", alarm_rate_rollup(own, "12h", ZONE))}
    assert rollup_rows(stack.cassandra.port, keyspace, KIND.table, mine) == expected
    assert first.rows_written == len(expected)
    assert rollup_rows(stack.cassandra.port, keyspace, KIND.table, other) == {}
    assert {(end - start) // 3_600_000 for _, _, label, start, end in expected if label == "day"} == {24, 25}

    topic = KIND.job(mine).topics(mine).results
    published = [codec.decode(m.value(), KIND.schema) for m in read_all(bootstrap, [topic], f"check-{unique}")]
    assert len(published) == len(expected) and {p["tenant"] for p in published} == {mine}
    assert KIND.job(other).topics(other).results not in read_topics(bootstrap, unique)

    login = authorized(KIND.job(mine), RunSettings(bootstrap)).kafka_login
    with pytest.raises(RuntimeError, match=r"(?i)authoriz"):
        read_all(bootstrap, [KIND.source_topic(other)], f"{KIND.job(mine).default_group}.peek", login=login,
                 idle_seconds=1, timeout=20)

    second = run_rollups(rollups, stack, RunSettings(bootstrap), keyspace)
    assert second.rows_written == len(expected)
    assert rollup_rows(stack.cassandra.port, keyspace, KIND.table, mine) == expected
    again = [codec.decode(m.value(), KIND.schema) for m in read_all(bootstrap, [topic], f"check2-{unique}")]
    assert sorted(map(_record_key, again)) == sorted(map(_record_key, published * 2))  # the same records again


def _record_key(record: dict) -> tuple:
    return tuple(str(record[f]) for f in ("station_id", "datapoint_id", "period", "window_start", "fires", "events"))


def read_topics(bootstrap: str, unique: str) -> set[str]:
    return {t for t in admin_client(bootstrap).list_topics(timeout=10).topics if unique in t}


def test_the_day_rollup_equals_the_sum_of_that_days_stream_windows_in_cassandra(stack, unique, keyspace, tmp_path):
    bootstrap = stack.kafka.bootstrap
    tenant = f"rs{unique}"
    job = alarm_rate_job([tenant])
    ensure_topics(bootstrap, job.topics(tenant).all(), partitions=1)
    spec = SimulationSpec(tenants=(tenant,), events=3000, stations=3, datapoints=2, out_of_order=0.05, late=0.0,
                          malformed=0.0, seed=9)
    records = list(alarm_events(spec))
    produce(iter(records), bootstrap, len(records), progress=None)
    run_job(job, ALARM_RATE_TABLE, stack, RunSettings(bootstrap, stop_at="latest"), tmp_path / "checkpoints",
            keyspace=keyspace)

    run_rollups([Rollup(KIND, tenant, DAY, "America/New_York")], stack, RunSettings(bootstrap), keyspace)

    cluster, session = connect(stack.cassandra.port, keyspace)
    try:
        stream = [r._asdict() for r in session.execute("SELECT * FROM alarm_rate WHERE tenant = %s ALLOW FILTERING",
                                                       (tenant,))]
    finally:
        cluster.shutdown()
    assert len(stream) > 10
    for row in stream:
        row["window_start"] = _ms(row["window_start"])
    sums: dict[tuple, list[int]] = {}
    for row in stream:
        start, end = period_bounds(row["window_start"], "day", "America/New_York")
        total = sums.setdefault((row["station_id"], row["datapoint_id"], "day", start, end), [0, 0])
        total[0] += row["fires"]
        total[1] += row["events"]
    got = rollup_rows(stack.cassandra.port, keyspace, KIND.table, tenant)
    assert {k: (f, e) for k, (f, e, _) in got.items()} == {k: tuple(v) for k, v in sums.items()}


def test_an_alert_recomputes_its_keys_day_week_and_month_once_a_minute(stack, unique, keyspace):
    bootstrap = stack.kafka.bootstrap
    tenant = f"rt{unique}"
    ensure_topics(bootstrap, [KIND.source_topic(tenant), alerts_topic(tenant)], partitions=1)
    own = windows(tenant, seed=3)
    publish(bootstrap, KIND.source_topic(tenant), KIND.windows.schema, own)
    alert = {"tenant": tenant, "job": "alarm_rate", "key": "S1/D1", "window_start": ms("2024-10-27T01:30Z"),
             "window_end": ms("2024-10-27T01:31Z"), "metric": "rate", "value": 0.9, "threshold": 0.5}
    publish(bootstrap, alerts_topic(tenant), ALERT_SCHEMA, [alert, {**alert, "window_start": alert["window_start"]
                                                                   + MINUTE}])

    trigger = RollupTrigger(stack, KIND, tenant, ZONE, RunSettings(bootstrap), keyspace, Throttle(60.0))
    thread = threading.Thread(target=trigger.run, daemon=True)
    thread.start()
    try:
        trigger.drain(timeout=300)
    finally:
        trigger.stop()
        thread.join(timeout=60)

    assert sorted(r.period.label for r in trigger.runs) == ["day", "month", "week"]  # the second alert: throttled
    s1 = [w for w in own if w["station_id"] == "S1"]
    expected = {}
    for label in ("day", "week", "month"):
        period = parse_period(label)
        start = period.start(alert["window_start"], ZONE)
        expected.update({k: v for k, v in labelled(label, alarm_rate_rollup(s1, label, ZONE)).items() if k[3] == start})
    assert rollup_rows(stack.cassandra.port, keyspace, KIND.table, tenant) == expected


def test_flow_rollups_reach_cassandra_as_the_oracle_computes_them(stack, unique, keyspace):
    bootstrap = stack.kafka.bootstrap
    tenant, kind = f"rf{unique}", ROLLUPS["flow_aggregates"]
    ensure_topics(bootstrap, [kind.source_topic(tenant)], partitions=2)
    own = [{**row, "tenant": tenant} for row in flow_windows(seed=27)[:1200]]  # about 3 days around the 2024 leap day
    publish(bootstrap, kind.source_topic(tenant), kind.windows.schema, own)

    report = run_rollups([Rollup(kind, tenant, DAY, "America/New_York")], stack, RunSettings(bootstrap), keyspace)

    cluster, session = connect(stack.cassandra.port, keyspace)
    try:
        rows = session.execute(f"SELECT * FROM {kind.table.name} WHERE tenant = %s ALLOW FILTERING", (tenant,))
        got = {(r.sensor_id, r.element_id, r.kind, _ms(r.window_start), _ms(r.window_end)):
               tuple(getattr(r, f) for f in FLOW_FIELDS) for r in rows if r.period == "day"}
    finally:
        cluster.shutdown()
    expected = flow_rollup(own, "day", "America/New_York")
    assert got == expected and report.rows_written == len(expected)
    assert any(v[3] is None for k, v in expected.items() if k[2] == "additive")  # nulls stay nulls


def test_results_topics_are_kept_forever_and_the_time_zone_comes_from_the_tenants_document(stack, unique, store):
    topic = f"rz{unique}.results.alarm_rate"
    ensure_topics(stack.kafka.bootstrap, [topic], partitions=1)
    resource = ConfigResource(ResourceType.TOPIC, topic)
    admin = admin_client(stack.kafka.bootstrap)  # held until the answer came
    (configs,) = admin.describe_configs([resource]).values()
    retention = configs.result()["retention.ms"]
    # Set on the topic itself, not the broker's default (the stack's broker keeps everything too).
    assert (retention.value, retention.source) == ("-1", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)

    tenant = {"name": "n", "alarm_rate_threshold": 0.1, "flow_breach_threshold": 0.1}
    store.load(parse_assets({"tenants": [{"id": f"ny{unique}", **tenant, "timezone": "America/New_York"},
                                         {"id": f"utc{unique}", **tenant}]}, "a.yaml"))
    assert store.timezone(f"ny{unique}") == "America/New_York"
    assert store.timezone(f"utc{unique}") == "UTC" and store.timezone(f"none{unique}") == "UTC"
    store.db.tenants.update_one({"_id": f"utc{unique}"}, {"$set": {"timezone": "Mars/Base"}})
    with pytest.raises(PeriodError, match=f"tenant utc{unique} in the metadata store: time zone 'Mars/Base'"):
        store.timezone(f"utc{unique}")
