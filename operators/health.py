"""Sensor silence and health as Flink SQL: event-time "timers" without a Python function per event.

A sensor falls silent when it sends no heartbeat for N minutes. The timer is a SESSION window per
(tenant, sensor) with gap N: a heartbeat at h opens or extends a session to end at h + N, and the
session closes, once the watermark reaches its end, with no further heartbeat. Its end is the moment
of silence (`at`), its last heartbeat `at - N`. Session windows of Flink 2.2.1 merge sessions that
touch, so a heartbeat exactly N after the previous one keeps the sensor alive.

The closed sessions (as `silent` rows, at their window_time `at - 1 ms`) and the heartbeats form one
timeline per sensor, which an OVER window walks in event-time order: a heartbeat right after a `silent`
row is the sensor's `recovered`, right after nothing its first, and each heartbeat's predecessor gives
the interval and the lifespan. Deriving `recovered` from the silent rows themselves, not from the gap
between heartbeats, keeps the sequence silent, recovered, silent, ... even in the one case where the
session closes on a gap of exactly N: the watermark reached `at - 1 ms` before the touching heartbeat
arrived (that heartbeat is then not late, but its session is gone).

Flink 2.2.1 particulars met here, each checked in a local Flink:
- a view that holds a SESSION ... PARTITION BY fails validation when it is used ("Column 'sensor_id'
  not found in any table"), while the same SQL inline works, so these queries nest instead of naming
  views;
- TIMESTAMPDIFF(MILLISECOND, ...) drops the milliseconds, so durations come from epoch_ms();
- LAG may not take a ROWS frame, and a RANGE frame gives rows of equal time the same LAG (duplicate
  heartbeats would hide a sensor's first one), so the predecessor is the MIN over a two-row frame.
"""

from __future__ import annotations

from collections.abc import Mapping

from operators.windows import Tumbling
from pipeline.sql import interval_sql, sql_string

HEARTBEAT, SILENT = "heartbeat", "silent"


def epoch_ms(column: str) -> str:
    """Milliseconds since the epoch of a timestamp expression with milliseconds, as BIGINT (the session
    time zone is UTC, so a TIMESTAMP(3) such as a window's end reads as UTC)."""
    return f"(EXTRACT(EPOCH FROM {column}) * 1000 + EXTRACT(MILLISECOND FROM {column}))"


def minutes_by_tenant(minutes: Mapping[str, int], tenant_column: str) -> str:
    """A SQL expression: the silence minutes of the row's tenant."""
    cases = " ".join(f"WHEN {sql_string(t)} THEN {m}" for t, m in sorted(minutes.items()))
    return f"CASE {tenant_column} {cases} END"


def silences_sql(table: str, tenant: str, sensor: str, time: str, minutes: int) -> str:
    """Closed sessions of `table` as `silent` rows: (tenant, sensor_id, kind, at_ms, heartbeat_ms, t).

    `table` names a table or view with time attribute `time`; every row of it is a heartbeat of a
    tenant whose silence minutes are `minutes`. `t` is a time attribute (the session's end - 1 ms).
    """
    return (f"SELECT `{tenant}` AS `tenant`, `{sensor}` AS `sensor_id`, '{SILENT}' AS `kind`, "
            f"{epoch_ms('window_end')} AS `at_ms`, {epoch_ms(f'MAX(`{time}`)')} AS `heartbeat_ms`, "
            f"window_time AS `t` "
            f"FROM TABLE(SESSION(TABLE `{table}` PARTITION BY (`{tenant}`, `{sensor}`), DESCRIPTOR(`{time}`), "
            f"{interval_sql(minutes * 60_000)})) "
            f"GROUP BY `{tenant}`, `{sensor}`, window_start, window_end, window_time")


def heartbeats_sql(table: str, tenant: str, sensor: str, time: str) -> str:
    """The heartbeats of `table` as timeline rows, shaped as silences_sql's rows."""
    return (f"SELECT `{tenant}` AS `tenant`, `{sensor}` AS `sensor_id`, '{HEARTBEAT}' AS `kind`, "
            f"{epoch_ms(f'`{time}`')} AS `at_ms`, {epoch_ms(f'`{time}`')} AS `heartbeat_ms`, `{time}` AS `t` "
            f"FROM `{table}`")


def paired_sql(events: str) -> str:
    """Each timeline row of `events` with what its predecessor of the same sensor says.

    Adds `is_first` (a heartbeat with no predecessor), `is_recovery` (a heartbeat right after a silent
    row) and `previous_ms` (the previous heartbeat's time: a silent row carries its session's last one).
    """
    pair = "(PARTITION BY `tenant`, `sensor_id` ORDER BY `t` ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)"
    return (f"SELECT `tenant`, `sensor_id`, `kind`, `at_ms`, `heartbeat_ms`, `t`, "
            f"`kind` = '{HEARTBEAT}' AND `pair_rows` = 1 AS `is_first`, "
            f"`kind` = '{HEARTBEAT}' AND `pair_silent` = 1 AS `is_recovery`, "
            f"CASE WHEN `pair_rows` = 2 THEN `pair_min_ms` END AS `previous_ms` "
            f"FROM (SELECT *, COUNT(*) OVER w AS `pair_rows`, MIN(`heartbeat_ms`) OVER w AS `pair_min_ms`, "
            f"SUM(CASE WHEN `kind` = '{SILENT}' THEN 1 ELSE 0 END) OVER w AS `pair_silent` "
            f"FROM ({events}) WINDOW w AS {pair})")


def lifespans_sql(paired: str) -> str:
    """Rows of `paired` with `first_ms`, the sensor's first heartbeat."""
    return (f"SELECT *, MIN(`heartbeat_ms`) OVER (PARTITION BY `tenant`, `sensor_id` ORDER BY `t` "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS `first_ms` FROM ({paired})")


def silence_events_sql(paired: str, minutes: Mapping[str, int]) -> str:
    """`silent` and `recovered` events of `paired` as sensor_silence.v1 fields, then the tenant."""
    return (f"SELECT `tenant`, `sensor_id`, CASE WHEN `is_recovery` THEN 'recovered' ELSE '{SILENT}' END AS `state`, "
            f"TO_TIMESTAMP_LTZ(`at_ms`, 3) AS `at`, "
            f"TO_TIMESTAMP_LTZ(CASE WHEN `is_recovery` THEN `previous_ms` ELSE `heartbeat_ms` END, 3) "
            f"AS `last_heartbeat`, "
            f"{minutes_by_tenant(minutes, '`tenant`')} AS `silence_minutes`, `tenant` AS `topic_tenant` "
            f"FROM ({paired}) WHERE `kind` = '{SILENT}' OR `is_recovery`")


def health_sql(timeline: str, window: Tumbling, minutes: Mapping[str, int]) -> str:
    """Per tenant and tumbling window over the rows of `timeline` (lifespans_sql): health_result.v1
    fields, then the tenant. What carries over windows (known and silent sensors, lifespans) is a running
    sum or max per tenant over the windows' own figures."""
    heartbeat = f"`kind` = '{HEARTBEAT}'"
    per_window = (
        f"SELECT `tenant`, window_start, window_end, window_time, "
        f"COUNT(*) FILTER (WHERE {heartbeat}) AS `heartbeats`, "
        f"COUNT(DISTINCT `sensor_id`) FILTER (WHERE {heartbeat}) AS `reporting_sensors`, "
        f"COUNT(*) FILTER (WHERE `is_first`) AS `new_sensors`, "
        f"COUNT(*) FILTER (WHERE `kind` = '{SILENT}') AS `went_silent`, "
        f"COUNT(*) FILTER (WHERE `is_recovery`) AS `recovered`, "
        f"COALESCE(SUM(`heartbeat_ms` - `previous_ms`) FILTER (WHERE {heartbeat}), 0) AS `interval_sum`, "
        f"COUNT(`previous_ms`) FILTER (WHERE {heartbeat}) AS `intervals`, "
        f"MAX(`heartbeat_ms` - `first_ms`) FILTER (WHERE {heartbeat}) AS `max_lifespan` "
        f"FROM TABLE(TUMBLE(({timeline}), DESCRIPTOR(`t`), {window.interval_sql()})) "
        f"GROUP BY `tenant`, window_start, window_end, window_time")
    running = "(PARTITION BY `tenant` ORDER BY window_time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    return (
        f"SELECT `tenant`, window_start AS `window_start`, window_end AS `window_end`, "
        f"{minutes_by_tenant(minutes, '`tenant`')} AS `silence_minutes`, `heartbeats`, `reporting_sensors`, "
        f"`known` AS `known_sensors`, `silent` AS `silent_sensors`, "
        f"CAST(`silent` AS DOUBLE) / `known` AS `silent_share`, `went_silent`, `recovered`, "
        f"CASE WHEN `intervals` > 0 THEN CAST(`interval_sum` AS DOUBLE) / `intervals` END AS `mean_interval_ms`, "
        f"CAST(`lifespan_sum` AS DOUBLE) / `known` AS `mean_lifespan_ms`, `max_lifespan_ms`, "
        f"`tenant` AS `topic_tenant` "
        f"FROM (SELECT *, SUM(`new_sensors`) OVER r AS `known`, SUM(`went_silent` - `recovered`) OVER r AS `silent`, "
        f"SUM(`interval_sum`) OVER r AS `lifespan_sum`, MAX(`max_lifespan`) OVER r AS `max_lifespan_ms` "
        f"FROM ({per_window}) WINDOW r AS {running})")
