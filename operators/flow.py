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

Windows without readings. A power sensor of the metadata gets a row (readings 0, energy_kwh 0, mean
NULL) for every window in which its tenant had results but it had no accepted reading: the tenant's
other sensors are the clock. A window in which none of the tenant's sensors sent an accepted reading
has no rows at all, since nothing tells the job that time passed for that tenant.

Metadata. The running job looks each reading's sensor (does it exist, its element, kind and unit) and its
element's limits up, and each closed window's power sensors: lookup joins against tables of our Flink jar
that keep the documents in memory, so the plan has the same size for ten sensors or ten thousand. From
the metadata store (`LiveMetadata`: the `tenantstream-mongodb` table re-reads the tenants' sensors and
elements every few seconds), a new sensor or a changed limit applies to readings processed after the next
refresh, without a restart; from an asset file (`PlannedMetadata`: the `tenantstream-documents` table) the
metadata is fixed for the plan. A reading is checked when it is processed, so after a restore from a
checkpoint, replayed readings are checked against the metadata of that moment. A reading of an unknown
sensor is a dead letter only if it is on time; late, it goes to the late topic like any late reading.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from operators.aggregates import Count, CountIf, Max, Mean, Min, Sum
from operators.conditions import Condition
from operators.windows import Tumbling
from pipeline.sql import sql_string, table_ddl
from pipeline.stages import AfterWindow, Aggregate, BeforeWindow
from pipeline.validation import PROCESSING_TIME_COLUMN, Rule
from schemas.assets import Assets

if TYPE_CHECKING:
    from pipeline.job import Job

ADDITIVE, NON_ADDITIVE, ENERGY_COUNTER, POWER = "additive", "non_additive", "energy_counter", "power"
STEP = "step"  # a reading's contribution to its counter's increase; NULL for other kinds
MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class LiveMetadata:
    """The tenants' sensors and elements as the metadata store holds them while the job runs, re-read every
    `refresh_s` seconds (see the module's docstring)."""

    uri: str
    database: str
    refresh_s: float = 10.0

    def table_options(self, job: Job, collection: str) -> dict[str, str]:
        return {"connector": "tenantstream-mongodb", "uri": self.uri, "database": self.database,
                "collection": collection, "tenants": ";".join(job.tenants),
                "refresh-interval": f"{int(self.refresh_s * 1000)} ms"}


@dataclass(frozen=True)
class PlannedMetadata:
    """The tenants' sensors and elements fixed when the job is planned (e.g. from an asset file): the
    documents the metadata store would hold, per collection, carried in the plan."""

    documents: Mapping[str, tuple[Mapping[str, object], ...]]

    def table_options(self, job: Job, collection: str) -> dict[str, str]:
        return {"connector": "tenantstream-documents", "documents": json.dumps(self.documents[collection])}


Metadata = LiveMetadata | PlannedMetadata


def metadata_from_assets(assets: Assets, tenants: Collection[str]) -> PlannedMetadata:
    """The metadata of `tenants` in asset records (an asset file's, or the store's), fixed for the plan."""
    return PlannedMetadata({
        "sensors": tuple(s.document() for s in assets.sensors if s.tenant in tenants),
        "elements": tuple(e.document() for e in assets.elements if e.tenant in tenants)})


def _lookup_table(job: Job, metadata: Metadata, name: str, collection: str, columns: Mapping[str, str],
                  paths: Mapping[str, str] | None = None) -> str:
    """A lookup table of `collection`: column -> type; a column reads the document field of its name, or the
    dotted path `paths` gives it."""
    return table_ddl(job.table(name), [f"`{c}` {t}" for c, t in columns.items()],
                     {**metadata.table_options(job, collection),
                      **{f"fields.{c}": path for c, path in (paths or {}).items()}})


def _as_of_now(table: str, alias: str, reading: str = "r") -> str:
    """A lookup of `table` as it is when the reading `reading` is processed."""
    return f"`{table}` FOR SYSTEM_TIME AS OF {reading}.`{PROCESSING_TIME_COLUMN}` AS {alias}"


def sensor_rule(tenant_column: str) -> Rule:
    """Rejects a reading whose sensor the metadata does not know, or knows with another element, kind or unit
    (what the sensor lookup found is in the columns `known_element`, `known_kind`, `known_unit`).

    A CASE, so that NULLs (no such sensor, a document without a unit) reject rather than drop the reading.
    Not `IS DISTINCT FROM`: the planner may move the test into the lookup join, which refuses it."""
    return Rule("CASE WHEN `known_kind` IS NULL THEN TRUE WHEN `element_id` = `known_element` AND `kind` = "
                "`known_kind` AND `unit` = `known_unit` THEN FALSE ELSE TRUE END",
                f"CASE WHEN `known_kind` IS NULL THEN 'unknown sensor: ' || `sensor_id` || ' is not a sensor of "
                f"tenant ' || `{tenant_column}` ELSE 'sensor ' || `sensor_id` || ' is ' || CONCAT_WS(' ', "
                "`known_element`, `known_kind`, `known_unit`) || ' in the metadata, the record says ' || "
                "`element_id` || ' ' || `kind` || ' ' || `unit` END")


@dataclass(frozen=True)
class KnownSensors(BeforeWindow):
    """Before the window: only readings of a sensor of their topic's tenant whose element, kind and unit are
    those the metadata gives it; the others are dead letters with the reason."""

    metadata: Metadata
    tenant_column: str

    def views(self, job: Job, on_time: str) -> list[str]:
        sensors = job.table("sensors")
        return [
            _lookup_table(job, self.metadata, "sensors", "sensors",
                          {c: "STRING" for c in ("tenant", "id", "element", "kind", "unit")}),
            f"CREATE TEMPORARY VIEW `{job.table('sensor_checks')}` AS SELECT r.*, s.`element` AS `known_element`, "
            f"s.`kind` AS `known_kind`, s.`unit` AS `known_unit` FROM `{on_time}` AS r "
            f"LEFT JOIN {_as_of_now(sensors, 's')} ON s.`tenant` = r.`{self.tenant_column}` "
            "AND s.`id` = r.`sensor_id`",
            f"CREATE TEMPORARY VIEW `{self.window_input(job)}` AS SELECT * FROM `{job.table('sensor_checks')}` "
            f"WHERE NOT ({sensor_rule(self.tenant_column).rejects})",
        ]

    def window_input(self, job: Job) -> str:
        return job.table("known_sensors")

    def rejected(self, job: Job) -> list[tuple[str, Rule]]:
        return [(job.table("sensor_checks"), sensor_rule(self.tenant_column))]


BREACHED = "breached"  # the reading lies outside its element's limits


@dataclass(frozen=True)
class BreachFlags(BeforeWindow):
    """Before the window: each reading flagged `breached` by the limits of its element."""

    metadata: Metadata
    tenant_column: str

    def views(self, job: Job, readings: str) -> list[str]:
        limits = job.table("limits")
        return [_lookup_table(job, self.metadata, "limits", "elements",
                              {"tenant": "STRING", "id": "STRING", "low": "DOUBLE", "high": "DOUBLE"},
                              {"low": "limits.min", "high": "limits.max"}),
                f"CREATE TEMPORARY VIEW `{self.window_input(job)}` AS SELECT r.*, "
                f"(r.`value` < l.`low` OR r.`value` > l.`high`) IS TRUE AS `{BREACHED}` FROM `{readings}` AS r "
                f"LEFT JOIN {_as_of_now(limits, 'l')} ON l.`tenant` = r.`{self.tenant_column}` "
                "AND l.`id` = r.`element_id`"]

    def window_input(self, job: Job) -> str:
        return job.table(BREACHED)

    def rejected(self, job: Job) -> list[tuple[str, Rule]]:
        return []


def flow_rules() -> list[Rule]:
    """Why a reading is bad whatever its sensor, beyond the pipeline's own rules (which reject a value that is
    not a finite number)."""
    return [
        Rule.because("`value` IS NULL", "missing value"),
        Rule(f"`kind` IN ({sql_string(POWER)}, {sql_string(ENERGY_COUNTER)}) AND `value` < 0",
             f"CASE WHEN `kind` = {sql_string(POWER)} THEN 'negative power: ' ELSE 'negative energy: ' END || "
             "CAST(`value` AS STRING) || ' ' || `unit`"),
    ]


def kind_is(*kinds: str) -> Condition:
    return Condition(f"kind {' or '.join(kinds)}", f"`kind` IN ({', '.join(sql_string(k) for k in kinds)})")


@dataclass(frozen=True)
class Energy(Aggregate):
    """Energy in kWh of power readings in kW: their mean times the window's hours."""

    power: Mean
    hours: float
    sql_type = "DOUBLE"

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
class CounterSteps(BeforeWindow):
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
class ZeroEnergyWindows(AfterWindow):
    """After the window: a row for each power sensor of the metadata without readings in a window its tenant
    has rows in."""

    metadata: Metadata
    tenant_column: str

    def views(self, job: Job, windows: str) -> list[str]:
        times, clock = job.table("result_times"), job.table("clock")
        return [
            _lookup_table(job, self.metadata, "power_sensors", "sensors",
                          {c: "STRING" for c in ("tenant", "id", "element", "kind")}),
            # a window's rows again as records at its last millisecond, to window them once more per tenant
            f"CREATE TEMPORARY VIEW `{times}` AS SELECT `{self.tenant_column}`, `sensor_id`, `kind`, "
            f"`window_time` AS `result_time` FROM `{windows}`",
            f"CREATE TEMPORARY VIEW `{clock}` AS SELECT *, PROCTIME() AS `{PROCESSING_TIME_COLUMN}` FROM ("
            f"SELECT `{self.tenant_column}`, window_start, window_end, window_time, "
            f"ARRAY_AGG(`sensor_id`) FILTER (WHERE {kind_is(POWER).sql}) AS `powered` "
            f"FROM {job.tumbling.tvf_sql(f'`{times}`', 'result_time')} "
            f"GROUP BY `{self.tenant_column}`, window_start, window_end, window_time)",
        ]

    def rows(self, job: Job, windows: str) -> str:
        values = {self.tenant_column: f"c.`{self.tenant_column}`", "sensor_id": "p.`id`",
                  "element_id": "p.`element`", "kind": sql_string(POWER), "window_start": "c.window_start",
                  "window_end": "c.window_end", "window_time": "c.window_time", **EMPTY_POWER_WINDOW}
        columns = [self.tenant_column, *job.keys, "window_start", "window_end", "window_time",
                   *(name for name, _ in job.aggregates)]
        fill = ", ".join(f"{values[c]} AS `{c}`" for c in columns)
        return (f"SELECT * FROM `{windows}` UNION ALL SELECT {fill} FROM `{job.table('clock')}` AS c "
                f"JOIN {_as_of_now(job.table('power_sensors'), 'p', 'c')} ON p.`tenant` = c.`{self.tenant_column}` "
                f"AND p.`kind` = {sql_string(POWER)} "
                f"WHERE c.`powered` IS NULL OR NOT ARRAY_CONTAINS(c.`powered`, p.`id`)")


def _double(value: float) -> str:
    """A DOUBLE literal of exactly this value."""
    return f"CAST({float(value)!r} AS DOUBLE)"
