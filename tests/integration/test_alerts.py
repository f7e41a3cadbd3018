"""Alerts from the alarm-rate job on the cluster: a threshold changed in MongoDB (FerretDB) while the job
runs changes the alerts from the next window on, with no restart; each alert is written once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from connectors.alerts import ALERT_SCHEMA, Alerter, alerts_topic
from connectors.kafka import ensure_topics, read_all
from connectors.metadata import MetadataStore
from jobs.alarm_rate import alarm_rate_job
from jobs.pipeline import RunSettings
from operators.alerts import ALARM_RATE_ALERT
from schemas import codec
from schemas.assets import parse_assets
from submit.cluster import FlinkRest, submit_job
from submit.simulate import SimRecord, produce

T0 = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


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


def alerts(bootstrap: str, tenant: str, group: str) -> list[tuple[str, datetime, float]]:
    return [(a["key"], a["window_start"], a["threshold"]) for a in
            (codec.decode(m.value(), ALERT_SCHEMA) for m in read_all(bootstrap, [alerts_topic(tenant)], group))]


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(1)


def test_a_threshold_changed_while_the_job_runs_applies_from_the_next_window(stack, unique):
    tenant, database = f"al{unique}", f"alerts_{unique}"
    bootstrap = stack.kafka.bootstrap
    job = alarm_rate_job([tenant])
    ensure_topics(bootstrap, [*job.topics(tenant).all(), alerts_topic(tenant)], partitions=1)
    store = MetadataStore(stack.ferretdb.uri, database)
    store.load(parse_assets(assets(tenant, 0.5), "test"))
    alerter = Alerter(bootstrap, ALARM_RATE_ALERT, "alarm_rate_result.v1", [tenant],
                      lambda t: store.thresholds(t)["tenant"], refresh_s=0.5)
    follower = threading.Thread(target=alerter.run, daemon=True)
    follower.start()
    rest = FlinkRest(stack.flink.rest_url)
    job_id = submit_job(job, RunSettings(bootstrap, watermark_emit="on-event"), rest)
    try:
        # Window 0: s1 fires 60% (above 0.5), s2 30%; a record 10 s into window 1 closes window 0.
        first = window_events(tenant, 0, {"s1": 0.6, "s2": 0.3}) + window_events(tenant, 1, {"tick": 0.0}, 10)[:1]
        produce(iter(first), bootstrap, len(first), progress=None)
        wait_for(lambda: alerts(bootstrap, tenant, f"a1-{unique}"))
        store.load(parse_assets(assets(tenant, 0.7), "test"))  # while the job runs
        time.sleep(2)  # longer than the alerter's refresh
        # Window 1: s1 fires 60% again (now below 0.7), s2 80%; a record in window 2 closes window 1.
        second = window_events(tenant, 1, {"s1": 0.6, "s2": 0.8}, 11) + window_events(tenant, 2, {"tick": 0.0}, 10)[:1]
        produce(iter(second), bootstrap, len(second), progress=None)
        wait_for(lambda: len(alerts(bootstrap, tenant, f"a2-{unique}-{time.monotonic()}")) >= 2)
        alerter.drain()
    finally:
        rest.cancel(job_id)
        alerter.stop()
        follower.join(timeout=30)
        store.client.drop_database(database)
        store.close()
    w0, w1 = T0.replace(tzinfo=None), (T0 + timedelta(minutes=1)).replace(tzinfo=None)
    got = sorted((k, ws.replace(tzinfo=None), th) for k, ws, th in alerts(bootstrap, tenant, f"a3-{unique}"))
    assert got == [("s1/dp", w0, 0.5), ("s2/dp", w1, 0.7)]


def test_alerts_for_a_tenant_without_results_topic_say_so(stack, unique, capsys):
    from submit import cli

    assert cli.main(["alerts", "alarm_rate", "--tenants", f"none{unique}", "--until-caught-up"]) == 1
    assert f"no topic none{unique}.results.alarm_rate yet" in capsys.readouterr().err
