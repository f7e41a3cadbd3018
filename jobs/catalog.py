"""The built-in jobs by name: what `tenantstream submit`, `writer` and `alerts` work with.

Each is built for its tenants from the metadata store: the flow job looks its sensors and element limits up
in it while it runs (re-read every `refresh_s` seconds), the health job takes each
tenant's silence minutes (a window gap, fixed for the plan: a change takes a savepoint and a resubmit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from connectors.metadata import MetadataStore
from connectors.results import ResultTable
from jobs.alarm_rate import ALARM_RATE_TABLE, alarm_rate_job
from jobs.alarm_rate import DEFAULT_WINDOW as ALARM_RATE_WINDOW
from jobs.flow_aggregates import DEFAULT_WINDOW as FLOW_WINDOW
from jobs.flow_aggregates import FLOW_TABLE, flow_aggregates_job
from jobs.pipeline import Job
from jobs.sensor_health import DEFAULT_WINDOW as HEALTH_WINDOW
from jobs.sensor_health import SENSOR_HEALTH_TABLES, sensor_health_job
from operators.alerts import ALARM_RATE_ALERT, FLOW_BREACH_ALERT, AlertRule
from operators.flow import LiveMetadata
from operators.windows import Tumbling

METADATA_REFRESH_S = 10.0  # how often a running job re-reads what it looks up in the metadata store


@dataclass(frozen=True)
class BuiltInJob:
    # (tenants, window, store, how often a running job re-reads what it looks up in the store, seconds)
    build: Callable[[Sequence[str], Tumbling | None, MetadataStore | None, float], Job]
    tables: tuple[ResultTable, ...]  # where its results writers put the rows in Cassandra
    alert: AlertRule | None = None  # when one of its results raises an alert
    needs_metadata: bool = True  # planned with what the metadata store holds


def _flow(tenants: Sequence[str], window: Tumbling | None, store: MetadataStore, refresh_s: float) -> Job:
    store.assets(tenants)  # LookupError for a tenant the store does not know
    return flow_aggregates_job(tenants, LiveMetadata(store.uri, store.db.name, refresh_s), window or FLOW_WINDOW)


def _health(tenants: Sequence[str], window: Tumbling | None, store: MetadataStore, _refresh_s: float) -> Job:
    return sensor_health_job(tenants, window or HEALTH_WINDOW,
                             silence_minutes=lambda t: store.thresholds(t)["tenant"]["silence_minutes"])


BUILT_IN_JOBS: dict[str, BuiltInJob] = {
    "alarm_rate": BuiltInJob(lambda tenants, window, _store, _refresh_s: alarm_rate_job(tenants,
                                                                                       window or ALARM_RATE_WINDOW),
                             (ALARM_RATE_TABLE,), ALARM_RATE_ALERT, needs_metadata=False),
    "flow_aggregates": BuiltInJob(_flow, (FLOW_TABLE,), FLOW_BREACH_ALERT),
    "sensor_health": BuiltInJob(_health, SENSOR_HEALTH_TABLES),
}
