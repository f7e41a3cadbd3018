"""Rollups: a tenant's stream windows summed per day, ISO week, month or N hours of its local clock, by Flink
in batch execution mode.

<tenant>.results.<stream job> (bounded: what is committed when the job starts, read_committed, from the
earliest offset) -> the newest record of each (key, window) of the tenant -> windows that start in the range
-> period of the tenant's local calendar (operators/periods.py, `table.local-time-zone` = its zone) ->
sums per (key, period) (operators/rollups.py) -> <tenant>.results.<kind>_rollup (exactly once) -> Cassandra
(the results writer, as for every result table).

Why the results topic and not the Cassandra table: the topic holds every committed window (results topics
are kept without a time limit: connectors.kafka.topic_config sets retention.ms=-1 where they are created, and
the stack's broker keeps everything anyway), Flink's own Kafka connector reads it bounded in batch mode, and
the tenant's principal already may read it. Cassandra has no Flink 2.x connector; one in our jar would be a
second reader of the same rows to write and keep. The topic holds a window again when a stream job is run
again over the same events, so the rollup takes each window's newest record (by Kafka timestamp), as the
Cassandra upsert keeps the last write. The cost is reading the tenant's whole topic for any range (bench
--rollup, 2 loaded cores: a month of 1-minute windows of 100 keys, 4.32 M, took a 233 s job; a tenth 67 s).

Idempotent: a range is widened to whole periods (operators.periods.whole_periods), so a period's row is
always computed from all its windows, and a rerun writes the same rows again (the same Cassandra keys,
records with the same fields on the topic).

Tenant isolation: one rollup is one tenant's. It runs as its own Kafka principal (connectors.kafka_access.authorized),
which may read and write only that tenant's results topics; it reads only `<tenant>.results.<stream job>`,
keeps only records whose tenant field is the tenant, and writes only `<tenant>.results.<kind>_rollup`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jobs.alarm_rate import ALARM_RATE_TABLE
from jobs.flow_aggregates import FLOW_TABLE
from operators.periods import Period
from operators.rollups import ALARM_RATE_ROLLUP, FLOW_ROLLUP
from pipeline.errors import JobError
from pipeline.job import Job, ResultTable, RunSettings
from pipeline.sql import FORMAT, exactly_once_sink_options, quote, source_options, sql_string, table_ddl
from schemas.sql import field_names, flink_columns


class RollupError(JobError):
    """A rollup that cannot be made as asked (no results to roll up, a key the results do not have)."""


@dataclass(frozen=True)
class RollupKind:
    """What one kind of rollup reads (a stream job's results) and writes."""

    name: str  # as the command line names it: the stream job's result table
    stream_job: str  # whose results it rolls up: <tenant>.results.<stream_job>
    windows: ResultTable  # the stream job's result table: the records' schema
    keys: tuple[str, ...]  # what a row is per, besides the tenant and period
    schema: str  # Avro schema of the rollup records
    aggregates: Mapping[str, object]  # result field -> aggregate (operators/rollups.py)
    table: ResultTable  # where the results writer puts the rows

    def job(self, tenant: str) -> Job:
        """The rollup as a job of one tenant: its name gives the topics, consumer group, transactional ids and
        Kafka principal (no stream: its principal reads no sensor topic)."""
        return Job(f"{self.name}_rollup", tenants=(tenant,))

    def source_topic(self, tenant: str) -> str:
        return f"{tenant}.results.{self.stream_job}"


ALARM_RATE_ROLLUP_TABLE = ResultTable("alarm_rate_rollup", "alarm_rate_rollup.v1",
                                      partition_key=("tenant", "station_id", "datapoint_id", "period"))
FLOW_ROLLUP_TABLE = ResultTable("flow_aggregates_rollup", "flow_rollup.v1",
                                partition_key=("tenant", "sensor_id", "period"))
ROLLUPS: dict[str, RollupKind] = {
    "alarm_rate": RollupKind("alarm_rate", "alarm_rate", ALARM_RATE_TABLE, ("station_id", "datapoint_id"),
                             "alarm_rate_rollup.v1", ALARM_RATE_ROLLUP, ALARM_RATE_ROLLUP_TABLE),
    "flow_aggregates": RollupKind("flow_aggregates", "flow", FLOW_TABLE, ("sensor_id", "element_id", "kind"),
                                  "flow_rollup.v1", FLOW_ROLLUP, FLOW_ROLLUP_TABLE),
}
ROLLUP_TABLES = (ALARM_RATE_ROLLUP_TABLE, FLOW_ROLLUP_TABLE)


@dataclass(frozen=True)
class Rollup:
    """One rollup to make: a tenant's windows of one kind, per `period` of its time zone `zone`, for the
    windows that start in [start_ms, end_ms) (None: open), of the keys `only` names (none: every key)."""

    kind: RollupKind
    tenant: str
    period: Period
    zone: str
    start_ms: int | None = None
    end_ms: int | None = None
    # Key combinations, each (column, value) pairs of some of the kind's keys: a window counts if it matches
    # every pair of one of them.
    only: tuple[tuple[tuple[str, str], ...], ...] = ()

    def __post_init__(self) -> None:
        Job(self.kind.name, tenants=(self.tenant,))  # the tenant is a name (PipelineError otherwise)
        for combination in self.only:
            if not combination:
                raise RollupError(f"rollup {self.kind.name}: an empty key selection")
            for column, _ in combination:
                if column not in self.kind.keys:
                    raise RollupError(f"rollup {self.kind.name} has no key {column!r}; its keys are "
                                      f"{', '.join(self.kind.keys)}")

    def filter_sql(self) -> str:
        """Which window rows count: the tenant's own, in the range, of the keys asked for."""
        conditions = [f"`tenant` = {sql_string(self.tenant)}"]
        if self.start_ms is not None:
            conditions.append(f"`window_start` >= TO_TIMESTAMP_LTZ({self.start_ms}, 3)")
        if self.end_ms is not None:
            conditions.append(f"`window_start` < TO_TIMESTAMP_LTZ({self.end_ms}, 3)")
        if self.only:
            conditions.append("(" + " OR ".join(
                "(" + " AND ".join(f"{quote(column)} = {sql_string(value)}" for column, value in combination) + ")"
                for combination in self.only) + ")")
        return " AND ".join(conditions)

    def describe(self) -> str:
        keys = " or ".join(",".join(f"{c}={v}" for c, v in combination) for combination in self.only)
        return f"{self.kind.name} {self.period.label} rollup of {self.tenant} ({self.zone}){' ' + keys if keys else ''}"


# The Kafka record metadata that orders the copies of one window (newest first).
_ORDER_COLUMNS = ["`kafka_timestamp` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL",
                  "`kafka_partition` INT METADATA FROM 'partition' VIRTUAL",
                  "`kafka_offset` BIGINT METADATA FROM 'offset' VIRTUAL"]


def newest_windows_query(rollup: Rollup, source: str) -> str:
    """The newest record of each (key, window) of `source` that the rollup counts."""
    keys = ", ".join(quote(k) for k in (*rollup.kind.keys, "window_start"))
    return (f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY `kafka_timestamp` DESC, "
            f"`kafka_partition` DESC, `kafka_offset` DESC) AS `copy` FROM `{source}` WHERE {rollup.filter_sql()}) "
            "WHERE `copy` = 1")


def rollup_query(rollup: Rollup, windows: str) -> str:
    """The rollup records (the fields of its schema, in order) from the window rows of `windows`, in the
    session's local time zone, which must be the rollup's."""
    kind = rollup.kind
    keys = ", ".join(quote(k) for k in ("tenant", *kind.keys))
    select = {"tenant": "`tenant`", **{k: quote(k) for k in kind.keys}, "period": sql_string(rollup.period.label),
              "time_zone": sql_string(rollup.zone), "window_start": "`period_start`", "window_end": "`period_end`",
              **{name: aggregate.sql() for name, aggregate in kind.aggregates.items()}}
    projection = ", ".join(f"{select[f]} AS {quote(f)}" for f in field_names(kind.schema))
    return (f"SELECT {projection} FROM (SELECT *, {rollup.period.start_sql('`window_start`')} AS `period_start`, "
            f"{rollup.period.end_sql('`window_start`')} AS `period_end` FROM {windows}) "
            f"GROUP BY {keys}, `period_start`, `period_end`")


def plan_rollups(rollups: Sequence[Rollup], settings: RunSettings) -> tuple[list[str], list[str]]:
    """Rollups of one kind, tenant and time zone as Flink SQL of one job: (the source table, a view of the
    newest windows and a sink table per rollup; an INSERT per rollup). Every name in it is the tenant's or the
    job's; values enter as string literals (sql_string)."""
    first = rollups[0]
    if any((r.kind, r.tenant, r.zone) != (first.kind, first.tenant, first.zone) for r in rollups):
        raise RollupError("rollups planned together are of one kind, tenant and time zone")
    job = first.kind.job(first.tenant)
    source = source_options(settings.bootstrap, first.kind.source_topic(first.tenant),
                            settings.group_id or job.default_group,
                            {"format": FORMAT, f"{FORMAT}.schema": first.kind.windows.schema}, stop_at="latest",
                            login=settings.kafka_login)
    source["scan.startup.mode"] = "earliest-offset"  # the whole history every time, whatever a group committed
    windows = job.table("windows")
    ddl = [table_ddl(windows, [*flink_columns(first.kind.windows.schema), *_ORDER_COLUMNS], source)]
    inserts = []
    for i, rollup in enumerate(rollups):
        newest, results = job.table(f"newest_{i}"), job.table(f"results_{i}")
        sink = exactly_once_sink_options(settings.bootstrap, job.topics(first.tenant).results,
                                         job.transactional_prefix(f"results_{i}"),
                                         {"format": FORMAT, f"{FORMAT}.schema": first.kind.schema},
                                         settings.kafka_login)
        ddl += [f"CREATE TEMPORARY VIEW `{newest}` AS {newest_windows_query(rollup, windows)}",
                table_ddl(results, flink_columns(first.kind.schema), sink)]
        inserts.append(f"INSERT INTO `{results}` {rollup_query(rollup, f'`{newest}`')}")
    return ddl, inserts
