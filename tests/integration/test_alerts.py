"""Alerts from the alarm-rate and flow jobs on the cluster: a threshold changed in MongoDB (FerretDB) while the
job runs changes the alerts from the next window on, with no restart; each alert is written once."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from connectors.alerts import ALERT_SCHEMA, Alerter, alerts_topic
from connectors.kafka import ensure_topics, read_all
from connectors.metadata import MetadataStore
from connectors.results import ResultFollower
from jobs.alarm_rate import alarm_rate_job
from jobs.catalog import BUILT_IN_JOBS, METADATA_REFRESH_S
from operators.alerts import ALARM_RATE_ALERT, AlertRule
from operators.flow import metadata_from_assets
from operators.windows import tumbling
from pipeline.job import Job, RunSettings
from schemas import codec
from schemas.assets import Assets, parse_assets
from submit.cluster import FlinkRest, submit_job
from submit.simulate import SimRecord, flow_topology, next_hour, produce
from tests import SUITE_LEAD_MS
from tests.flow_oracle import flow_aggregates, flow_readings_from, invalid_reason
from tests.integration.restore_checks import closed, final_watermark, wait_for, window_closed_at

T0 = datetime.fromtimestamp(next_hour(lead_ms=SUITE_LEAD_MS) / 1000, UTC)  # ahead of the append times (submit.simulate)


def window_events(tenant: str, minute: int, shares: dict[str, float], first_second: int = 0) -> list[SimRecord]:
    """Ten events per station in minute `minute` after T0, in time order, the given share of them firing."""
    records = []
    for i in range(10):
        for station, share in shares.items():
            at = T0 + timedelta(minutes=minute, seconds=first_second + i)
            fields = {"tenant": tenant, "station_id": station, "datapoint_id": "dp", "alarm_id": f"{station}-{i}",
                      "event_time": at, "value": 2.0 if i < share * 10 else 0.0, "valueThreshold": 1.0,
                      "isActive": True}
            ms = int(at.timestamp() * 1000)
            records.append(SimRecord(tenant, f"{tenant}.sensors.alarms", station.encode(),
                                     codec.encode("alarm_event.v2", fields), ms, "on time"))
    return records


def assets(tenant: str, threshold: float) -> dict:
    return {"tenants": [{"id": tenant, "name": tenant, "alarm_rate_threshold": threshold,
                         "flow_breach_threshold": 0.5}]}


def alert_records(bootstrap: str, tenant: str, group: str) -> list[dict]:
    return [codec.decode(m.value(), ALERT_SCHEMA) for m in read_all(bootstrap, [alerts_topic(tenant)], group)]


def alerts(bootstrap: str, tenant: str, group: str) -> list[tuple[str, datetime, float]]:
    return [(a["key"], a["window_start"], a["threshold"]) for a in alert_records(bootstrap, tenant, group)]


def new_alerter(stack, rule: AlertRule, result_schema: str, tenants: list[str], store: MetadataStore,
            refresh_s: float = 5.0) -> Alerter:
    """What `tenantstream alerts` runs: thresholds from the metadata store."""
    return Alerter(stack.kafka.bootstrap, rule, result_schema, tenants, lambda t: store.thresholds(t)["tenant"],
                   refresh_s=refresh_s)


@contextlib.contextmanager
def following(follower: ResultFollower) -> Iterator[ResultFollower]:
    """`follower` running in a thread of its own, stopped afterwards."""
    thread = threading.Thread(target=follower.run, daemon=True)
    thread.start()
    try:
        yield follower
    finally:
        follower.stop()
        thread.join(timeout=30)


@contextlib.contextmanager
def alerting(stack, job: Job, rule: AlertRule, result_schema: str, store: MetadataStore,
             refresh_s: float) -> Iterator[Alerter]:
    """An alerter on `job`'s results and the job on the cluster, both stopped afterwards."""
    with following(new_alerter(stack, rule, result_schema, list(job.tenants), store, refresh_s)) as follower:
        rest = FlinkRest(stack.flink.rest_url)
        job_id = submit_job(job, RunSettings(stack.kafka.bootstrap, watermark_emit="on-event"), rest)
        try:
            yield follower
        finally:
            rest.cancel(job_id)


def test_a_threshold_changed_while_the_job_runs_applies_from_the_next_window(stack, unique, store):
    tenant = f"al{unique}"
    bootstrap = stack.kafka.bootstrap
    job = alarm_rate_job([tenant])
    ensure_topics(bootstrap, [*job.topics(tenant).all(), alerts_topic(tenant)], partitions=1)
    store.load(parse_assets(assets(tenant, 0.5), "test"))
    with alerting(stack, job, ALARM_RATE_ALERT, "alarm_rate_result.v1", store, refresh_s=0.5) as alerter:
        # Window 0: s1 fires 60% (above 0.5), s2 30%; a record 10 s into window 1 closes window 0.
        first = window_events(tenant, 0, {"s1": 0.6, "s2": 0.3}) + window_events(tenant, 1, {"tick": 0.0}, 10)[:1]
        produce(iter(first), bootstrap, len(first), progress=None)
        wait_for(lambda: alerts(bootstrap, tenant, f"a1-{unique}"), 60, "the alert of window 0")
        store.load(parse_assets(assets(tenant, 0.7), "test"))  # while the job runs
        time.sleep(2)  # longer than the alerter's refresh
        # Window 1: s1 fires 60% again (now below 0.7), s2 80%; a record in window 2 closes window 1.
        second = window_events(tenant, 1, {"s1": 0.6, "s2": 0.8}, 11) + window_events(tenant, 2, {"tick": 0.0}, 10)[:1]
        produce(iter(second), bootstrap, len(second), progress=None)
        wait_for(lambda: len(alerts(bootstrap, tenant, f"a2-{unique}-{time.monotonic()}")) >= 2, 60,
                 "the alert of window 1")
        alerter.drain()
    w0, w1 = T0.replace(tzinfo=None), (T0 + timedelta(minutes=1)).replace(tzinfo=None)
    got = sorted((k, ws.replace(tzinfo=None), th) for k, ws, th in alerts(bootstrap, tenant, f"a3-{unique}"))
    assert got == [("s1/dp", w0, 0.5), ("s2/dp", w1, 0.7)]


T0_MS = int(T0.timestamp() * 1000)
# sensor -> (a value within its element's limits, one outside them), in the simulated plant
FLOW_VALUES = {"pump-1-flow": (50.0, 120.0), "pump-2-flow": (50.0, 120.0), "basin-north-level": (3.0, 6.0),
               "main-pipe-volume": (1.0, 4.0)}


def flow_window(tenant: str, minute: int, shares: dict[str, float], first_second: int = 0) -> list[SimRecord]:
    """Ten readings per sensor, 5 s apart, in minute `minute` after T0, in time order; the first `share` of
    each sensor's readings outside its element's limits."""
    sensors = {s.id: s for s in flow_topology([tenant]).sensors}
    records = []
    for i in range(10):
        for sensor, share in shares.items():
            at = T0_MS + minute * 60_000 + (first_second + 5 * i) * 1000
            s = sensors[sensor]
            fields = {"tenant": tenant, "sensor_id": sensor, "element_id": s.element, "kind": s.kind,
                      "event_time": at, "value": FLOW_VALUES[sensor][i < round(share * 10)], "unit": s.unit,
                      "reset": False}
            records.append(SimRecord(tenant, f"{tenant}.sensors.flow", sensor.encode(),
                                     codec.encode("flow_reading.v1", fields), at + 50, "on time", fields))
    return records


def with_breach_threshold(plant: Assets, threshold: float) -> Assets:
    return dataclasses.replace(plant, tenants=tuple(dataclasses.replace(t, flow_breach_threshold=threshold)
                                                    for t in plant.tenants))


def test_flow_breach_alerts_once_per_window_and_sensor_against_the_threshold_of_the_time(stack, unique, store):
    """The flow job as `submit flow_aggregates` plans it (sensors and limits from the metadata store), 1-minute
    windows, and its alerter. The alerts equal the oracle's windows whose breach share passes the threshold
    the tenant had when they closed, one per window and sensor, and an alerter restarted on the same
    consumer group raises none again."""
    tenant = f"fal{unique}"
    bootstrap = stack.kafka.bootstrap
    plant = flow_topology([tenant])
    store.load(with_breach_threshold(plant, 0.5))
    flow = BUILT_IN_JOBS["flow_aggregates"]
    job = flow.build([tenant], tumbling(minutes=1), store, METADATA_REFRESH_S)
    ensure_topics(bootstrap, [*job.topics(tenant).all(), alerts_topic(tenant)], partitions=1)

    def alerts_of(group: str) -> list[dict]:
        return alert_records(bootstrap, tenant, f"{group}-{unique}-{time.monotonic()}")

    # The alerter reads the thresholds before each batch of results (refresh 0 s), so a change stored
    # before a window's readings are sent applies to that window, with no waiting.
    with alerting(stack, job, flow.alert, flow.tables[0].schema, store, refresh_s=0.0) as alerter:
        # Window 0: pump-1 breaches 60% (above 0.5), pump-2 30%; a reading 10 s into window 1 closes it.
        first = flow_window(tenant, 0, {"pump-1-flow": 0.6, "pump-2-flow": 0.3, "main-pipe-volume": 0.0}) \
            + flow_window(tenant, 1, {"main-pipe-volume": 0.0}, 10)[:1]
        produce(iter(first), bootstrap, len(first), progress=None)
        wait_for(lambda: alerts_of("f1"), 60, "the alert of window 0")
        store.load(with_breach_threshold(plant, 0.7))  # while the job and the alerter run
        # Window 1: pump-1 60% again (now below 0.7), pump-2 80%, the basin 70% (not above 0.7).
        second = flow_window(tenant, 1, {"pump-1-flow": 0.6, "pump-2-flow": 0.8, "basin-north-level": 0.7}, 11) \
            + flow_window(tenant, 2, {"main-pipe-volume": 0.0}, 10)[:1]
        produce(iter(second), bootstrap, len(second), progress=None)
        wait_for(lambda: len(alerts_of("f2")) >= 2, 60, "the alert of window 1")
        alerter.drain()
    with following(new_alerter(stack, flow.alert, flow.tables[0].schema, [tenant], store)) as again:
        again.drain(timeout=60)  # what the first one handled is not handled again
    assert again.raised == 0

    readings = flow_readings_from(first + second)
    metadata = metadata_from_assets(plant, [tenant])
    windows = closed(flow_aggregates(readings, metadata, 60_000, 5_000).windows,
                     final_watermark(readings, invalid_reason, 5_000),
                     lambda key: window_closed_at(key[5]))
    threshold = {T0_MS: 0.5, T0_MS + 60_000: 0.7}
    shares = {(key[1], key[4]): row[1] / row[0] for key, row in windows.items() if row[0]}
    expected = sorted((sensor, start, share, threshold[start]) for (sensor, start), share in shares.items()
                      if share > threshold[start])
    assert expected == [("pump-1-flow", T0_MS, 0.6, 0.5), ("pump-2-flow", T0_MS + 60_000, 0.8, 0.7)]
    assert shares[("basin-north-level", T0_MS + 60_000)] == 0.7 and ("pump-2-flow", T0_MS) in shares
    got = alerts_of("f3")
    assert sorted((a["key"], _ms(a["window_start"]), a["value"], a["threshold"]) for a in got) == expected
    assert all(a["tenant"] == tenant and a["job"] == "flow" and a["metric"] == "breach_share"
               and _ms(a["window_end"]) == _ms(a["window_start"]) + 60_000 for a in got)


def _ms(value: datetime) -> int:
    return int(value.replace(tzinfo=UTC).timestamp() * 1000)


def test_alerts_for_a_tenant_without_results_topic_say_so(stack, unique, capsys):
    from submit import cli

    assert cli.main(["alerts", "alarm_rate", "--tenants", f"none{unique}", "--until-caught-up"]) == 1
    assert f"no topic none{unique}.results.alarm_rate yet" in capsys.readouterr().err
