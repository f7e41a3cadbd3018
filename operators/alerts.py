"""When a window's result raises an alert: its metric passed the tenant's configured threshold.

Plain functions over one result record and the tenant's current settings, so the rule is tested
without Kafka or MongoDB; connectors/alerts.py applies them to a job's committed results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class AlertRule:
    job: str  # the job whose results it watches
    metric: str  # what is compared, named in the alert
    setting: str  # the tenant setting (operators: schemas/assets.py Tenant) it is compared with
    keys: tuple[str, ...]  # the result's key columns
    value: Callable[[Mapping], float]


ALARM_RATE_ALERT = AlertRule("alarm_rate", "rate", "alarm_rate_threshold", ("station_id", "datapoint_id"),
                             lambda result: result["rate"])
# The share of a sensor's readings in the window outside its element's limits (a window without
# readings, a power sensor's zero-energy row, breaches nothing).
FLOW_BREACH_ALERT = AlertRule("flow", "breach_share", "flow_breach_threshold", ("sensor_id",),
                              lambda result: result["breaches"] / result["readings"] if result["readings"] else 0.0)


def alert_for(rule: AlertRule, result: Mapping, settings: Mapping[str, float]) -> dict | None:
    """The alert record for `result`, or None when its metric does not pass the tenant's threshold
    (or the tenant has no such setting)."""
    threshold = settings.get(rule.setting)
    if threshold is None:
        return None
    value = rule.value(result)
    if not value > threshold:
        return None
    return {"tenant": result["tenant"], "job": rule.job, "key": "/".join(str(result[k]) for k in rule.keys),
            "window_start": result["window_start"], "window_end": result["window_end"], "metric": rule.metric,
            "value": float(value), "threshold": float(threshold)}
