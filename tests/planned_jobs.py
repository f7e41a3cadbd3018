"""The planned statements of every built-in job, the rollups and tenant apps, with fixed inputs (bootstrap,
login, tenants, names): what tests/unit/planned_statements.json records, so that a change to the planner that
changes a plan shows as a difference to the recording.

    python -m tests.planned_jobs   # rewrites tests/unit/planned_statements.json (only when a plan should change)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from jobs.alarm_rate import alarm_rate_job
from jobs.flow_aggregates import flow_aggregates_job
from jobs.rollup import ROLLUPS, Rollup, plan_rollups
from jobs.sensor_health import sensor_health_job
from operators.aggregates import Count, Max, Mean
from operators.flow import LiveMetadata, metadata_from_assets
from operators.periods import parse_period
from operators.windows import tumbling
from pipeline.job import Job, RunSettings
from pipeline.plan import plan
from pipeline.sql import Login
from submit.app_spec import build
from submit.simulate import flow_topology
from submit.tenant_apps import bound_stream

RECORDING = Path(__file__).parent / "unit" / "planned_statements.json"
TWO = ("acme", "globex")
THREE = ("acme", "globex", "initech")
# A job's own login as connectors.kafka_access makes it, with a fixed password (planning never checks it).
LOGIN = {"username": "job-fixed", "password": "f1xed" * 8}


def _settings() -> dict[str, RunSettings]:
    return {"default": RunSettings(),
            "bounded": RunSettings("10.0.0.7:9094,10.0.0.8:9094", stop_at="latest", kafka_login=Login(**LOGIN)),
            "offsets": RunSettings(group_id="bench.g1", stop_at="0:100,1:250", watermark_emit="on-event",
                                   out_of_orderness_s=2, max_behind_s=600, kafka_login=Login(**LOGIN))}


def app_job(tenants: tuple[str, ...] = ("acme",)) -> Job:
    """A tenant app's job as `tenant submit` plans it: the tenant's alarms, JSON results."""
    return (Job("app_peaks", tenants=tenants)
            .source("alarms", schema="alarm_event.v2", time="event_time", required=("station_id", "datapoint_id"))
            .key_by("station_id").window(tumbling(minutes=5))
            .aggregate(events=Count(), peak=Max("value"), mean_value=Mean("value")))


def spec_app_job() -> Job:
    """A tenant app's job as the trusted side builds it from the sandbox's spec (submit/app_spec.py), with
    conditions of negative numbers (a '-' next to another would begin a comment)."""
    value = {"column": "value"}
    below = {"cmp": "<", "left": value, "right": {"number": -0.5}}
    spec = {"stream": "alarms", "keys": ["station_id", "datapoint_id"], "window": {"size_ms": 300_000},
            "aggregates": [{"name": "events", "kind": "Count"},
                           {"name": "cold", "kind": "CountIf", "condition": below},
                           {"name": "share_odd", "kind": "Share", "condition": {"or": [
                               below, {"not": {"cmp": ">=", "left": value, "right": {"number": -12}}}]}},
                           {"name": "warm_sum", "kind": "Sum", "column": "value",
                            "where": {"cmp": ">", "left": value, "right": {"column": "valueThreshold"}}}]}
    return build(spec, bound_stream("acme", "odd"))


JOBS: dict[str, Callable[[], Job]] = {
    "alarm_rate one tenant": lambda: alarm_rate_job(["acme"]),
    "alarm_rate two tenants 5 min": lambda: alarm_rate_job(TWO, tumbling(minutes=5)),
    "flow planned metadata": lambda: flow_aggregates_job(TWO, metadata_from_assets(flow_topology(TWO), TWO)),
    "flow live metadata": lambda: flow_aggregates_job(THREE, LiveMetadata("mongodb://127.0.0.1:27017", "tenantstream",
                                                                          2.5), tumbling(minutes=5)),
    "health default": lambda: sensor_health_job(TWO),
    "health three N": lambda: sensor_health_job(THREE, silence_minutes=lambda t: {"acme": 5, "globex": 20}.get(t, 10)),
    "tenant app one tenant": app_job,
    "tenant app several tenants": lambda: app_job(THREE),
    "tenant app from its spec": spec_app_job,
}

ROLLUP_CASES: dict[str, Callable[[], list[Rollup]]] = {
    "rollup alarm_rate day and week": lambda: [
        Rollup(ROLLUPS["alarm_rate"], "acme", parse_period("day"), "Europe/Berlin"),
        Rollup(ROLLUPS["alarm_rate"], "acme", parse_period("week"), "Europe/Berlin", 1_700_000_000_000,
               1_800_000_000_000, ((("station_id", "s-1"), ("datapoint_id", "d'1")), (("station_id", "s-2"),)))],
    "rollup flow_aggregates month and 6h": lambda: [
        Rollup(ROLLUPS["flow_aggregates"], "globex", parse_period("month"), "America/New_York", None,
               1_800_000_000_000),
        Rollup(ROLLUPS["flow_aggregates"], "globex", parse_period("6h"), "America/New_York", 1_700_000_000_000)],
}


def planned_statements() -> dict[str, dict[str, list[str]]]:
    """Every case's plan under every setting: {case: {setting: [DDL..., INSERT...]}}."""
    settings = _settings()
    planned = {}
    for name, job in JOBS.items():
        planned[name] = {s: [statement for part in plan(job(), run) for statement in part]
                         for s, run in settings.items()}
    for name, rollups in ROLLUP_CASES.items():
        planned[name] = {s: [statement for part in plan_rollups(rollups(), run) for statement in part]
                         for s, run in settings.items()}
    return planned


if __name__ == "__main__":
    RECORDING.write_text(json.dumps(planned_statements(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {RECORDING}", file=sys.stderr)
