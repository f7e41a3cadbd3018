"""Alarm rate per (tenant, station, datapoint) and tumbling event-time window.

<tenant>.sensors.alarms (Avro) -> validate -> watermark -> key by station and
datapoint -> tumbling window -> fires, events, rate -> <tenant>.results.alarm_rate
(exactly once) -> Cassandra (results writer). Bad records -> <tenant>.deadletter,
late ones -> <tenant>.late.
"""

from __future__ import annotations

from collections.abc import Sequence

from operators.alarms import ALARM_RATE
from operators.windows import Tumbling, tumbling
from pipeline.job import Job, ResultTable

DEFAULT_WINDOW = tumbling(minutes=1)


def alarm_rate_job(tenants: Sequence[str], window: Tumbling = DEFAULT_WINDOW) -> Job:
    return (Job("alarm_rate", tenants=tuple(tenants))
            .source("alarms", schema="alarm_event.v2", time="event_time",
                    required=("station_id", "datapoint_id"))
            .key_by("station_id", "datapoint_id")
            .window(window)
            .aggregate(**ALARM_RATE)
            .to_results("alarm_rate_result.v1"))


ALARM_RATE_TABLE = ResultTable("alarm_rate", "alarm_rate_result.v1",
                               partition_key=("tenant", "station_id", "datapoint_id"))
