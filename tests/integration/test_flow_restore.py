"""Kill the flow aggregates job with signal 9 mid-stream, restart it from its latest checkpoint: the
committed results and Cassandra rows still equal the flow oracle, nothing lost, nothing doubled.

The readings are scripted so that the state the job keeps outside its windows is in play across the
kill: the energy counter's OVER aggregates (resets so far, the peak since the last reset, the previous
peak) give each reading its step from the one before it, so a restored job that lost them would take
its next reading for a baseline (a step of 0), and one that replayed a reading twice would count its
step twice; a reading below the last one without the reset marker is rejected only if the job still
knows the last one. The power sensor's windows at sea (no readings) come from the second window over
the first one's results.
"""

from __future__ import annotations

import json
import threading

from connectors.kafka import ensure_topics
from jobs.flow_aggregates import flow_aggregates_job
from operators.flow import metadata_from_assets
from operators.windows import tumbling
from schemas import codec
from submit.simulate import SimRecord, flow_topology, next_hour, produce
from tests import SUITE_LEAD_MS
from tests.flow_oracle import flow_aggregates, flow_readings_from, invalid_reason, rows_match
from tests.integration.alarm_rate_checks import diverted
from tests.integration.restore_checks import CliJob, closed, committed_count, final_watermark, window_closed_at
from tests.integration.test_flow_aggregates import cassandra_rows, committed_rows

MINUTE = 60_000
SECOND = 1_000
START = next_hour(lead_ms=SUITE_LEAD_MS)  # ahead of the append times (submit.simulate)
WINDOW = tumbling(minutes=5)
MINUTES = 100
AT_SEA = (*range(35, 50), *range(70, 80))  # the ship's sensors do not read
RESETS = (17, 52, 83)  # its energy meter is replaced just before these minutes' reading
BACKWARDS = (60, 90)  # a counter reading below the last one, without the reset marker: a dead letter
TWICE = (5, 15, 25, 55, 65, 85, 95)  # the meter reads twice, the second reading (3 s later) arriving first


def scripted_readings(tenant: str) -> list[SimRecord]:
    """A reading a minute of a pump, the pipe and, while docked, the ship's power and energy meter; in the
    order they arrive, each within the 5 s out-of-orderness of the newest, so none is late."""
    sensors = {s.id: s for s in flow_topology([tenant]).sensors}

    def reading(minute: int, second: int, sensor: str, value: float, reset: bool = False) -> SimRecord:
        s = sensors[sensor]
        at = START + minute * MINUTE + second * SECOND
        fields = {"tenant": tenant, "sensor_id": sensor, "element_id": s.element, "kind": s.kind, "event_time": at,
                  "value": round(value, 3), "unit": s.unit, "reset": reset}
        return SimRecord(tenant, f"{tenant}.sensors.flow", sensor.encode(), codec.encode("flow_reading.v1", fields),
                         at + 50, "on time", fields)

    records, meter = [], 0.0
    for m in range(MINUTES):
        records.append(reading(m, 0, "pump-1-flow", 40.0 + m * 37 % 70))  # above 100 (its pump's limit) now and then
        records.append(reading(m, 10, "main-pipe-volume", 0.5 + m % 7 * 0.45))  # above 3.0 (the pipe's) at m % 7 == 6
        if m in AT_SEA:
            continue
        power = 300.0 + m * 13 % 90
        records.append(reading(m, 20, "ship-1-power", power))
        meter = round((0.0 if m in RESETS else meter) + power / 60, 3)
        counter = [reading(m, 30, "ship-1-energy", meter, reset=m in RESETS)]
        if m in TWICE:
            meter = round(meter + 0.25, 3)
            counter.insert(0, reading(m, 33, "ship-1-energy", meter))
        if m in BACKWARDS:
            counter.append(reading(m, 40, "ship-1-energy", meter - 5.0))
        records += counter
    return records


def test_flow_job_killed_mid_stream_and_restored_from_checkpoint_equals_the_oracle(stack, unique, tmp_path):
    tenant = f"flowcrash{unique}"
    plant = flow_topology([tenant])
    assets = tmp_path / "plant.json"
    assets.write_text(json.dumps(plant.document()))
    metadata = metadata_from_assets(plant, [tenant])
    topics = flow_aggregates_job([tenant], metadata, WINDOW).topics(tenant)
    ensure_topics(stack.kafka.bootstrap, topics.all(), partitions=1)
    records = scripted_readings(tenant)
    readings = flow_readings_from(records)
    everything = flow_aggregates(readings, metadata, WINDOW.size_ms, 5_000)
    watermark = final_watermark(readings, invalid_reason, 5_000)
    expected = closed(everything.windows, watermark, lambda key: window_closed_at(key[5]))

    def feed(_killed: threading.Event) -> None:
        produce(iter(records), stack.kafka.bootstrap, len(records), rate=20.0, progress=None)

    job = CliJob(["flow_aggregates", "--tenants", tenant, "--window", str(WINDOW.size_ms // 1000), "--assets",
                  str(assets), "--watermarks", "on-event"], tmp_path)
    before = job.crash_and_restore(feed, lambda: committed_count(stack.kafka.bootstrap, [topics.results]),
                                   len(expected))

    results = committed_rows(stack.kafka.bootstrap, topics.results, f"check-{unique}")
    assert len(results) == len(dict(results)), "a window was committed twice"
    assert rows_match(dict(results), expected) == []
    assert rows_match(cassandra_rows(stack.cassandra.port, "tenantstream", tenant), expected) == []
    # the counter's steps were taken on both sides of the kill, so one spans it
    assert {key[3] for key, _ in results[:before]} >= {"energy_counter", "power"}
    assert "energy_counter" in {key[3] for key, _ in results[before:]}
    # what the scripted readings were for: breaches, resets, zero-energy windows, readings out of order
    assert {key[3] for key in expected} == {"additive", "non_additive", "energy_counter", "power"}
    assert sum(row[1] for row in expected.values()) > 10
    assert sum(row[0] == 0 for key, row in expected.items() if key[3] == "power") == len(AT_SEA) // 5
    assert everything.late == [] and len(everything.invalid) == len(BACKWARDS)
    dead = diverted(stack.kafka.bootstrap, topics.deadletter, f"check-{unique}")
    assert sorted(d["offset"] for d in dead) == sorted(everything.invalid)
    assert all(d["reason"].startswith("counter went backwards without reset") for d in dead)
