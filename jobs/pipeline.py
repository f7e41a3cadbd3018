"""A job declared in Python, planned as Flink SQL, run in the JVM.

    job = (Job("alarm_rate", tenants=["acme", "globex"])
           .source("alarms", schema="alarm_event.v2", time="event_time")
           .key_by("station_id", "datapoint_id")
           .window(tumbling(minutes=1))
           .aggregate(fires=CountIf(value_above_threshold), events=Count(), rate=Share(...))
           .to_results("alarm_rate_result.v1"))

The plan reads only the job's tenants' `<tenant>.sensors.<stream>` topics and
writes a record only to the `<tenant>.results.<job>`, `<tenant>.deadletter` or
`<tenant>.late` topic of the tenant whose topic it came from, through
exactly-once sinks. Invalid records go to the dead-letter topic with the reason;
records at or behind the watermark go to the late topic; the rest are windowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from connectors.kafka import exactly_once_sink_options, source_options, table_ddl
from operators.aggregates import quote
from operators.validation import (
    DECODE_ERROR_COLUMN,
    KAFKA_TIMESTAMP_COLUMN,
    Rule,
    any_rejects,
    matches_tenant,
    missing,
    rejection_reason,
    sql_string,
    timestamp_in_range,
    undecodable,
)
from operators.windows import Tumbling, seconds_sql
from schemas.sql import field_names, flink_columns

FORMAT = "tenantstream-avro"
DEAD_LETTER_SCHEMA = "dead_letter.v1"


@dataclass(frozen=True)
class Topics:
    """The topics a job touches for one tenant; nothing else is named in its plan."""

    tenant: str
    job: str
    stream: str

    @property
    def source(self) -> str:
        return f"{self.tenant}.sensors.{self.stream}"

    @property
    def results(self) -> str:
        return f"{self.tenant}.results.{self.job}"

    @property
    def deadletter(self) -> str:
        return f"{self.tenant}.deadletter"

    @property
    def late(self) -> str:
        return f"{self.tenant}.late"


@dataclass(frozen=True)
class RunSettings:
    """Where and how a job runs; the defaults suit the local stack."""

    bootstrap: str = "127.0.0.1:9092"
    out_of_orderness_s: int = 5
    group_id: str | None = None  # Kafka consumer group; default: tenantstream.<job>.<tenant+tenant...>
    stop_at: str = ""  # "", "latest" or "PARTITION:OFFSET,...": see connectors.kafka.source_options
    # "on-periodic" (fast) or "on-event": a watermark after every record, so which records are
    # late depends only on their order in the partition (what exact tests need)
    watermark_emit: str = "on-periodic"


@dataclass(frozen=True)
class Job:
    """A windowed aggregate job over one sensor stream of one or more tenants."""

    name: str
    tenants: tuple[str, ...]
    stream: str = ""
    event_schema: str = ""
    time_column: str = ""
    required: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    tumbling: Tumbling | None = None
    aggregates: tuple[tuple[str, object], ...] = ()
    result_schema: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tenants", tuple(self.tenants))
        if not self.tenants:
            raise ValueError(f"job {self.name}: name at least one tenant")
        for tenant in self.tenants:
            if not tenant.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"job {self.name}: tenant {tenant!r} must be letters, digits, '-' or '_'")

    def _with(self, **changes: object) -> Job:
        return dataclasses.replace(self, **changes)

    def source(self, stream: str, schema: str, time: str, required: Sequence[str] = ()) -> Job:
        """Read `<tenant>.sensors.<stream>`, records of Avro `schema`, event time in column `time`."""
        return self._with(stream=stream, event_schema=schema, time_column=time, required=tuple(required))

    def key_by(self, *columns: str) -> Job:
        return self._with(keys=columns)

    def window(self, window: Tumbling) -> Job:
        return self._with(tumbling=window)

    def aggregate(self, **aggregates: object) -> Job:
        return self._with(aggregates=tuple(aggregates.items()))

    def to_results(self, schema: str) -> Job:
        return self._with(result_schema=schema)

    @property
    def default_group(self) -> str:
        return f"tenantstream.{self.name}.{'+'.join(self.tenants)}"

    def topics(self, tenant: str) -> Topics:
        return Topics(tenant, self.name, self.stream)

    def transactional_prefix(self, sink: str) -> str:
        return f"tenantstream.{self.name}.{'+'.join(self.tenants)}.{sink}"

    def time_rules(self) -> list[Rule]:
        """The rules without which a record's event time cannot be trusted to move the watermark."""
        return [undecodable(), timestamp_in_range(self.time_column)]

    def rules(self) -> list[Rule]:
        undecodable_rule, time_rule = self.time_rules()
        return [undecodable_rule, *(missing(c) for c in self.required), time_rule,
                matches_tenant("tenant", TOPIC_TENANT)]

    def plan(self, settings: RunSettings) -> tuple[list[str], list[str]]:
        """See plan(): what a runner executes."""
        return plan(self, settings)


# The tenant a record belongs to is the one whose topic it was read from, never what the record says.
TOPIC_COLUMN = "kafka_topic"
TOPIC_TENANT_COLUMN = "topic_tenant"
TOPIC_TENANT = f"SPLIT_INDEX(`{TOPIC_COLUMN}`, '.', 0)"  # tenant names have no dots
SINK_TOPIC_COLUMN = "topic"


def plan(job: Job, settings: RunSettings) -> tuple[list[str], list[str]]:
    """The job as Flink SQL: (DDL statements, INSERT statements of one statement set).

    All tenants of a job share one pipeline: one source over their topics, one window operator, and
    one exactly-once sink per route that writes each record to its tenant's topic (the sink accepts
    only the topics it lists). They therefore share one watermark; give a tenant its own job to give
    it a clock of its own.
    """
    if not (job.stream and job.tumbling and job.aggregates and job.result_schema and job.keys):
        raise ValueError(f"job {job.name} needs a source, key_by, window, aggregate and to_results")
    ddl, inserts = source_statements(job, settings), []
    results = ("results", job.topics("").results, job.result_schema, results_query(job))
    for sink, topic_suffix, schema, query in (results, *diverted_sinks(job)):
        table, insert = sink_statements(job, sink, topic_suffix, schema, query, settings)
        ddl.append(table)
        inserts.append(insert)
    return ddl, inserts


def source_statements(job: Job, settings: RunSettings) -> list[str]:
    """DDL of the source over the job's tenants' topics and of the on-time view that windows read."""
    source = source_options(settings.bootstrap, ";".join(job.topics(t).source for t in job.tenants),
                            settings.group_id or job.default_group,
                            {"format": FORMAT, f"{FORMAT}.schema": job.event_schema}, stop_at=settings.stop_at)
    source["scan.watermark.emit.strategy"] = settings.watermark_emit
    return [source_ddl(job, kafka_source_columns(job), source, settings.out_of_orderness_s), *routing_views(job)]


def diverted_sinks(job: Job) -> list[tuple[str, str, str, str]]:
    """(sink, topic suffix, schema, query) of the dead-letter and late routes, for sink_statements."""
    suffixes = job.topics("")
    return [("deadletter", suffixes.deadletter, DEAD_LETTER_SCHEMA, diverted_query(job, "invalid")),
            ("late", suffixes.late, DEAD_LETTER_SCHEMA, diverted_query(job, "late"))]


def sink_statements(job: Job, sink: str, topic_suffix: str, schema: str, query: str, settings: RunSettings,
                    key: str | None = None) -> tuple[str, str]:
    """An exactly-once sink of `schema` records to `<tenant><topic_suffix>`, and the INSERT of `query`.

    `query` selects the schema's fields followed by the tenant column, which picks each record's topic.
    `key` names a field to use (as UTF-8 bytes) as the Kafka record key; without it records have none.
    """
    table = _table(job, sink)
    sink_topics = [f"{t}{topic_suffix}" for t in job.tenants]
    fields = ", ".join(quote(f) for f in field_names(schema))
    columns = flink_columns(schema)
    if len(sink_topics) > 1:  # the Kafka sink takes a topic per record only when it lists several
        columns.append(f"`{SINK_TOPIC_COLUMN}` STRING METADATA")
        fields += f", `{TOPIC_TENANT_COLUMN}` || {sql_string(topic_suffix)}"
    fmt = {"format": FORMAT, f"{FORMAT}.schema": schema} if key is None else {
        "key.format": "raw", "key.fields": key, "value.format": FORMAT, f"value.{FORMAT}.schema": schema}
    ddl = table_ddl(table, columns, exactly_once_sink_options(
        settings.bootstrap, ";".join(sink_topics), job.transactional_prefix(sink), fmt))
    return ddl, f"INSERT INTO `{table}` SELECT {fields} FROM ({query})"


def kafka_source_columns(job: Job) -> list[str]:
    """Physical columns of a Kafka source: the event's fields as decoded, plus where it came from."""
    return [
        *flink_columns(job.event_schema),
        f"`{DECODE_ERROR_COLUMN}` STRING",
        "`payload` BYTES",
        f"`{TOPIC_COLUMN}` STRING METADATA FROM 'topic' VIRTUAL",
        "`kafka_partition` INT METADATA FROM 'partition' VIRTUAL",
        "`kafka_offset` BIGINT METADATA FROM 'offset' VIRTUAL",
        f"`{KAFKA_TIMESTAMP_COLUMN}` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL",
    ]


def source_ddl(job: Job, columns: list[str], options: dict[str, str], out_of_orderness_s: int) -> str:
    """The source table: `columns`, the topic's tenant, the rejection reason, event time and watermark."""
    return table_ddl(_table(job, "source"), [
        *columns,
        f"`{TOPIC_TENANT_COLUMN}` AS {TOPIC_TENANT}",
        f"`rejection` AS {rejection_reason(job.rules())}",
        # Records without a trustworthy event time get time 0 so they never move the watermark.
        f"`rowtime` AS CASE WHEN {any_rejects(job.time_rules())} THEN TO_TIMESTAMP_LTZ(0, 3) "
        f"ELSE {quote(job.time_column)} END",
        f"WATERMARK FOR `rowtime` AS `rowtime` - {seconds_sql(out_of_orderness_s)}",
    ], options)


# Every record takes exactly one route. Each route is its own filter over the source (Flink SQL has
# no side outputs), written so that the cheap test comes first and the rules run only when needed.
# A record AT the watermark is late too: a watermark W promises no more records at or before W, and
# Flink's operators drop such a record without a word (a tumbling window that fired when W reached its
# last millisecond, and every OVER aggregate, were seen to).
ROUTES = {
    "invalid": "`rejection` IS NOT NULL",
    "late": "`rowtime` <= CURRENT_WATERMARK(`rowtime`) AND `rejection` IS NULL",
    "on_time": "`rejection` IS NULL AND (CURRENT_WATERMARK(`rowtime`) IS NULL "
               "OR `rowtime` > CURRENT_WATERMARK(`rowtime`))",
}


def routing_views(job: Job) -> list[str]:
    """The on-time view that the window reads: valid records after the watermark."""
    return [f"CREATE TEMPORARY VIEW `{on_time_view(job)}` AS "
            f"SELECT * FROM `{_table(job, 'source')}` WHERE {ROUTES['on_time']}"]


def on_time_view(job: Job) -> str:
    """The name of the view of valid on-time records (the source's columns, `rowtime` its time attribute)."""
    return _table(job, "on_time")


def results_query(job: Job) -> str:
    """The windowed aggregate of on-time records per tenant and key, shaped as the result schema,
    followed by the tenant (which picks the topic)."""
    keys = ", ".join(quote(k) for k in (TOPIC_TENANT_COLUMN, *job.keys))
    aggregates = ", ".join(f"{agg.sql()} AS {quote(name)}" for name, agg in job.aggregates)
    window = job.tumbling.tvf_sql(f"`{_table(job, 'on_time')}`", "rowtime")
    select = {"tenant": quote(TOPIC_TENANT_COLUMN), "window_start": "window_start", "window_end": "window_end",
              **{k: quote(k) for k in job.keys}, **{n: quote(n) for n, _ in job.aggregates}}
    result_fields = field_names(job.result_schema)
    missing_fields = [f for f in result_fields if f not in select]
    if missing_fields:
        raise ValueError(f"job {job.name}: result schema {job.result_schema} has fields the job does not "
                         f"compute: {', '.join(missing_fields)}")
    projection = ", ".join(f"{select[f]} AS {quote(f)}" for f in result_fields)
    return (f"SELECT {projection}, {quote(TOPIC_TENANT_COLUMN)} FROM (SELECT {keys}, window_start, window_end, "
            f"{aggregates} FROM {window} GROUP BY {keys}, window_start, window_end)")


LATE_REASON = ("'late: event time ' || CAST(`rowtime` AS STRING) || ' is not after the watermark ' || "
               "CAST(CURRENT_WATERMARK(`rowtime`) AS STRING)")


def diverted_query(job: Job, route: str) -> str:
    """Records of `route` ('invalid' or 'late') as dead-letter records with their reason, then the tenant."""
    reason = "`rejection`" if route == "invalid" else LATE_REASON
    return (f"SELECT `{TOPIC_TENANT_COLUMN}` AS `tenant`, `{TOPIC_COLUMN}` AS `source_topic`, "
            f"`kafka_partition` AS `partition`, `kafka_offset` AS `offset`, "
            f"`{KAFKA_TIMESTAMP_COLUMN}` AS `kafka_timestamp`, {reason} AS `reason`, `payload`, "
            f"`{TOPIC_TENANT_COLUMN}` FROM `{_table(job, 'source')}` WHERE {ROUTES[route]}")


def _table(job: Job, part: str) -> str:
    return f"{job.name}__{part}"
