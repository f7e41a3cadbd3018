"""Flow aggregates per (tenant, sensor) and tumbling event-time window (default 15 minutes).

<tenant>.sensors.flow (Avro flow_reading.v1) -> validate -> watermark -> breach of the element's limits
(planned, or looked up in the metadata store) -> energy counters stepped in event-time order per sensor ->
key by sensor -> tumbling window -> the kind's aggregate, readings, breaches -> rows for power sensors
without readings -> <tenant>.results.flow (exactly once) -> Cassandra (results writer).
Bad records -> <tenant>.deadletter with the reason, late ones -> <tenant>.late.

What each kind reports, how counter resets are handled and which windows without data get a row:
see operators/flow.py. A result's window_end is its right-edge label: 04:00, 04:05 and 04:10 fall in the
window [04:00, 04:15) labelled 04:15.

Bad records, each with its reason: undecodable bytes (a wrong type makes the Avro body unreadable),
missing ids or value, a text over 200 characters or with a control character, a value that is not a
finite number, timestamps before 2000 or more than 24 h after the Kafka append time, another tenant's
name, a sensor not in the job's metadata or a reading whose element, kind or unit contradicts it,
negative power or energy, and an energy counter that went backwards without the reset marker.

The job's metadata (its tenants' sensors with their element, kind and unit, and the elements' limits) is
looked up while it runs: from the metadata store (`LiveMetadata`, re-read every few seconds, so new sensors
and changed limits apply without a restart; what `tenantstream submit` plans) or fixed when the job is
planned (`operators.flow.metadata_from_assets`, from an asset file).
"""

from __future__ import annotations

from collections.abc import Sequence

from operators.flow import (
    BreachFlags,
    CounterSteps,
    KnownSensors,
    Metadata,
    ZeroEnergyWindows,
    flow_aggregates,
    flow_rules,
)
from operators.windows import Tumbling, tumbling
from pipeline.job import TOPIC_TENANT_COLUMN, Job, ResultTable

DEFAULT_WINDOW = tumbling(minutes=15)


def flow_aggregates_job(tenants: Sequence[str], metadata: Metadata, window: Tumbling = DEFAULT_WINDOW) -> Job:
    return (Job("flow", tenants=tuple(tenants))
            .source("flow", schema="flow_reading.v1", time="event_time",
                    required=("sensor_id", "element_id", "kind", "unit"))
            .validate(*flow_rules())
            .before_window(KnownSensors(metadata, TOPIC_TENANT_COLUMN),
                           BreachFlags(metadata, TOPIC_TENANT_COLUMN),
                           CounterSteps(TOPIC_TENANT_COLUMN, "rowtime"))
            .key_by("sensor_id", "element_id", "kind")
            .window(window)
            .aggregate(**flow_aggregates(window))
            .after_window(ZeroEnergyWindows(metadata, TOPIC_TENANT_COLUMN))
            .to_results("flow_result.v1"))


FLOW_TABLE = ResultTable("flow_aggregates", "flow_result.v1", partition_key=("tenant", "sensor_id"))
