"""A job as Flink SQL: the statements of its plan, made from the job alone (pure: no server, no Flink).

The plan reads only the job's tenants' `<tenant>.sensors.<stream>` topics and
writes a record only to the `<tenant>.results.<job>`, `<tenant>.deadletter` or
`<tenant>.late` topic of the tenant whose topic it came from, through
exactly-once sinks. Invalid records go to the dead-letter topic with the reason;
records at or behind the watermark go to the late topic; the rest are windowed.
pipeline.execute checks a plan (pipeline.check) and hands it to Flink.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pipeline.errors import PipelineError
from pipeline.job import (
    ROUTE_SUFFIX_COLUMN,
    SINK_TOPIC_COLUMN,
    TOPIC_COLUMN,
    TOPIC_TENANT,
    TOPIC_TENANT_COLUMN,
    Job,
    RunSettings,
)
from pipeline.sql import FORMAT, exactly_once_sink_options, interval_sql, quote, source_options, sql_string, table_ddl
from pipeline.validation import (
    DECODE_ERROR_COLUMN,
    KAFKA_TIMESTAMP_COLUMN,
    PROCESSING_TIME_COLUMN,
    TEXT_FAULT,
    TRUSTED_EVENT_TIME,
    any_rejects,
    rejection_reason,
    trusted_event_time,
)
from schemas.sql import flink_columns

DEAD_LETTER_SCHEMA = "dead_letter.v1"

# Functions of our Flink jar (connectors/flink-format) that plans call: name -> Java class.
JVM_FUNCTIONS = {TRUSTED_EVENT_TIME: "tenantstream.flink.TrustedEventTime",
                 TOPIC_TENANT: "tenantstream.flink.TopicTenant",
                 TEXT_FAULT: "tenantstream.flink.TextFault"}


def plan(job: Job, settings: RunSettings) -> tuple[list[str], list[str]]:
    """The job as Flink SQL: (DDL statements, INSERT statements of one statement set).

    All tenants of a job share one pipeline: one source over their topics, one window operator, and
    exactly-once sinks that write each record to its tenant's topic (a sink accepts only the topics it
    lists): one per results topic, and one for the diverted records, which go to the tenant's dead-letter
    or late topic. They therefore share one watermark, which no tenant holds back by more than
    `settings.max_behind_s` (source_ddl). (One sink for both diverted kinds, not one each: every route is a
    filter over every record, and the third route made the job 1.6 times as costly per record as the window
    alone.)
    """
    if not job.stream or not (job.stage or (job.tumbling and job.aggregates and job.keys)):
        raise PipelineError(f"job {job.name} needs a source, key_by, window and aggregate (or results_from)")
    if settings.max_behind_s <= 0:
        raise PipelineError(f"job {job.name}: the bound on how far event times may be behind their append times "
                            f"must be positive, not {settings.max_behind_s} s")
    job = dataclasses.replace(job, max_behind_s=settings.max_behind_s)
    topics = [job.topics(t) for t in job.tenants]
    source = source_options(settings.bootstrap, ";".join(t.source for t in topics),
                            settings.group_id or job.default_group,
                            {"format": FORMAT, f"{FORMAT}.schema": job.event_schema}, stop_at=settings.stop_at,
                            login=settings.kafka_login)
    source["scan.watermark.emit.strategy"] = settings.watermark_emit
    ddl = [*jvm_functions_ddl(), source_ddl(job, kafka_source_columns(job), source, settings.out_of_orderness_s),
           *routing_views(job)]
    inserts = []
    suffixes = job.topics("")  # what follows the tenant in the name of each of its topics
    sinks = [_Sink(sink.topic, (suffixes.output(sink.topic),), _avro_shape(sink.schema, sink.key), sink.query)
             for sink in job.result_sinks()] or [_Sink("results", (suffixes.results,), result_shape(job),
                                                       results_query(job))]
    sinks.append(_Sink("diverted", (suffixes.deadletter, suffixes.late), _avro_shape(DEAD_LETTER_SCHEMA),
                       diverted_query(job), quote(ROUTE_SUFFIX_COLUMN)))
    for sink in sinks:
        table = job.table(sink.name)
        columns, fmt = sink.shape
        sink_topics = [f"{t}{suffix}" for t in job.tenants for suffix in sink.topic_suffixes]
        fields = ", ".join(c.split(" ", 1)[0] for c in columns)
        if len(sink_topics) > 1:  # the Kafka sink takes a topic per record only when it lists several
            columns.append(f"`{SINK_TOPIC_COLUMN}` STRING METADATA")
            fields += f", {quote(TOPIC_TENANT_COLUMN)} || {sink.suffix_sql or sql_string(sink.topic_suffixes[0])}"
        ddl.append(table_ddl(table, columns, exactly_once_sink_options(
            settings.bootstrap, ";".join(sink_topics), job.transactional_prefix(sink.name), fmt,
            settings.kafka_login)))
        inserts.append(f"INSERT INTO `{table}` SELECT {fields} FROM ({sink.query})")
    return ddl, inserts


@dataclass(frozen=True)
class _Sink:
    """An exactly-once Kafka sink of a plan: its records go to `<tenant><suffix>` for one of its suffixes,
    the one `suffix_sql` (a column of the query) names, or the only one."""

    name: str
    topic_suffixes: tuple[str, ...]
    shape: tuple[list[str], dict[str, str]]
    query: str
    suffix_sql: str = ""


def _avro_shape(schema: str, key: str = "") -> tuple[list[str], dict[str, str]]:
    """Columns and format of `schema` records; with `key`, that field's text (UTF-8) is the record key."""
    if key:
        return flink_columns(schema), {"key.format": "raw", "key.fields": key, "value.format": FORMAT,
                                       f"value.{FORMAT}.schema": schema}
    return flink_columns(schema), {"format": FORMAT, f"{FORMAT}.schema": schema}


def result_shape(job: Job) -> tuple[list[str], dict[str, str]]:
    """Columns and format of the results: the job's Avro result schema, or for a job without one
    (a tenant's app) JSON with the tenant, keys, window and aggregates."""
    if job.result_schema:
        return _avro_shape(job.result_schema)
    key_columns = {c.split(" ", 1)[0].strip("`"): c for c in flink_columns(job.event_schema)}
    return (["`tenant` STRING", *(key_columns[k] for k in job.keys), "`window_start` TIMESTAMP_LTZ(3)",
             "`window_end` TIMESTAMP_LTZ(3)", *(f"`{name}` {agg.sql_type}" for name, agg in job.aggregates)],
            {"format": "json", "json.timestamp-format.standard": "ISO-8601"})


def jvm_functions_ddl() -> list[str]:
    """The statements that register the functions of our Flink jar that plans call (JVM_FUNCTIONS)."""
    return [f"CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS {name} AS '{java_class}' LANGUAGE JAVA"
            for name, java_class in JVM_FUNCTIONS.items()]


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
    """The source table: `columns`, the topic's tenant, whether a rule rejects the record, event time and
    watermark. The routes test `rejected`; only the dead-letter route works out the reason.

    Every record, valid or not, counts for the watermark as at least its Kafka append time - job.max_behind_s:
    a record further behind is a dead letter (behind_append_time), so this floor never passes a valid record,
    while a partition whose event times stand still (or whose records are all bad) is still moved on by the
    broker's clock, and holds back the other partitions' windows by at most job.max_behind_s +
    out-of-orderness. The broker sets the append times of the sensor topics (connectors.kafka.ensure_topics),
    so a tenant cannot move them. The floor depends only on the record, not on when it is read, so a backlog
    or a replay after a restore is judged as it was live."""
    return table_ddl(job.table("source"), [
        *columns,
        f"`{TOPIC_TENANT_COLUMN}` AS {job.topic_tenant_sql()}",
        f"`rejected` AS ({any_rejects(job.rules())}) IS TRUE",  # as in the CASE: a NULL test rejects nothing
        # Records without a trustworthy event time (those that do not decode have none) get time 0, so they
        # never move the watermark; timestamp_in_range rejects them.
        f"`rowtime` AS {trusted_event_time(job.time_column)}",
        f"`{PROCESSING_TIME_COLUMN}` AS PROCTIME()",
        f"WATERMARK FOR `rowtime` AS GREATEST(`rowtime`, `{KAFKA_TIMESTAMP_COLUMN}` - "
        f"{interval_sql(job.max_behind_s * 1000)}) - {interval_sql(out_of_orderness_s * 1000)}",
    ], options)


# Every record takes exactly one route. Each route is its own filter over the source (Flink SQL has
# no side outputs), written so that the cheap test comes first and the rules run only when needed.
# A watermark W says no record at or before W is still to come, so a record AT the watermark is late:
# a window ending at W + 1 ms has fired and drops it, and an event-time OVER drops it, both silently.
ROUTES = {
    "invalid": "`rejected`",
    "late": "`rowtime` <= CURRENT_WATERMARK(`rowtime`) AND NOT `rejected`",
    "on_time": "NOT `rejected` AND (CURRENT_WATERMARK(`rowtime`) IS NULL "
               "OR `rowtime` > CURRENT_WATERMARK(`rowtime`))",
}


def routing_views(job: Job) -> list[str]:
    """The on-time view (valid records after the watermark), then the views the job adds around its window
    or for its own results."""
    on_time = job.table("on_time")
    views = [f"CREATE TEMPORARY VIEW `{on_time}` AS SELECT * FROM `{job.table('source')}` WHERE {ROUTES['on_time']}"]
    stage_input = on_time
    for stage in job.before:
        views += stage.views(job, stage_input)
        stage_input = stage.window_input(job)
    if job.stage:
        views += job.stage.views(job, on_time)
    if job.after:
        windows = job.table("windows")
        views += [f"CREATE TEMPORARY VIEW `{windows}` AS {window_query(job)}", *job.after.views(job, windows)]
    return views


def window_query(job: Job) -> str:
    """The windowed aggregate of on-time records per tenant and key, with the window's start, end and time."""
    keys = ", ".join(quote(k) for k in (TOPIC_TENANT_COLUMN, *job.keys))
    aggregates = ", ".join(f"{agg.sql()} AS {quote(name)}" for name, agg in job.aggregates)
    window_input = job.before[-1].window_input(job) if job.before else job.table("on_time")
    window = job.tumbling.tvf_sql(f"`{window_input}`", "rowtime")
    return (f"SELECT {keys}, window_start, window_end, window_time, {aggregates} FROM {window} "
            f"GROUP BY {keys}, window_start, window_end, window_time")


def results_query(job: Job) -> str:
    """The window's rows (and those the job adds after it) shaped as the result schema, followed by the
    tenant (which picks the topic)."""
    select = {"tenant": quote(TOPIC_TENANT_COLUMN), "window_start": "window_start", "window_end": "window_end",
              **{k: quote(k) for k in job.keys}, **{n: quote(n) for n, _ in job.aggregates}}
    result_fields = [c.split(" ", 1)[0].strip("`") for c in result_shape(job)[0]]
    missing_fields = [f for f in result_fields if f not in select]
    if missing_fields:
        raise PipelineError(f"job {job.name}: result schema {job.result_schema} has fields the job does not "
                         f"compute: {', '.join(missing_fields)}")
    projection = ", ".join(f"{select[f]} AS {quote(f)}" for f in result_fields)
    rows = job.after.rows(job, job.table("windows")) if job.after else window_query(job)
    return f"SELECT {projection}, {quote(TOPIC_TENANT_COLUMN)} FROM ({rows})"


LATE_REASON = ("'late: event time ' || CAST(`rowtime` AS STRING) || ' is not after the watermark ' || "
               "CAST(CURRENT_WATERMARK(`rowtime`) AS STRING)")


def diverted_query(job: Job) -> str:
    """Invalid and late records as dead-letter records with their reason, then the tenant and the suffix of the
    topic each goes to (`.deadletter` or `.late`).

    Invalid records are those the source's rules reject and those the views before the window reject. Both
    kinds come from one filter over the source, since each route costs a filter over every record.
    """
    deadletter, late = sql_string(job.topics("").deadletter), sql_string(job.topics("").late)
    from_source = _diverted(job.table("source"), f"{ROUTES['invalid']} OR {ROUTES['late']}",
                            f"CASE WHEN `rejected` THEN {rejection_reason(job.rules())} ELSE {LATE_REASON} END",
                            f"CASE WHEN `rejected` THEN {deadletter} ELSE {late} END")
    rejected = [pair for stage in job.before for pair in stage.rejected(job)]
    return " UNION ALL ".join([from_source, *(_diverted(view, rule.rejects, rule.reason, deadletter)
                                              for view, rule in rejected)])


def _diverted(table: str, condition: str, reason: str, suffix: str) -> str:
    return (f"SELECT `{TOPIC_TENANT_COLUMN}` AS `tenant`, `{TOPIC_COLUMN}` AS `source_topic`, "
            f"`kafka_partition` AS `partition`, `kafka_offset` AS `offset`, "
            f"`{KAFKA_TIMESTAMP_COLUMN}` AS `kafka_timestamp`, {reason} AS `reason`, `payload`, "
            f"`{TOPIC_TENANT_COLUMN}`, {suffix} AS `{ROUTE_SUFFIX_COLUMN}` FROM `{table}` WHERE {condition}")
