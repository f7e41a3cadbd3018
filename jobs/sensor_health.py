"""Sensor health per tenant from heartbeats: `silent` and `recovered` events, and per-window health.

<tenant>.sensors.heartbeats (Avro heartbeat.v1) -> validate -> watermark -> per (tenant, sensor) a
session window with gap N, the tenant's silence minutes (the event-time timer, see operators/health.py)
-> `silent` / `recovered` events -> <tenant>.results.silence (keyed by sensor), and per tenant and
tumbling window -> <tenant>.results.health. Both sinks are exactly once and copied into Cassandra
(tables sensor_silence and sensor_health). Bad records -> <tenant>.deadletter, late ones -> <tenant>.late.
Silence events get a topic of their own because they are another record shape than the window
results (a consumer, or the Cassandra writer, reads one schema per topic) and are wanted as they happen.

Exact semantics, in event time (times in ms; a heartbeat counts only if valid and on time):
- `silent` at `at = h + N` when a sensor's heartbeat h is followed by none in (h, h + N]. It is emitted
  once the watermark reaches `at - 1 ms`, i.e. when a heartbeat of about `at + out-of-orderness` has
  been read on every partition (or a partition went idle). `last_heartbeat` is h.
- `recovered` at the sensor's first heartbeat after a `silent`, emitted once the watermark passes it;
  its `last_heartbeat` is the one before the silence. Events of one sensor alternate silent,
  recovered, silent, ...; the first heartbeat of a sensor is no `recovered`.
- One exception to "followed by none in (h, h + N]": a heartbeat at exactly h + N that arrives after
  the watermark reached h + N - 1 ms finds the session closed, so the sensor was reported silent at h + N
  and that heartbeat is its `recovered`.
- At the end of a bounded input the final watermark closes every session: every sensor gets a
  `silent` at its last heartbeat + N, as if nothing more came, and the windows holding those times
  are emitted. An unbounded job reports a silence only when the watermark passes it.

Health of tenant T in window [s, e) (health_result.v1), from T's heartbeats and silent events:
- heartbeats, reporting_sensors: heartbeats in [s, e), and the distinct sensors that sent them;
- known_sensors: sensors with a heartbeat before e;
- went_silent: `silent` events with s < at <= e (a silence that begins at e belongs to this window);
  recovered: `recovered` events with s <= at < e;
- silent_sensors: sensors that went silent at or before e and had not recovered before e; silent_share
  is silent_sensors / known_sensors;
- mean_interval_ms: over the heartbeats in [s, e) that have an earlier heartbeat of the same sensor,
  the mean of (heartbeat - that sensor's previous heartbeat in event-time order), silences included;
  null if there is none;
- lifespan of a sensor at e: its last heartbeat before e - its first heartbeat (frozen while silent);
  mean_lifespan_ms and max_lifespan_ms over the known sensors.
A window is reported for T only if it holds one of T's heartbeats or silent events; when a tenant's
sensors are all silent its windows stop until one returns, and the figures carry on from there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from operators.health import health_sql, heartbeats_sql, lifespans_sql, paired_sql, silence_events_sql, silences_sql
from operators.windows import Tumbling, tumbling
from pipeline.errors import JobError
from pipeline.job import TOPIC_TENANT_COLUMN, Job, ResultTable
from pipeline.sql import sql_string
from pipeline.stages import ResultSink, ResultStage

DEFAULT_WINDOW = tumbling(minutes=10)
DEFAULT_SILENCE_MINUTES = 10
PARAMETER = "silence_minutes"  # a tenant's N as a job parameter: silence_minutes.<tenant>
SilenceMinutes = Callable[[str], int]  # tenant -> minutes without a heartbeat that make a sensor silent

HEALTH_TABLE = ResultTable("sensor_health", "health_result.v1", partition_key=("tenant",), topic="health")
# `state` is part of the key: a silence and a recovery share `at` in the one case described above.
SILENCE_TABLE = ResultTable("sensor_silence", "sensor_silence.v1", partition_key=("tenant", "sensor_id"),
                            clustering=("at", "state"), topic="silence")
SENSOR_HEALTH_TABLES = (HEALTH_TABLE, SILENCE_TABLE)


def default_silence_minutes(tenant: str) -> int:
    """Every tenant's N until the metadata store supplies its own (pass another SilenceMinutes)."""
    return DEFAULT_SILENCE_MINUTES


@dataclass(frozen=True)
class SilenceAndHealth(ResultStage):
    """The job's results from its on-time heartbeats (pipeline.ResultStage): one session window per distinct
    N, silence events to <tenant>.results.silence and health windows to <tenant>.results.health."""

    window: Tumbling
    silence_minutes: tuple[tuple[str, int], ...]  # (tenant, minutes), fixed when the job is planned

    def views(self, job: Job, on_time: str) -> list[str]:
        """The on-time heartbeats of the tenants of each N, when the tenants do not all have the same N."""
        windows = _session_windows(dict(self.silence_minutes))
        return [] if len(windows) == 1 else [
            f"CREATE TEMPORARY VIEW `{_gap_view(on_time, gap)}` AS SELECT * FROM `{on_time}` WHERE "
            f"`{TOPIC_TENANT_COLUMN}` IN ({', '.join(sql_string(t) for t in tenants)})"
            for gap, tenants in windows]

    def sinks(self, job: Job, on_time: str) -> list[ResultSink]:
        """The silence events (keyed by sensor) and the health windows (keyed by tenant); each query selects
        its table's schema fields, then the tenant (over the views of views())."""
        minutes = dict(self.silence_minutes)
        windows = _session_windows(minutes)
        events = [heartbeats_sql(on_time, TOPIC_TENANT_COLUMN, "sensor_id", "rowtime")]
        events += [silences_sql(on_time if len(windows) == 1 else _gap_view(on_time, gap), TOPIC_TENANT_COLUMN,
                                "sensor_id", "rowtime", gap) for gap, _ in windows]
        paired = paired_sql(" UNION ALL ".join(f"({e})" for e in events))
        return [ResultSink(SILENCE_TABLE.topic, SILENCE_TABLE.schema, silence_events_sql(paired, minutes), "sensor_id"),
                ResultSink(HEALTH_TABLE.topic, HEALTH_TABLE.schema,
                           health_sql(lifespans_sql(paired), self.window, minutes), "tenant")]

    def parameters(self) -> dict[str, str]:
        """Each tenant's N (pipeline.ResultStage)."""
        return {f"{PARAMETER}.{tenant}": str(minutes) for tenant, minutes in self.silence_minutes}

    def restore_problem(self, parameters: Mapping[str, str]) -> str:
        """Why a savepoint of the job planned with the N of `parameters` does not fit this plan, or ''.

        Flink hands a savepoint's state to the operators in the same place of the new plan, and the session
        windows are placed by N (views, sinks). Unless the same tenants share a window, in the same order of N,
        a tenant's open sessions land in a window that no longer gets its heartbeats and end as false silences,
        or the plan's shape changes and Flink refuses the savepoint.
        """
        old = {key.removeprefix(f"{PARAMETER}."): int(value) for key, value in parameters.items()
               if key.startswith(f"{PARAMETER}.")}
        new = dict(self.silence_minutes)
        if [sorted(tenants) for _, tenants in _session_windows(old)] == \
                [sorted(tenants) for _, tenants in _session_windows(new)]:
            return ""
        changes = "; ".join(f"tenant {t}: {old.get(t, 'absent')} -> {new.get(t, 'absent')}"
                            for t in sorted(old.keys() | new.keys()) if old.get(t) != new.get(t))
        return (f"its silence minutes changed ({changes}) so that tenants move to other session windows: the "
                "savepoint's open sessions would stay behind and end as false silences. From a savepoint, N may "
                "change only where the same tenants keep sharing an N, in the same order of N (one tenant: any "
                "change); without --from-savepoint the sessions start afresh")


def _gap_view(on_time: str, minutes: int) -> str:
    return f"{on_time}_{minutes}min"


def _session_windows(minutes: Mapping[str, int]) -> list[tuple[int, list[str]]]:
    """The plan's session windows in their order: (N, its tenants), one per distinct N, by N."""
    groups: dict[int, list[str]] = defaultdict(list)
    for tenant, gap in minutes.items():
        groups[gap].append(tenant)
    return sorted(groups.items())


def sensor_health_job(tenants: Sequence[str], window: Tumbling = DEFAULT_WINDOW,
                      silence_minutes: SilenceMinutes = default_silence_minutes) -> Job:
    """The sensor health job of `tenants`; `silence_minutes` is asked once per tenant, now."""
    source = (Job("sensor_health", tenants=tuple(tenants))
              .source("heartbeats", schema="heartbeat.v1", time="event_time", required=("sensor_id",)))
    minutes = tuple((t, silence_minutes(t)) for t in source.tenants)
    for tenant, gap in minutes:
        if not isinstance(gap, int) or gap <= 0:
            raise JobError(f"job sensor_health: tenant {tenant}'s silence minutes must be a positive whole "
                             f"number, not {gap!r}")
    return source.results_from(SilenceAndHealth(window, minutes))
