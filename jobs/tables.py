"""Every job's Cassandra result table by name: what `tenantstream query` can read.

A new job's ResultTable goes in RESULT_TABLES and is then queryable by its name.
"""

from __future__ import annotations

from jobs.alarm_rate import ALARM_RATE_TABLE
from jobs.flow_aggregates import FLOW_TABLE
from jobs.rollup import ROLLUP_TABLES
from jobs.sensor_health import SENSOR_HEALTH_TABLES
from pipeline.job import ResultTable

RESULT_TABLES: dict[str, ResultTable] = {table.name: table for table in
                                         (ALARM_RATE_TABLE, FLOW_TABLE, *SENSOR_HEALTH_TABLES, *ROLLUP_TABLES)}
