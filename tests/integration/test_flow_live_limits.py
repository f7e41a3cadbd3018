"""The flow job on the cluster looks its sensors and element limits up in MongoDB (FerretDB) while it runs:
limits changed and sensors added in the store apply to the readings of the next window, with no restart."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

from connectors.kafka import ensure_topics, read_all
from connectors.metadata import MetadataStore
from jobs.catalog import BUILT_IN_JOBS
from operators.windows import tumbling
from pipeline.job import RunSettings
from schemas import codec
from schemas.assets import Range, Sensor
from submit.cluster import FlinkRest, submit_job
from submit.simulate import SimRecord, flow_topology, next_hour, produce
from tests import SUITE_LEAD_MS
from tests.integration.restore_checks import wait_for
from tests.integration.test_flow_aggregates import committed_rows

T0 = datetime.fromtimestamp(next_hour(lead_ms=SUITE_LEAD_MS) / 1000, UTC)  # ahead of the append times (submit.simulate)
WINDOW_S = 10
SENSORS = {"pump-1-flow": ("pump-1", "non_additive", "m3/h"), "main-pipe-volume": ("main-pipe", "additive", "m3"),
           "pump-1-pressure": ("pump-1", "non_additive", "bar")}  # the last one is added while the job runs


def readings(tenant: str, second: int, values: dict[str, list[float]]) -> list[SimRecord]:
    """Each sensor's values, one a second from `second` s after T0."""
    records = []
    for sensor, sensor_values in values.items():
        element, kind, unit = SENSORS[sensor]
        for i, value in enumerate(sensor_values):
            at = T0 + timedelta(seconds=second + i)
            fields = {"tenant": tenant, "sensor_id": sensor, "element_id": element, "kind": kind,
                      "event_time": at, "value": value, "unit": unit, "reset": False}
            records.append(SimRecord(tenant, f"{tenant}.sensors.flow", sensor.encode(),
                                     codec.encode("flow_reading.v1", fields), int(at.timestamp() * 1000), "on time"))
    return sorted(records, key=lambda r: r.kafka_ts)


def with_limits(assets, changed: dict[str, Range]):
    elements = tuple(dataclasses.replace(e, limits=changed.get(e.id, e.limits)) for e in assets.elements)
    return dataclasses.replace(assets, elements=elements)


def test_limits_changed_and_sensors_added_in_the_store_apply_from_the_next_window_without_a_restart(stack, unique):
    tenant, database = f"ll{unique}", f"limits_{unique}"
    bootstrap = stack.kafka.bootstrap
    store = MetadataStore(stack.ferretdb.uri, database)
    plant = flow_topology([tenant])  # pump-1 limits 0..100, main-pipe at most 3
    store.load(plant)
    job = BUILT_IN_JOBS["flow_aggregates"].build([tenant], tumbling(seconds=WINDOW_S), store, 0.5)
    ensure_topics(bootstrap, job.topics(tenant).all(), partitions=1)
    rest = FlinkRest(stack.flink.rest_url)
    job_id = submit_job(job, RunSettings(bootstrap, watermark_emit="on-event"), rest)
    values = {"pump-1-flow": [50.0, 120.0, 130.0], "main-pipe-volume": [2.0, 4.0, 5.0], "pump-1-pressure": [5.0, 6.0]}
    tick = {"pump-1-flow": [1.0]}  # in the next window, to close this one (inside both sets of limits)
    try:
        first = readings(tenant, 0, values) + readings(tenant, WINDOW_S + 6, tick)
        produce(iter(first), bootstrap, len(first), progress=None)
        results = f"{tenant}.results.flow"
        wait_for(lambda: committed_rows(bootstrap, results, f"l1-{unique}-{time.monotonic()}"), 90,
                 "window 0's results")
        # While the job runs: pump-1 now at most 200 (its two breaches are none), main-pipe at most 1, and
        # the pressure sensor, whose readings were dead letters so far, is added.
        changed = with_limits(plant, {"pump-1": Range(0.0, 200.0), "main-pipe": Range(None, 1.0)})
        store.load(dataclasses.replace(changed, sensors=(*changed.sensors, Sensor(tenant, "pump-1-pressure",
                                                                                   *SENSORS["pump-1-pressure"]))))
        time.sleep(3)  # several refreshes of the job's copy (every 0.5 s)
        second = readings(tenant, WINDOW_S + 7, values) + readings(tenant, 2 * WINDOW_S + 6, tick)
        produce(iter(second), bootstrap, len(second), progress=None)
        wait_for(lambda: len(committed_rows(bootstrap, results, f"l2-{unique}-{time.monotonic()}")) >= 7, 90,
                 "window 1's results")
        assert rest.state(job_id) == "RUNNING"  # never restarted
    finally:
        rest.cancel(job_id)
        store.client.drop_database(database)
        store.close()
    breaches = {(key[1], key[4] // 1000 - int(T0.timestamp())): row[:2]
                for key, row in committed_rows(bootstrap, results, f"l3-{unique}")}
    # (sensor, window start s after T0) -> (readings, breaches); the ship's power sensor sent nothing
    assert breaches == {("pump-1-flow", 0): (3, 2), ("main-pipe-volume", 0): (3, 2), ("ship-1-power", 0): (0, 0),
                        ("pump-1-flow", WINDOW_S): (4, 0), ("main-pipe-volume", WINDOW_S): (3, 3),
                        ("pump-1-pressure", WINDOW_S): (2, 0), ("ship-1-power", WINDOW_S): (0, 0)}
    reasons = [codec.decode(m.value(), "dead_letter.v1")["reason"]
               for m in read_all(bootstrap, [f"{tenant}.deadletter"], f"l4-{unique}")]
    assert reasons == [f"unknown sensor: pump-1-pressure is not a sensor of tenant {tenant}"] * 2
