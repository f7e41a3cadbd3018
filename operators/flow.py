"""Flow aggregates per parameter kind (water pipelines, ship power), rendered to Flink SQL.

A reading's kind (checked against its sensor's metadata) decides what its window reports:

| kind           | result fields set                                                            |
|----------------|------------------------------------------------------------------------------|
| additive       | sum                                                                          |
| non_additive   | mean, min, max                                                               |
| energy_counter | increase                                                                     |
| power (kW)     | mean (kW), energy_kwh = mean x window hours (0 for a window without readings) |

The other aggregate fields are NULL. Every row also has `readings` and `breaches` (readings outside the
limits of the sensor's element).

Energy counters. A sensor's accepted readings are taken in event-time order (ties in arrival order), and
each adds a step to the window its own event time falls in:
- the sensor's first reading: 0 (it is the baseline);
- a reading with the reset marker: its whole value (the counter restarted from zero; what was used
  between the previous reading and the reset is unknown and not counted);
- any other reading: its value minus the previous accepted value.
A reading below the previous accepted value without the reset marker is rejected ("counter went
backwards without reset") and does not move the baseline. Accepted values therefore only rise between
resets, so the previous accepted value is the running maximum of the sensor's readings since its last
reset: three event-time OVER aggregates in the JVM (resets so far, running maximum, the previous row's
running maximum), no Python per record. A window's increase is the sum of its steps.

Windows without readings. A power sensor known to the job gets a row (readings 0, energy_kwh 0, mean
NULL) for every window in which its tenant had results but it had no accepted reading: the tenant's
other sensors are the clock. A window in which none of the tenant's sensors sent an accepted reading
has no rows at all, since nothing tells the job that time passed for that tenant.

Metadata. The sensors (which exist, their element, kind and unit) are rendered into the SQL as CASE and IN
expressions when the job is planned, which suits the tens to hundreds of sensors of a tenant's job; a new
sensor takes a new plan (stop with a savepoint, resubmit). Element limits, tuned far more often, are
either planned the same way (`Limits`, from an asset file) or looked up by the running job in the metadata
store (`LiveLimits`: a lookup join against the `tenantstream-mongodb` table of our Flink jar, which re-reads
the tenants' elements every few seconds), so a changed limit applies to readings processed after the next
refresh, without a restart. A reading's breach is decided when it is processed, so after a restore from a
checkpoint, replayed readings are checked against the limits of that moment.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from operators.aggregates import Count, CountIf, Max, Mean, Min, Sum
from operators.conditions import Condition
from operators.validation import PROCESSING_TIME_COLUMN, Rule, sql_string
from operators.windows import Tumbling
from schemas.assets import Assets
from schemas.sql import table_ddl

if TYPE_CHECKING:
    from jobs.pipeline import Job

ADDITIVE, NON_ADDITIVE, ENERGY_COUNTER, POWER = "additive", "non_additive", "energy_counter", "power"
STEP = "step"  # a reading's contribution to its counter's increase; NULL for other kinds
MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class FlowSensor:
    """A sensor a flow job accepts readings from, and what its readings must say."""

    tenant: str
    sensor_id: str
    element_id: str
    kind: str
    unit: str


Bounds = tuple[float | None, float | None]  # (min, max); None is an open bound


BREACHED = "breached"  # the reading lies outside its element's limits


@dataclass(frozen=True)
class Limits:
    """Operating limits of elements, fixed when the job is planned: (tenant, element) -> (min, max)."""

    bounds: Mapping[tuple[str, str], Bounds]

    def flag_breaches(self, job: Job, readings: str, tenant_column: str) -> list[str]:
        return [f"CREATE TEMPORARY VIEW `{job.table(BREACHED)}` AS SELECT *, {self.breached(tenant_column).sql} "
                f"AS `{BREACHED}` FROM `{readings}`"]

    def breached(self, tenant_column: str) -> Condition:
        """True for a reading outside the limits of its element (`element_id` of the tenant in `tenant_column`)."""
        branches = []
        for (tenant, element), (low, high) in self.bounds.items():
            tests = [f"`value` {op} {_double(bound)}" for op, bound in (("<", low), (">", high)) if bound is not None]
            if tests:
                branches.append(f"WHEN `{tenant_column}` = {sql_string(tenant)} AND `element_id` = "
                                f"{sql_string(element)} THEN {' OR '.join(tests)}")
        return Condition("outside its element's limits",
                         f"CASE {' '.join(branches)} ELSE FALSE END" if branches else "FALSE")


@dataclass(frozen=True)
class LiveLimits:
    """Operating limits of elements as the metadata store holds them while the job runs, re-read every
    `refresh_s` seconds (a lookup join; see the module's docstring)."""

    uri: str
    database: str
    refresh_s: float = 10.0

    def flag_breaches(self, job: Job, readings: str, tenant_column: str) -> list[str]:
        limits = job.table("limits")
        options = {"connector": "tenantstream-mongodb", "uri": self.uri, "database": self.database,
                   "collection": "elements", "tenants": ";".join(job.tenants),
                   "refresh-interval": f"{int(self.refresh_s * 1000)} ms",
                   "fields.low": "limits.min", "fields.high": "limits.max"}
        columns = ["`tenant` STRING", "`id` STRING", "`low` DOUBLE", "`high` DOUBLE"]
        return [table_ddl(limits, columns, options),
                f"CREATE TEMPORARY VIEW `{job.table(BREACHED)}` AS SELECT r.*, "
                f"(r.`value` < l.`low` OR r.`value` > l.`high`) IS TRUE AS `{BREACHED}` FROM `{readings}` AS r "
                f"LEFT JOIN `{limits}` FOR SYSTEM_TIME AS OF r.`{PROCESSING_TIME_COLUMN}` AS l "
                f"ON l.`tenant` = r.`{tenant_column}` AND l.`id` = r.`element_id`"]


@dataclass(frozen=True)
class BreachFlags:
    """Before the window: each reading flagged `breached` by the limits of its element."""

    limits: Limits | LiveLimits
    tenant_column: str

    def views(self, job: Job, on_time: str) -> list[str]:
        return self.limits.flag_breaches(job, on_time, self.tenant_column)

    def window_input(self, job: Job) -> str:
        return job.table(BREACHED)

    def rejected(self, job: Job) -> list[tuple[str, Rule]]:
        return []


@dataclass(frozen=True)
class FlowMetadata:
    """What a flow job knows of its tenants' assets: the sensors it accepts and the elements' limits."""

    sensors: tuple[FlowSensor, ...]
    limits: Limits | LiveLimits

    def of_kind(self, kind: str) -> list[FlowSensor]:
        return [s for s in self.sensors if s.kind == kind]


def metadata_from_assets(assets: Assets, tenants: Collection[str]) -> FlowMetadata:
    """The flow metadata of `tenants` from asset records.

    The seam to the metadata store: an asset file gives these records, and so do MetadataStore.elements()
    and .sensors(), so a job fed from MongoDB builds `Assets` from the store and calls this.
    """
    return FlowMetadata(
        tuple(FlowSensor(s.tenant, s.id, s.element, s.kind, s.unit) for s in assets.sensors if s.tenant in tenants),
        Limits({(e.tenant, e.id): (e.limits.min, e.limits.max) for e in assets.elements
                if e.tenant in tenants and e.limits is not None}))


def flow_rules(metadata: FlowMetadata, topic_tenant: str) -> list[Rule]:
    """Why a reading is bad, beyond the pipeline's own rules; `topic_tenant` is the SQL of its topic's tenant."""
    return [
        Rule(f"NOT ({_known_sensor(metadata, topic_tenant)})",
             f"'unknown sensor: ' || `sensor_id` || ' is not a sensor of tenant ' || {topic_tenant}"),
        Rule(_per_sensor(metadata, topic_tenant, lambda s: f"`element_id` <> {sql_string(s.element_id)} OR `kind` <> "
                         f"{sql_string(s.kind)} OR `unit` <> {sql_string(s.unit)}", "FALSE"),
             "'sensor ' || `sensor_id` || ' is ' || " +
             _per_sensor(metadata, topic_tenant, lambda s: sql_string(f"{s.element_id} {s.kind} {s.unit}"), "''") +
             " || ' in the metadata, the record says ' || `element_id` || ' ' || `kind` || ' ' || `unit`"),
        Rule.because("`value` IS NULL", "missing value"),
        Rule("`value` - `value` <> 0", "'value is not a finite number: ' || CAST(`value` AS STRING)"),
        Rule(f"`kind` IN ({sql_string(POWER)}, {sql_string(ENERGY_COUNTER)}) AND `value` < 0",
             f"CASE WHEN `kind` = {sql_string(POWER)} THEN 'negative power: ' ELSE 'negative energy: ' END || "
             "CAST(`value` AS STRING) || ' ' || `unit`"),
    ]


def _known_sensor(metadata: FlowMetadata, topic_tenant: str) -> str:
    ids: dict[str, list[str]] = {}
    for s in metadata.sensors:
        ids.setdefault(s.tenant, []).append(sql_string(s.sensor_id))
    return " OR ".join(f"({topic_tenant} = {sql_string(t)} AND `sensor_id` IN ({', '.join(i)}))"
                       for t, i in ids.items()) or "FALSE"


def _per_sensor(metadata: FlowMetadata, topic_tenant: str, then: Callable[[FlowSensor], str], otherwise: str) -> str:
    """A CASE over the known sensors: `then(sensor)` for a reading of that sensor, else `otherwise`."""
    branches = " ".join(f"WHEN {topic_tenant} = {sql_string(s.tenant)} AND `sensor_id` = {sql_string(s.sensor_id)} "
                        f"THEN {then(s)}" for s in metadata.sensors)
    return f"CASE {branches} ELSE {otherwise} END" if branches else otherwise


def kind_is(*kinds: str) -> Condition:
    return Condition(f"kind {' or '.join(kinds)}", f"`kind` IN ({', '.join(sql_string(k) for k in kinds)})")


@dataclass(frozen=True)
class Energy:
    """Energy in kWh of power readings in kW: their mean times the window's hours."""

    power: Mean
    hours: float

    def sql(self) -> str:
        return f"{self.power.sql()} * {_double(self.hours)}"


def flow_aggregates(window: Tumbling) -> dict[str, object]:
    """The result fields of a window, each computed only for the kinds that report it (NULL otherwise)."""
    return {
        "readings": Count(),
        "breaches": CountIf(Condition("outside its element's limits", f"`{BREACHED}`")),
        "sum": Sum("value", where=kind_is(ADDITIVE)),
        "mean": Mean("value", where=kind_is(NON_ADDITIVE, POWER)),
        "min": Min("value", where=kind_is(NON_ADDITIVE)),
        "max": Max("value", where=kind_is(NON_ADDITIVE)),
        "increase": Sum(STEP, where=kind_is(ENERGY_COUNTER)),
        "energy_kwh": Energy(Mean("value", where=kind_is(POWER)), window.size_ms / MS_PER_HOUR),
    }


# What a power sensor's window without readings reports, field by field (typed: UNION ALL needs it).
EMPTY_POWER_WINDOW = {"readings": "CAST(0 AS BIGINT)", "breaches": "CAST(0 AS BIGINT)",
                      "energy_kwh": "CAST(0.0 AS DOUBLE)",
                      **{f: "CAST(NULL AS DOUBLE)" for f in ("sum", "mean", "min", "max", "increase")}}


@dataclass(frozen=True)
class CounterSteps:
    """Before the window: each energy-counter reading's step, in event-time order per sensor (see above).

    The window reads the on-time readings of other kinds and the accepted counter readings, with `step`.
    """

    tenant_column: str
    time_column: str

    def views(self, job: Job, on_time: str) -> list[str]:
        sensor = f"`{self.tenant_column}`, `sensor_id`"
        order = f"ORDER BY `{self.time_column}`"
        rows = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"  # ties one by one, as they arrived
        epochs, peaks, steps = (job.table(f"counter_{p}") for p in ("epochs", "peaks", "steps"))
        columns = (f"`{self.tenant_column}`, `sensor_id`, `element_id`, `kind`, `value`, `{BREACHED}`, "
                   f"`{self.time_column}`")
        step = ("CASE WHEN `reset` THEN `value` WHEN `previous_peak` IS NULL THEN CAST(0.0 AS DOUBLE) "
                "ELSE `value` - `previous_peak` END")
        return [
            f"CREATE TEMPORARY VIEW `{epochs}` AS SELECT *, SUM(CASE WHEN `reset` THEN 1 ELSE 0 END) OVER "
            f"(PARTITION BY {sensor} {order} {rows}) AS `epoch` FROM `{on_time}` WHERE {kind_is(ENERGY_COUNTER).sql}",
            f"CREATE TEMPORARY VIEW `{peaks}` AS SELECT *, MAX(`value`) OVER (PARTITION BY {sensor}, `epoch` {order} "
            f"{rows}) AS `peak` FROM `{epochs}`",
            # the previous row's peak: the lower of the last two peaks, which never fall within an epoch
            # (LAG would do, but gives rows of equal event time the wrong one)
            f"CREATE TEMPORARY VIEW `{steps}` AS SELECT *, CASE WHEN COUNT(*) OVER w = 2 THEN MIN(`peak`) OVER w "
            f"END AS `previous_peak` FROM `{peaks}` WINDOW w AS (PARTITION BY {sensor}, `epoch` {order} "
            "ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)",
            f"CREATE TEMPORARY VIEW `{self.window_input(job)}` AS "
            f"SELECT {columns}, CAST(NULL AS DOUBLE) AS `{STEP}` FROM `{on_time}` "
            f"WHERE NOT ({kind_is(ENERGY_COUNTER).sql}) "
            f"UNION ALL SELECT {columns}, {step} AS `{STEP}` FROM `{steps}` WHERE NOT ({BACKWARDS.rejects})",
        ]

    def window_input(self, job: Job) -> str:
        return job.table("window_input")

    def rejected(self, job: Job) -> list[tuple[str, Rule]]:
        return [(job.table("counter_steps"), BACKWARDS)]


BACKWARDS = Rule("`reset` IS NOT TRUE AND `previous_peak` IS NOT NULL AND `value` < `previous_peak`",
                 "'counter went backwards without reset: ' || CAST(`value` AS STRING) || ' after ' || "
                 "CAST(`previous_peak` AS STRING)")


@dataclass(frozen=True)
class ZeroEnergyWindows:
    """After the window: a row for each known power sensor without readings in a window its tenant has rows in."""

    sensors: tuple[FlowSensor, ...]  # the power sensors
    tenant_column: str

    def views(self, job: Job, windows: str) -> list[str]:
        if not self.sensors:
            return []
        times, clock = job.table("result_times"), job.table("clock")
        return [
            # a window's rows again as records at its last millisecond, to window them once more per tenant
            f"CREATE TEMPORARY VIEW `{times}` AS SELECT `{self.tenant_column}`, `sensor_id`, `kind`, "
            f"`window_time` AS `result_time` FROM `{windows}`",
            f"CREATE TEMPORARY VIEW `{clock}` AS SELECT `{self.tenant_column}`, window_start, window_end, window_time, "
            f"ARRAY_AGG(`sensor_id`) FILTER (WHERE {kind_is(POWER).sql}) AS `powered` "
            f"FROM {job.tumbling.tvf_sql(f'`{times}`', 'result_time')} "
            f"GROUP BY `{self.tenant_column}`, window_start, window_end, window_time",
        ]

    def rows(self, job: Job, windows: str) -> str:
        if not self.sensors:
            return f"SELECT * FROM `{windows}`"
        values = {self.tenant_column: f"c.`{self.tenant_column}`", "sensor_id": "p.`sensor_id`",
                  "element_id": "p.`element_id`", "kind": sql_string(POWER), "window_start": "c.window_start",
                  "window_end": "c.window_end", "window_time": "c.window_time", **EMPTY_POWER_WINDOW}
        columns = [self.tenant_column, *job.keys, "window_start", "window_end", "window_time",
                   *(name for name, _ in job.aggregates)]
        fill = ", ".join(f"{values[c]} AS `{c}`" for c in columns)
        return (f"SELECT * FROM `{windows}` UNION ALL SELECT {fill} FROM `{job.table('clock')}` AS c "
                f"CROSS JOIN UNNEST({self._sensors_of_tenant()}) AS p(`sensor_id`, `element_id`) "
                f"WHERE c.`powered` IS NULL OR NOT ARRAY_CONTAINS(c.`powered`, p.`sensor_id`)")

    def _sensors_of_tenant(self) -> str:
        """An array of (sensor, element) rows per tenant (strings cast, or Flink types the array CHAR(n))."""
        by_tenant: dict[str, list[str]] = {}
        for s in self.sensors:
            by_tenant.setdefault(s.tenant, []).append(
                f"ROW(CAST({sql_string(s.sensor_id)} AS STRING), CAST({sql_string(s.element_id)} AS STRING))")
        branches = " ".join(f"WHEN {sql_string(t)} THEN ARRAY[{', '.join(rows)}]" for t, rows in by_tenant.items())
        return f"CASE c.`{self.tenant_column}` {branches} END"


def _double(value: float) -> str:
    """A DOUBLE literal of exactly this value."""
    return f"CAST({float(value)!r} AS DOUBLE)"
