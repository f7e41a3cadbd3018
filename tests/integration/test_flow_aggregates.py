"""The flow aggregates job on the real stack: known readings in, the oracle's rows in Cassandra and on the
committed results topic; every kind of bad input in, a dead letter with its reason, and the job carries on."""

from __future__ import annotations

import io
import json
import math
import uuid
from datetime import UTC

import fastavro
import pytest

from connectors.cassandra import connect
from connectors.kafka import delete_topics, read_all
from jobs.flow_aggregates import FLOW_TABLE, flow_aggregates_job
from operators.flow import metadata_from_assets
from pipeline.job import RunSettings
from schemas import codec
from submit.local import run_job
from submit.simulate import (
    FLOW_WINDOW_MS,
    SimRecord,
    SimulationSpec,
    as_appended,
    flow_readings,
    flow_topology,
    next_hour,
    produce,
)
from tests import SUITE_LEAD_MS
from tests.flow_oracle import Key, Row, flow_aggregates, flow_readings_from, rows_match
from tests.integration.alarm_rate_checks import diverted
from tests.integration.test_alarm_rate import single_partition_topics

FIELDS = ("readings", "breaches", "sum", "mean", "min", "max", "increase", "energy_kwh")


def _ms(value) -> int:
    return int(value.replace(tzinfo=UTC).timestamp() * 1000)


def committed_rows(bootstrap: str, topic: str, group: str) -> list[tuple[Key, Row]]:
    out = []
    for m in read_all(bootstrap, [topic], group):
        r = codec.decode(m.value(), "flow_result.v1")
        out.append(((r["tenant"], r["sensor_id"], r["element_id"], r["kind"], _ms(r["window_start"]),
                     _ms(r["window_end"])), tuple(r[f] for f in FIELDS)))
    return out


def cassandra_rows(port: int, keyspace: str, tenant: str) -> dict[Key, Row]:
    cluster, session = connect(port, keyspace)
    try:
        rows = session.execute(f"SELECT * FROM {FLOW_TABLE.name} WHERE tenant = %s ALLOW FILTERING", (tenant,))
        return {(r.tenant, r.sensor_id, r.element_id, r.kind, _ms(r.window_start), _ms(r.window_end)):
                tuple(getattr(r, f) for f in FIELDS) for r in rows}
    finally:
        cluster.shutdown()


def run_bounded(stack, tenant: str, records: list[SimRecord], keyspace: str, tmp_path):
    """Produce `records` into the tenant's single-partition topic and run the job over them to the end; the job,
    its report and the records with the broker's append times (what the oracle must judge them by)."""
    job = flow_aggregates_job([tenant], metadata_from_assets(flow_topology([tenant]), [tenant]))
    single_partition_topics(stack, job, tenant)
    sent = produce(iter(records), stack.kafka.bootstrap, len(records), progress=None)
    report = run_job(job, FLOW_TABLE, stack, RunSettings(stack.kafka.bootstrap, stop_at="latest",
                                                         watermark_emit="on-event"),
                     tmp_path / "checkpoints", keyspace=keyspace)
    return job, report, as_appended(records, sent)


def test_known_readings_give_the_oracle_rows_in_cassandra_and_on_the_results_topic(stack, unique, keyspace,
                                                                                    tmp_path):
    tenant = f"it{unique}"
    spec = SimulationSpec(tenants=(tenant,), events=6000, out_of_order=0.1, late=0.01, malformed=0.03, seed=5,
                          window_ms=FLOW_WINDOW_MS)
    # The ship sails from minute 60 to 95, whatever it does in the simulation, so the window [75, 90) has no
    # power reading for every tenant name (left to chance, ~0.1% of names had no window at sea).
    at_sea = range(spec.start_ms + 60 * 60_000, spec.start_ms + 95 * 60_000)
    records = [r for r in flow_readings(spec) if not (r.key.startswith(b"ship-1-") and r.kafka_ts in at_sea)]
    job, report, appended = run_bounded(stack, tenant, records, keyspace, tmp_path)

    expected = flow_aggregates(flow_readings_from(appended), metadata_from_assets(flow_topology([tenant]), [tenant]),
                               FLOW_WINDOW_MS, 5_000)
    results = committed_rows(stack.kafka.bootstrap, job.topics(tenant).results, f"check-{unique}")
    assert len(results) == len(dict(results)), "a window was committed twice"
    assert rows_match(dict(results), expected.windows) == []
    assert rows_match(cassandra_rows(stack.cassandra.port, keyspace, tenant), expected.windows) == []
    assert report.events == len(records) and report.results_written == len(expected.windows)
    assert {k[3] for k in expected.windows} == {"additive", "non_additive", "energy_counter", "power"}
    assert any(row[0] == 0 for row in expected.windows.values())  # the ship at sea: zero-energy windows

    dead = diverted(stack.kafka.bootstrap, job.topics(tenant).deadletter, f"check-{unique}")
    assert sorted(d["offset"] for d in dead) == sorted(expected.invalid)
    assert all(d["reason"].startswith(expected.invalid[d["offset"]]) for d in dead)
    assert all(d["payload"] == records[d["offset"]].value and d["source_topic"] == f"{tenant}.sensors.flow"
               for d in dead)
    late = diverted(stack.kafka.bootstrap, job.topics(tenant).late, f"check-{unique}")
    assert sorted(d["offset"] for d in late) == expected.late and len(late) > 10


MINUTE = 60_000
START = next_hour(lead_ms=SUITE_LEAD_MS)  # ahead of the append times (submit.simulate)


def _reading(tenant: str, minute: float, sensor: str, value: float | None, **change) -> dict:
    plant = {s.id: s for s in flow_topology([tenant]).sensors}
    s = plant.get(sensor) or plant["pump-1-flow"]
    return {"tenant": tenant, "sensor_id": sensor, "element_id": s.element, "kind": s.kind,
            "event_time": START + round(minute * MINUTE), "value": value, "unit": s.unit, "reset": False, **change}


def _wrong_type(fields: dict) -> bytes:
    """A body whose value was written as text, under the flow_reading.v1 fingerprint."""
    writer = json.loads((codec.SCHEMA_DIR / "flow_reading.v1.avsc").read_text())
    value = next(f for f in writer["fields"] if f["name"] == "value")
    value["type"] = "string"
    del value["default"]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(writer), {**fields, "value": "12.5"})
    return codec.MAGIC + codec.schema("flow_reading.v1").fingerprint + body.getvalue()


def bad_inputs(tenant: str) -> dict[str, tuple[bytes, str]]:
    """kind -> (record bytes, the words its dead letter's reason starts with), all at 04:20."""
    good = _reading(tenant, 20, "pump-1-flow", 50.0)

    def encoded(**change) -> bytes:
        return codec.encode("flow_reading.v1", {**good, **change})

    return {
        "garbage bytes": (b"hello, not avro", "not Avro single-object encoding"),
        "unknown schema": (codec.MAGIC + b"\x00" * 8 + b"\x02", "unknown schema fingerprint"),
        "truncated body": (encoded()[:-5], "corrupt Avro body"),
        "wrong type": (_wrong_type(good), "corrupt Avro body"),
        "missing sensor_id": (encoded(sensor_id=""), "missing sensor_id"),
        "missing element_id": (encoded(element_id=""), "missing element_id"),
        "missing value": (encoded(value=None), "missing value"),
        "not a finite value": (encoded(value=math.inf), "value is not a finite number"),
        "far-future timestamp": (encoded(event_time=START + 40 * 24 * 60 * MINUTE), "bad timestamp"),
        "timestamp before 2000": (encoded(event_time=631_152_000_000), "bad timestamp"),
        "unknown tenant": (encoded(tenant="intruder"), "unknown tenant: record says intruder"),
        "unknown sensor": (encoded(sensor_id="ghost"), f"unknown sensor: ghost is not a sensor of tenant {tenant}"),
        "kind against metadata": (encoded(kind="additive"), "sensor pump-1-flow is pump-1 non_additive m3/h in the "
                                                            "metadata, the record says pump-1 additive m3/h"),
        "negative power": (codec.encode("flow_reading.v1", _reading(tenant, 20, "ship-1-power", -3.0)),
                           "negative power: -3.0 kW"),
        "negative energy": (codec.encode("flow_reading.v1", _reading(tenant, 20, "ship-1-energy", -1.0)),
                            "negative energy: -1.0 kWh"),
        "counter backwards": (codec.encode("flow_reading.v1", _reading(tenant, 21, "ship-1-energy", 90.0)),
                              "counter went backwards without reset: 90.0 after 110.0"),
    }


@pytest.fixture(scope="module")
def bad_input_run(stack, tmp_path_factory):
    """Good readings from 04:00 to 04:44, every kind of bad input at 04:20, one job run to the end."""
    tenant = f"itbad{uuid.uuid4().hex[:10]}"
    good = [_reading(tenant, m, "pump-1-flow", 50.0 + m) for m in range(45)]
    good += [_reading(tenant, m, "ship-1-energy", 100.0 + m / 2) for m in range(0, 45, 4)]  # 110.0 at 04:20
    good.sort(key=lambda f: f["event_time"])
    before = [f for f in good if f["event_time"] <= START + 20 * MINUTE]
    after = [f for f in good if f["event_time"] > START + 20 * MINUTE]
    bad = bad_inputs(tenant)

    def record(value: bytes, event_time: int) -> SimRecord:
        return SimRecord(tenant, f"{tenant}.sensors.flow", b"k", value, event_time + 50, "", {})

    records = [record(codec.encode("flow_reading.v1", f), f["event_time"]) for f in before]
    records += [record(value, START + 20 * MINUTE) for value, _ in bad.values()]
    records += [record(codec.encode("flow_reading.v1", f), f["event_time"]) for f in after]
    keyspace = f"it_{tenant}"
    job, report, _ = run_bounded(stack, tenant, records, keyspace, tmp_path_factory.mktemp("bad"))
    dead = diverted(stack.kafka.bootstrap, job.topics(tenant).deadletter, f"check-{tenant}")
    results = dict(committed_rows(stack.kafka.bootstrap, job.topics(tenant).results, f"check-{tenant}"))
    yield tenant, records, len(before), dead, results, report
    cluster, session = connect(stack.cassandra.port)
    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
    cluster.shutdown()
    delete_topics(stack.kafka.bootstrap, lambda topic: topic.startswith(f"{tenant}."))


@pytest.mark.parametrize("kind", list(bad_inputs("t")))
def test_bad_input_goes_to_the_dead_letter_topic_with_its_reason(bad_input_run, kind):
    tenant, records, first_bad, dead, _, _ = bad_input_run
    offset = first_bad + list(bad_inputs(tenant)).index(kind)
    value, reason = bad_inputs(tenant)[kind]
    (letter,) = [d for d in dead if d["offset"] == offset]
    assert letter["reason"].startswith(reason), letter["reason"]
    assert letter["payload"] == records[offset].value == value and letter["tenant"] == tenant


def test_after_the_bad_input_the_job_carries_on_and_loses_nothing(bad_input_run):
    tenant, records, _, dead, results, report = bad_input_run
    assert report.events == len(records)  # the bounded job read every record and finished normally
    assert len(dead) == len(bad_inputs(tenant))  # nothing else was rejected
    flow = {k[4]: v for k, v in results.items() if k[1] == "pump-1-flow"}
    assert {start: row[0] for start, row in flow.items()} == {START: 15, START + 15 * MINUTE: 15,
                                                              START + 30 * MINUTE: 15}
    energy = {k[4]: v[6] for k, v in results.items() if k[1] == "ship-1-energy"}
    # 100 at 04:00 is the baseline, then +2 every 4 minutes; the 90 at 04:21 is the dead letter
    assert energy == {START: 6.0, START + 15 * MINUTE: 8.0, START + 30 * MINUTE: 8.0}
    assert sum(row[0] for row in results.values()) + len(dead) == len(records)
