"""No record stops a job: every job (alarm rate, flow, health, a tenant app) reads the whole hostile corpus
(tests/hostile_records.py) on tenant A's topic, among valid records of A and of B, in one bounded run, and
- finishes (a failed job raises out of the run);
- dead-letters every hostile record on A's dead-letter topic, exactly once, with its reason and its bytes;
- windows nothing of the corpus but its valid-looking records: A's results equal A's oracle, and the oracle
  rejects exactly the records the corpus says (so the plain-Python rules agree record by record);
- gives B exactly its oracle's results, with nothing diverted.
Each tenant's topics have one partition, so offsets and the order of records are known; no record is late for
its own tenant, so the shared watermark makes none late and the results do not depend on the interleaving."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pytest

from connectors.flink import CheckpointSettings, streaming_table_env
from connectors.kafka import ensure_topics, producer, read_all
from connectors.kafka_access import authorized
from jobs.alarm_rate import ALARM_RATE_TABLE, alarm_rate_job
from jobs.flow_aggregates import FLOW_TABLE, flow_aggregates_job
from jobs.sensor_health import HEALTH_TABLE, SENSOR_HEALTH_TABLES, SILENCE_TABLE, sensor_health_job
from operators.aggregates import Count, Max
from operators.flow import metadata_from_assets
from operators.windows import tumbling
from pipeline.execute import execute
from pipeline.job import Job, RunSettings
from schemas import codec
from submit.local import run_job, wait_interruptibly
from submit.simulate import (
    FLOW_WINDOW_MS,
    HeartbeatSpec,
    SimRecord,
    SimulationSpec,
    alarm_events,
    flow_readings,
    flow_topology,
    heartbeats,
)
from submit.tenant_apps import bound_stream
from tests import flow_oracle, health_oracle, oracle
from tests.hostile_records import MAX_RECORD_BYTES, Hostile, hostile_records
from tests.integration.alarm_rate_checks import committed_windows
from tests.integration.test_flow_aggregates import committed_rows
from tests.integration.test_sensor_health import as_health, as_silence, assert_health_equal, by_sensor, committed

OUT_OF_ORDERNESS_MS = 5_000
HEALTH_WINDOW = tumbling(minutes=5)
SETTINGS = {"stop_at": "latest", "watermark_emit": "on-event"}


@dataclass(frozen=True)
class Sent:
    """A record of a source topic as the job reads it: what the oracles take."""

    tenant: str
    value: bytes | None
    kafka_ts: int  # the broker's append time, read back


@dataclass(frozen=True)
class Run:
    a: str
    b: str
    job: Job
    sent: dict[str, list[Sent]]  # tenant -> its topic's records in offset order
    corpus: dict[int, Hostile]  # offset in A's topic -> hostile record
    bootstrap: str
    group: str

    def diverted(self) -> dict[str, list[dict]]:
        """topic -> its dead-letter records, of A's and B's dead-letter and late topics (read at once: each read
        ends only after seconds without a record)."""
        topics = [t.deadletter for t in (self.job.topics(self.a), self.job.topics(self.b))] + \
                 [t.late for t in (self.job.topics(self.a), self.job.topics(self.b))]
        out: dict[str, list[dict]] = {t: [] for t in topics}
        for m in read_all(self.bootstrap, topics, self.group):
            out[m.topic()].append(codec.decode(m.value(), "dead_letter.v1"))
        return out


def _base(records: list[SimRecord], fits: Callable[[dict], bool]) -> int:
    """Where the corpus goes: after the first on-time record in the second half that `fits`."""
    return next(i for i in range(len(records) // 2, len(records))
                if records[i].kind == "on time" and fits(records[i].fields)) + 1


def _run(stack, unique: str, tmp_path, name: str, make_job: Callable[[tuple[str, str]], Job],
         records: Callable[[tuple[str, str]], list[SimRecord]], stream: str,
         fits: Callable[[dict], bool] = lambda fields: True, tables=None, keyspace: str = "") -> Run:
    """Produce B's and A's records (A's with the corpus in the middle), run the job bounded, read the sources back."""
    a, b = f"hs{name}a{unique}", f"hs{name}b{unique}"
    job = make_job((a, b))
    for tenant in (a, b):
        ensure_topics(stack.kafka.bootstrap, job.topics(tenant).all(), partitions=1)
    simulated = records((a, b))
    own = {t: [r for r in simulated if r.tenant == t] for t in (a, b)}
    at = _base(own[a], fits)
    corpus = hostile_records(stream, a, own[a][at - 1].fields)
    kinds = [h.kind for h in corpus]
    assert len(kinds) == len(set(kinds)) and sum(h.reason is not None for h in corpus) >= 25
    topic = job.topics(a).source
    out = producer(stack.kafka.bootstrap)
    for r in own[b]:
        out.produce(r.topic, key=r.key, value=r.value, timestamp=r.kafka_ts)
    for r in own[a][:at]:
        out.produce(r.topic, key=r.key, value=r.value, timestamp=r.kafka_ts)
    for h in corpus:
        out.produce(topic, key=h.key, value=h.value, headers=list(h.headers) or None, timestamp=own[a][at - 1].kafka_ts)
    for r in own[a][at:]:
        out.produce(r.topic, key=r.key, value=r.value, timestamp=r.kafka_ts)
    assert out.flush(60) == 0, "records were not delivered"

    settings = RunSettings(stack.kafka.bootstrap, **SETTINGS)
    if tables is None:  # a tenant app: JSON results, no Cassandra table
        env = streaming_table_env(CheckpointSettings(tmp_path / "checkpoints"),
                                  extra={"pipeline.name": f"{job.name}[{a},{b}]"})
        wait_interruptibly(execute(job, authorized(job, settings), env))
    else:
        report = run_job(job, tables, stack, settings, tmp_path / "checkpoints", keyspace=keyspace)
        assert report.events == len(own[a]) + len(corpus) + len(own[b])  # read to the end and finished
    group = f"check-{unique}"
    sources = {job.topics(t).source: t for t in (a, b)}
    sent: dict[str, list[Sent]] = {a: [], b: []}
    for m in read_all(stack.kafka.bootstrap, list(sources), group, expect=len(own[a]) + len(corpus) + len(own[b])):
        sent[sources[m.topic()]].append(Sent(sources[m.topic()], m.value(), m.timestamp()[1]))
    return Run(a, b, job, sent, {at + i: h for i, h in enumerate(corpus)}, stack.kafka.bootstrap, group)


def _assert_corpus_dead_lettered(run: Run, oracle_invalid_a: dict) -> None:
    """Every hostile record with a reason is a dead letter of A exactly once, with its reason and bytes; the
    oracle rejects exactly those records of A; B has no dead letter; nobody has a late record."""
    expected = {offset: h for offset, h in run.corpus.items() if h.reason is not None}
    diverted = run.diverted()
    dead = diverted.pop(run.job.topics(run.a).deadletter)
    assert [o for o, n in Counter(d["offset"] for d in dead).items() if n > 1] == []  # exactly once
    assert sorted(d["offset"] for d in dead) == sorted(expected)
    for d in dead:
        h = expected[d["offset"]]
        assert d["reason"].startswith(h.reason), (h.kind, d["reason"])
        assert d["payload"] == (h.value or b"")[:MAX_RECORD_BYTES], h.kind
        assert (d["tenant"], d["source_topic"]) == (run.a, run.job.topics(run.a).source), h.kind
    assert sorted(oracle_invalid_a) == sorted(expected)
    assert diverted == {topic: [] for topic in diverted}  # B's dead letters, A's and B's late records


@pytest.fixture
def alarm_run(stack, unique, keyspace, tmp_path):
    return _run(stack, unique, tmp_path, "al", alarm_rate_job, lambda tenants: list(alarm_events(SimulationSpec(
        tenants=tenants, events=1200, stations=4, datapoints=2, out_of_order=0.1, late=0.0, malformed=0.0,
        seed=11))), "alarms", tables=ALARM_RATE_TABLE, keyspace=keyspace)


def test_alarm_rate_job(alarm_run):
    run = alarm_run
    for tenant in (run.a, run.b):
        expected = oracle.alarm_rate(oracle.readings_from(run.sent[tenant]), tenant, 60_000, OUT_OF_ORDERNESS_MS)
        assert expected.late == []
        results = committed_windows(run.bootstrap, run.job.topics(tenant).results, run.group)
        assert len(results) == len(dict(results)) and dict(results) == expected.windows, tenant
        if tenant == run.a:
            _assert_corpus_dead_lettered(run, expected.invalid)


def _app_job(tenants: tuple[str, str]) -> Job:
    """A tenant app's job (the stream an app is given, keyed, windowed and aggregated as an app's spec is built),
    here serving both tenants so that B shares A's pipeline."""
    job = bound_stream(tenants[0], "hostile").key_by("station_id", "datapoint_id").window(tumbling(minutes=1)) \
        .aggregate(events=Count(), top=Max("value"))
    return dataclasses.replace(job, tenants=tenants)


@pytest.fixture
def app_run(stack, unique, tmp_path):
    return _run(stack, unique, tmp_path, "ap", _app_job, lambda tenants: list(alarm_events(SimulationSpec(
        tenants=tenants, events=1200, stations=4, datapoints=2, out_of_order=0.1, late=0.0, malformed=0.0,
        seed=14))), "alarms")


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_tenant_app_job(app_run):
    run = app_run
    for tenant in (run.a, run.b):
        readings = oracle.readings_from(run.sent[tenant])
        on_time, late, invalid = oracle.route(readings, lambda r, t=tenant: oracle.invalid_reason(r, t),
                                              OUT_OF_ORDERNESS_MS)
        assert late == []
        expected: dict[tuple, tuple] = {}
        for r in on_time:
            start = r.event_time - r.event_time % 60_000
            events, top = expected.get((r.station_id, r.datapoint_id, start), (0, r.value))
            expected[(r.station_id, r.datapoint_id, start)] = (events + 1, max(top, r.value))
        rows = [json.loads(m.value()) for m in read_all(run.bootstrap, [run.job.topics(tenant).results], run.group)]
        assert {r["tenant"] for r in rows} <= {tenant}
        got = {(r["station_id"], r["datapoint_id"], _ms(r["window_start"])): (r["events"], r["top"]) for r in rows}
        assert len(got) == len(rows) and got == expected, tenant
        if tenant == run.a:
            _assert_corpus_dead_lettered(run, invalid)


@pytest.fixture
def flow_run(stack, unique, keyspace, tmp_path):
    def job(tenants):
        return flow_aggregates_job(tenants, metadata_from_assets(flow_topology(tenants), tenants))

    return _run(stack, unique, tmp_path, "fl", job, lambda tenants: list(flow_readings(SimulationSpec(
        tenants=tenants, events=1400, out_of_order=0.1, late=0.0, malformed=0.0, seed=12,
        window_ms=FLOW_WINDOW_MS))), "flow", fits=lambda f: f["kind"] in ("additive", "non_additive"),
        tables=FLOW_TABLE, keyspace=keyspace)


def test_flow_job(flow_run):
    run = flow_run
    for tenant in (run.a, run.b):
        expected = flow_oracle.flow_aggregates(flow_oracle.flow_readings_from(run.sent[tenant]),
                                               metadata_from_assets(flow_topology([tenant]), [tenant]),
                                               FLOW_WINDOW_MS, OUT_OF_ORDERNESS_MS)
        assert expected.late == []
        results = committed_rows(run.bootstrap, run.job.topics(tenant).results, run.group)
        assert len(results) == len(dict(results)) and flow_oracle.rows_match(dict(results), expected.windows) == []
        if tenant == run.a:
            _assert_corpus_dead_lettered(run, expected.invalid)


@pytest.fixture
def health_run(stack, unique, keyspace, tmp_path):
    return _run(stack, unique, tmp_path, "hb", lambda tenants: sensor_health_job(tenants, window=HEALTH_WINDOW),
                lambda tenants: list(heartbeats(HeartbeatSpec(tenants=tenants, events=1200, sensors=12,
                                                              outage=0.03, malformed=0.0, seed=13))),
                "heartbeats", tables=SENSOR_HEALTH_TABLES, keyspace=keyspace)


def test_sensor_health_job(health_run):
    run = health_run
    for tenant in (run.a, run.b):
        expected = health_oracle.sensor_health(health_oracle.beats_from(run.sent[tenant]), {tenant: 10},
                                               HEALTH_WINDOW.size_ms, OUT_OF_ORDERNESS_MS)
        assert expected.late == []
        topics = run.job.topics(tenant)
        silences = [as_silence(r) for _, r in committed(run.bootstrap, topics.output(SILENCE_TABLE.topic),
                                                         run.group, "sensor_silence.v1")]
        assert by_sensor(silences) == by_sensor(expected.silences), tenant
        health = dict(as_health(r) for _, r in committed(run.bootstrap, topics.output(HEALTH_TABLE.topic),
                                                         run.group, "health_result.v1"))
        assert_health_equal(health, expected.health)
        if tenant == run.a:
            _assert_corpus_dead_lettered(run, {offset: reason for (_, offset), reason in expected.invalid.items()})
