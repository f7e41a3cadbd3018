"""The built-in jobs by name: what `tenantstream run`, `submit`, `writer` and `alerts` work with, each with its
result tables and default window, so that no command repeats them.

Each is built for its tenants from the metadata store: the flow job looks its sensors and element limits up
in it while it runs (re-read every `refresh_s` seconds), the health job takes each
tenant's silence minutes (a window gap, fixed for the plan: a change takes a savepoint and a resubmit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from jobs.alarm_rate import ALARM_RATE_TABLE, alarm_rate_job
from jobs.alarm_rate import DEFAULT_WINDOW as ALARM_RATE_WINDOW
from jobs.flow_aggregates import DEFAULT_WINDOW as FLOW_WINDOW
from jobs.flow_aggregates import FLOW_TABLE, flow_aggregates_job
from jobs.sensor_health import DEFAULT_WINDOW as HEALTH_WINDOW
from jobs.sensor_health import SENSOR_HEALTH_TABLES, sensor_health_job
from operators.alerts import ALARM_RATE_ALERT, FLOW_BREACH_ALERT, AlertRule
from operators.flow import LiveMetadata
from operators.windows import Tumbling
from pipeline.job import Job, ResultTable
from schemas.assets import Assets

METADATA_REFRESH_S = 10.0  # how often a running job re-reads what it looks up in the metadata store


class MetadataSource(Protocol):
    """What a built-in job is built from in the metadata store (connectors.metadata.MetadataStore)."""

    uri: str

    @property
    def database(self) -> str:
        """The store's database name."""
        ...

    def assets(self, tenants: Sequence[str]) -> Assets:
        """The tenants' elements and sensors; LookupError for a tenant the store does not know."""
        ...

    def thresholds(self, tenant: str) -> dict[str, Any]:
        """The tenant's thresholds, e.g. {"tenant": {"silence_minutes": 10, ...}, ...}."""
        ...


@dataclass(frozen=True)
class BuiltInJob:
    """A built-in job as the commands know it: how to build it, where its results go, its default window."""

    name: str
    # (tenants, window (None: `window`), store, how often a running job re-reads what it looks up in the store, s)
    build: Callable[[Sequence[str], Tumbling | None, MetadataSource | None, float], Job]
    tables: tuple[ResultTable, ...]  # where its results writers put the rows in Cassandra
    window: Tumbling  # its window unless one is given
    summary: str  # what it computes, as the command line's help says it
    alert: AlertRule | None = None  # when one of its results raises an alert
    needs_metadata: bool = True  # planned with what the metadata store holds


def _alarm_rate(tenants: Sequence[str], window: Tumbling | None, _store: MetadataSource | None,
                _refresh_s: float) -> Job:
    return alarm_rate_job(tenants, window or ALARM_RATE_WINDOW)


def _flow(tenants: Sequence[str], window: Tumbling | None, store: MetadataSource, refresh_s: float) -> Job:
    store.assets(tenants)  # LookupError for a tenant the store does not know
    return flow_aggregates_job(tenants, LiveMetadata(store.uri, store.database, refresh_s), window or FLOW_WINDOW)


def _health(tenants: Sequence[str], window: Tumbling | None, store: MetadataSource, _refresh_s: float) -> Job:
    return sensor_health_job(tenants, window or HEALTH_WINDOW,
                             silence_minutes=lambda t: store.thresholds(t)["tenant"]["silence_minutes"])


BUILT_IN_JOBS: Mapping[str, BuiltInJob] = {job.name: job for job in (
    BuiltInJob("alarm_rate", _alarm_rate, (ALARM_RATE_TABLE,), ALARM_RATE_WINDOW,
               "alarm rate per station and datapoint", ALARM_RATE_ALERT, needs_metadata=False),
    BuiltInJob("flow_aggregates", _flow, (FLOW_TABLE,), FLOW_WINDOW, "the flow sensors' aggregates by kind",
               FLOW_BREACH_ALERT),
    BuiltInJob("sensor_health", _health, SENSOR_HEALTH_TABLES, HEALTH_WINDOW,
               "silent/recovered sensors from heartbeats, and per-window health"),
)}
