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

Jobs whose aggregates need more than a window of the on-time records add rules
(`validate`), views before the window (`before_window`, e.g. per-sensor state in
event-time order, which may reject records too) and rows after it
(`after_window`, e.g. for windows without data); see jobs/flow_aggregates.py.
A job whose results are no window of keyed aggregates computes them itself from
the on-time records (`results_from`), into as many results topics as it has
(`<tenant>.results.<topic>`); see jobs/sensor_health.py.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from connectors.credentials import Login
from connectors.flink import create_view, execute_sql
from connectors.kafka import exactly_once_sink_options, source_options
from connectors.kafka_access import authorize_job
from jobs.plan_check import check_plan
from operators.aggregates import quote
from operators.validation import (
    DECODE_ERROR_COLUMN,
    KAFKA_TIMESTAMP_COLUMN,
    PROCESSING_TIME_COLUMN,
    TEXT_FAULT,
    TRUSTED_EVENT_TIME,
    Rule,
    any_rejects,
    behind_append_time,
    finite,
    matches_tenant,
    missing,
    plain_text,
    rejection_reason,
    sql_string,
    timestamp_in_range,
    trusted_event_time,
    undecodable,
)
from operators.windows import Tumbling, interval_sql
from schemas.names import name_problem
from schemas.sql import flink_columns, table_ddl

FORMAT = "tenantstream-avro"
DEAD_LETTER_SCHEMA = "dead_letter.v1"


@dataclass(frozen=True)
class Topics:
    """The topics a job touches for one tenant; nothing else is named in its plan."""

    tenant: str
    job: str
    stream: str
    outputs: tuple[str, ...] = ()  # a job with results of its own (results_from): its results topics' names

    @property
    def source(self) -> str:
        return f"{self.tenant}.sensors.{self.stream}"

    @property
    def results(self) -> str:
        return f"{self.tenant}.results.{self.job}"

    def output(self, name: str) -> str:
        """`<tenant>.results.<name>`: one of the results topics of a job with results of its own."""
        return f"{self.tenant}.results.{name}"

    @property
    def deadletter(self) -> str:
        return f"{self.tenant}.deadletter"

    @property
    def late(self) -> str:
        return f"{self.tenant}.late"

    def all(self) -> list[str]:
        results = [self.output(name) for name in self.outputs] or [self.results]
        return [self.source, *results, self.deadletter, self.late]


# How far behind its Kafka append time a record's event time may be (jobs.pipeline.source_ddl): the most one
# tenant's clock can hold back the windows of the other tenants of its job.
DEFAULT_MAX_BEHIND_S = 15 * 60


@dataclass(frozen=True)
class RunSettings:
    """Where and how a job runs; the defaults suit the local stack."""

    bootstrap: str = "127.0.0.1:9092"
    out_of_orderness_s: int = 5
    max_behind_s: int = DEFAULT_MAX_BEHIND_S  # see DEFAULT_MAX_BEHIND_S
    group_id: str | None = None  # Kafka consumer group; default: tenantstream.<job>.<tenant+tenant...>
    stop_at: str = ""  # "", "latest" or "PARTITION:OFFSET,...": see connectors.kafka.source_options
    # "on-periodic" (fast) or "on-event": a watermark after every record, so which records are
    # late depends only on their order in the partition (what exact tests need)
    watermark_emit: str = "on-periodic"
    # The Kafka login the job's tables use: its own principal (see `authorized`); None on a broker without
    # authentication.
    kafka_login: Login | None = None


class BeforeWindow(Protocol):
    """Views between a job's on-time records and its window.

    Their rows keep the source's columns, so that rows they reject become dead letters like any other.
    """

    def views(self, job: Job, on_time: str) -> list[str]:
        """CREATE TEMPORARY VIEW statements over the view `on_time`."""
        ...

    def window_input(self, job: Job) -> str:
        """The view the window reads."""
        ...

    def rejected(self, job: Job) -> list[tuple[str, Rule]]:
        """(view, rule) pairs: the view's rows that the rule rejects go to the dead-letter topic."""
        ...


class AfterWindow(Protocol):
    """Rows a job adds to the rows of its window, e.g. for windows in which a key had no records."""

    def views(self, job: Job, windows: str) -> list[str]:
        """CREATE TEMPORARY VIEW statements over the view `windows` of the window's rows."""
        ...

    def rows(self, job: Job, windows: str) -> str:
        """A query of every result row (the window's and the added ones), with the window's columns."""
        ...


@dataclass(frozen=True)
class ResultSink:
    """A results topic `<tenant>.results.<topic>` of records of the Avro `schema` that `query` selects:
    the schema's fields, then the tenant (which picks the topic). `key` names a text field whose value
    becomes the Kafka record key; without it the records have none."""

    topic: str
    schema: str
    query: str
    key: str = ""


class ResultStage(Protocol):
    """Results a job computes itself from its on-time records, instead of a window of keyed aggregates."""

    def views(self, job: Job, on_time: str) -> list[str]:
        """CREATE TEMPORARY VIEW statements over the view `on_time`."""
        ...

    def sinks(self, job: Job, on_time: str) -> list[ResultSink]:
        """The job's results topics, each with the query of its records (over `on_time` and the views)."""
        ...

    def parameters(self) -> dict[str, str]:
        """What the plan was made with that decides where its state lives: recorded with the job on a cluster,
        to check a resubmit from its savepoint (restore_problem)."""
        ...

    def restore_problem(self, parameters: Mapping[str, str]) -> str:
        """Why the state of a job planned with `parameters` would not restore into the same operators of this
        plan, or ''."""
        ...


@dataclass(frozen=True)
class Job:
    """A windowed aggregate job over one sensor stream of one or more tenants (or one whose results a stage
    of its own computes: results_from)."""

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
    checks: tuple[Rule, ...] = ()
    before: tuple[BeforeWindow, ...] = ()
    after: AfterWindow | None = None
    stage: ResultStage | None = None
    max_behind_s: int = DEFAULT_MAX_BEHIND_S  # set from RunSettings when planned

    def __post_init__(self) -> None:
        object.__setattr__(self, "tenants", tuple(self.tenants))
        if not self.tenants:
            raise ValueError(f"job {self.name}: name at least one tenant")
        for tenant in self.tenants:
            if problem := name_problem(tenant):
                raise ValueError(f"job {self.name}: {problem}")

    def _with(self, **changes: object) -> Job:
        return dataclasses.replace(self, **changes)

    def source(self, stream: str, schema: str, time: str, required: Sequence[str] = ()) -> Job:
        """Read `<tenant>.sensors.<stream>`, records of Avro `schema`, event time in column `time`."""
        return self._with(stream=stream, event_schema=schema, time_column=time, required=tuple(required))

    def validate(self, *rules: Rule) -> Job:
        """Reject records by these rules too, after the source's own (first match gives the reason)."""
        return self._with(checks=rules)

    def before_window(self, *stages: BeforeWindow) -> Job:
        """Views between the on-time records and the window, each stage reading the one before it."""
        return self._with(before=stages)

    def after_window(self, stage: AfterWindow) -> Job:
        return self._with(after=stage)

    def results_from(self, stage: ResultStage) -> Job:
        """Results computed by `stage` (no key_by, window or aggregate), to the results topics it names."""
        return self._with(stage=stage)

    def result_sinks(self) -> list[ResultSink]:
        """The results topics of a job with results_from, and their queries; none for a windowed job."""
        return self.stage.sinks(self, self.table("on_time")) if self.stage else []

    def parameters(self) -> dict[str, str]:
        """What its stage was planned with (ResultStage.parameters); a windowed job's plan is its SQL alone."""
        return self.stage.parameters() if self.stage else {}

    def restore_problem(self, parameters: Mapping[str, str]) -> str:
        """Why the state of this job planned with `parameters` would not restore into this plan, or ''."""
        return self.stage.restore_problem(parameters) if self.stage else ""

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

    def table(self, part: str) -> str:
        """The name of a table or view of this job's plan."""
        return f"{self.name}__{part}"

    def topics(self, tenant: str) -> Topics:
        return Topics(tenant, self.name, self.stream, tuple(sink.topic for sink in self.result_sinks()))

    def transactional_prefix(self, sink: str) -> str:
        return f"tenantstream.{self.name}.{'+'.join(self.tenants)}.{sink}"

    def rules(self) -> list[Rule]:
        """The rules every job applies, in order (the first that rejects gives the reason), then its own. Every
        text field is plain and bounded (before the tenant rule, whose reason quotes the field) and every
        floating-point field finite, whichever fields the job uses."""
        types = {c.split(" ", 1)[0].strip("`"): c.split(" ", 1)[1] for c in flink_columns(self.event_schema)}
        return [undecodable(), *(missing(c) for c in self.required),
                *(plain_text(c) for c, t in types.items() if t == "STRING"),
                *(finite(c) for c, t in types.items() if t in ("DOUBLE", "FLOAT")),
                timestamp_in_range(self.time_column), behind_append_time(self.time_column, self.max_behind_s),
                matches_tenant("tenant", self.topic_tenant_sql()), *self.checks]

    def topic_tenant_sql(self) -> str:
        """The tenant of the topic a record was read from, as SQL: a constant for one tenant, else the topic's
        name without its suffix `.sensors.<stream>`, which every source topic has. (The planner inlines this
        wherever the tenant is used, so it is kept short: a CASE over the known topics made the generated code
        of every route several times longer, and slower to compile and to run; SUBSTRING cut a new string per
        record and use.)"""
        if len(self.tenants) == 1:
            return sql_string(self.tenants[0])
        return f"{TOPIC_TENANT}(`{TOPIC_COLUMN}`, {sql_string(self.topics('').source)})"


# Functions of our Flink jar (connectors/flink-format) that plans call: name -> Java class.
TOPIC_TENANT = "TOPIC_TENANT"
JVM_FUNCTIONS = {TRUSTED_EVENT_TIME: "tenantstream.flink.TrustedEventTime",
                 TOPIC_TENANT: "tenantstream.flink.TopicTenant",
                 TEXT_FAULT: "tenantstream.flink.TextFault"}

# The tenant a record belongs to is the one whose topic it was read from, never what the record says.
TOPIC_COLUMN = "kafka_topic"
TOPIC_TENANT_COLUMN = "topic_tenant"
SINK_TOPIC_COLUMN = "topic"
ROUTE_SUFFIX_COLUMN = "route_suffix"  # of a diverted record: the suffix of the topic it goes to


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
        raise ValueError(f"job {job.name} needs a source, key_by, window and aggregate (or results_from)")
    if settings.max_behind_s <= 0:
        raise ValueError(f"job {job.name}: the bound on how far event times may be behind their append times "
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


def authorized(job: Job, settings: RunSettings) -> RunSettings:
    """`settings` with the job's own Kafka principal, which may touch only its tenants' topics, its consumer
    group and its transactional ids (made with those ACLs on first use: connectors.kafka_access)."""
    if settings.kafka_login is not None:
        return settings
    login = authorize_job(settings.bootstrap, job.name, job.tenants, job.stream, settings.group_id or job.default_group,
                          job.transactional_prefix(""))
    return dataclasses.replace(settings, kafka_login=login)


def execute(job: Job, settings: RunSettings, env):
    """Plan `job`, check the plan (jobs.plan_check, else PlanRefused) and start it in the TableEnvironment `env`
    (local or remote): its TableResult. Every run passes here: `run`, `submit` and `tenant submit`."""
    # An OPTIONS hint rewrites a table's options, its topic too: the check refuses hints, and Flink with this
    # refuses any that got past it.
    env.get_config().set("table.dynamic-table-options.enabled", "false")
    ddl, inserts = plan(job, authorized(job, settings))
    ddl, inserts = check_plan(job, settings, ddl, inserts)
    # What several routes read (the source, a view) is planned as a block of its own and computed once per
    # record, not once per route: the source's computed columns (tenant, rejected, rowtime; bench: source
    # thread CPU -12%), and a view's lookup joins (see `declare`).
    env.get_config().set("table.optimizer.reuse-optimize-block-with-digest-enabled", "true")
    for statement in ddl:
        declare(env, statement)
    # One call that parses and plans the inserts, on a JVM thread that can plan (connectors.flink.execute_sql).
    return execute_sql(env, f"EXECUTE STATEMENT SET BEGIN {' '.join(f'{insert};' for insert in inserts)} END")


_VIEW = re.compile(r"CREATE TEMPORARY VIEW `(?P<name>[^`]+)` AS (?P<query>.*)", re.DOTALL)


def declare(env, statement: str) -> None:
    """Run a CREATE statement of a plan in the TableEnvironment `env`.

    A view is registered as the Table its query plans to, not as SQL text, so every reader of the view
    reads the same plan node. Text would be planned again for each reader, and a lookup join in it would
    become one lookup operator per reader, each with its own copy of the metadata, refreshed at its own
    moment: around a metadata change, one record could get two answers (say, a dead letter by one reader
    and a windowed reading by the other). As one node, each record gets one answer.
    """
    view = _VIEW.fullmatch(statement)
    if view:
        create_view(env, view["name"], view["query"])
    else:
        execute_sql(env, statement)


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
        raise ValueError(f"job {job.name}: result schema {job.result_schema} has fields the job does not "
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
