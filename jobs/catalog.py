"""The built-in jobs by name: what `tenantstream run` and `tenantstream submit` can start."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from connectors.results import ResultTable
from jobs.alarm_rate import ALARM_RATE_TABLE, DEFAULT_WINDOW, alarm_rate_job
from jobs.pipeline import Job
from operators.alerts import ALARM_RATE_ALERT, AlertRule
from operators.windows import Tumbling


@dataclass(frozen=True)
class BuiltInJob:
    build: Callable[[Sequence[str], Tumbling], Job]  # (tenants, window) -> the job
    table: ResultTable  # where its results writer puts the rows in Cassandra
    window: Tumbling  # the default window
    alert: AlertRule | None = None  # when one of its results raises an alert


BUILT_IN_JOBS: dict[str, BuiltInJob] = {
    "alarm_rate": BuiltInJob(alarm_rate_job, ALARM_RATE_TABLE, DEFAULT_WINDOW, ALARM_RATE_ALERT),
}
