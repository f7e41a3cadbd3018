"""The baseline a Flink user would write by hand: one SQL statement, all in the JVM.

Same topics, same decoding format, same window and aggregate as the alarm-rate
job, but no validation, no dead-letter or late routing, one source over every
tenant's topic and one exactly-once sink.
"""

from __future__ import annotations

from connectors import credentials
from pipeline.sql import exactly_once_sink_options, source_options, table_ddl


def handwritten_alarm_rate(tenants: list[str], bootstrap: str, results_topic: str, group: str,
                           window_s: int = 60, out_of_orderness_s: int = 5, stop_at: str = "latest") -> list[str]:
    """DDL and the INSERT, in order; `stop_at` as in pipeline.sql.source_options ("" never stops). It logs in
    to Kafka as the operator's admin, as a hand-written job of one user would as that user."""
    admin = credentials.current().kafka_admin
    source = source_options(bootstrap, ";".join(f"{t}.sensors.alarms" for t in tenants), group,
                            {"format": "tenantstream-avro", "tenantstream-avro.schema": "alarm_event.v2"},
                            stop_at=stop_at, login=admin)
    sink = exactly_once_sink_options(bootstrap, results_topic, f"{group}.sink",
                                     {"format": "tenantstream-avro",
                                      "tenantstream-avro.schema": "alarm_rate_result.v1"}, admin)
    return [
        table_ddl("alarms", [
            "`tenant` STRING", "`station_id` STRING", "`datapoint_id` STRING", "`alarm_id` STRING",
            "`event_time` TIMESTAMP_LTZ(3)", "`value` DOUBLE", "`valueThreshold` DOUBLE", "`isActive` BOOLEAN",
            "`topic` STRING METADATA VIRTUAL",
            f"WATERMARK FOR `event_time` AS `event_time` - INTERVAL '{out_of_orderness_s}' SECOND"], source),
        table_ddl("results", [
            "`tenant` STRING", "`station_id` STRING", "`datapoint_id` STRING", "`window_start` TIMESTAMP(3)",
            "`window_end` TIMESTAMP(3)", "`fires` BIGINT", "`events` BIGINT", "`rate` DOUBLE"], sink),
        f"""INSERT INTO results
SELECT SPLIT_INDEX(`topic`, '.', 0), station_id, datapoint_id, window_start, window_end,
       COUNT(*) FILTER (WHERE `value` > valueThreshold AND valueThreshold <> 999999),
       COUNT(*),
       CAST(COUNT(*) FILTER (WHERE `value` > valueThreshold AND valueThreshold <> 999999) AS DOUBLE) / COUNT(*)
FROM TABLE(TUMBLE(TABLE alarms, DESCRIPTOR(event_time), INTERVAL '{window_s}' SECOND))
GROUP BY SPLIT_INDEX(`topic`, '.', 0), station_id, datapoint_id, window_start, window_end""",
    ]
