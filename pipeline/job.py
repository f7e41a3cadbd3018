"""A job declared in Python: what it reads, how it windows and aggregates, where its results go.

    job = (Job("alarm_rate", tenants=["acme", "globex"])
           .source("alarms", schema="alarm_event.v2", time="event_time")
           .key_by("station_id", "datapoint_id")
           .window(tumbling(minutes=1))
           .aggregate(fires=CountIf(value_above_threshold), events=Count(), rate=Share(...))
           .to_results("alarm_rate_result.v1"))

A Job is immutable: each builder call returns a new one. The calls check their contract where they are made:
a part that is not of its kind (pipeline/stages.py), a name that clashes with a result column, or a call that
needs one not made yet fails at that call with a PipelineError saying what is missing.

Jobs whose aggregates need more than a window of the on-time records add rules (`validate`), views before the
window (`before_window`, e.g. per-sensor state in event-time order, which may reject records too) and rows
after it (`after_window`, e.g. for windows without data); see jobs/flow_aggregates.py. A job whose results are
no window of keyed aggregates computes them itself from the on-time records (`results_from`), into as many
results topics as it has (`<tenant>.results.<topic>`); see jobs/sensor_health.py. pipeline.plan makes the Flink
SQL of a job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.errors import PipelineError
from pipeline.sql import WATERMARK_EMITS, Login, WatermarkEmit, sql_string, stop_kind
from pipeline.stages import AfterWindow, Aggregate, BeforeWindow, ResultSink, ResultStage, Window
from pipeline.validation import (
    Rule,
    behind_append_time,
    finite,
    matches_tenant,
    missing,
    plain_text,
    timestamp_in_range,
    undecodable,
)
from schemas import codec
from schemas.names import name_problem
from schemas.sql import flink_columns


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
        """`<tenant>.results.<job>`: the results topic of a windowed job."""
        return self.output(self.job)

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


# How far behind its Kafka append time a record's event time may be (pipeline.plan.source_ddl): the most one
# tenant's clock can hold back the windows of the other tenants of its job.
DEFAULT_MAX_BEHIND_S = 15 * 60


@dataclass(frozen=True)
class RunSettings:
    """Where and how a job runs; the defaults suit the local stack."""

    bootstrap: str = "127.0.0.1:9092"
    out_of_orderness_s: int = 5
    max_behind_s: int = DEFAULT_MAX_BEHIND_S  # see DEFAULT_MAX_BEHIND_S
    group_id: str | None = None  # Kafka consumer group; default: tenantstream.<job>.<tenant+tenant...>
    stop_at: str = ""  # "", "latest" or "PARTITION:OFFSET,...": see pipeline.sql.stop_kind
    watermark_emit: WatermarkEmit = "on-periodic"  # see pipeline.sql.WatermarkEmit
    # The Kafka login the job's tables use: its own principal (connectors.kafka_access.authorized); None on a
    # broker without authentication.
    kafka_login: Login | None = None

    def __post_init__(self) -> None:
        if self.watermark_emit not in WATERMARK_EMITS:
            raise PipelineError(f"watermark emission {self.watermark_emit!r} is none of {', '.join(WATERMARK_EMITS)}")
        stop_kind(self.stop_at)


_CQL_TYPES = {"string": "text", "long": "bigint", "int": "int", "double": "double", "boolean": "boolean",
              "bytes": "blob", "timestamp-millis": "timestamp"}


@dataclass(frozen=True)
class ResultTable:
    """Where a job's results are kept in Cassandra, declared: one row per (tenant, keys, window_start). The
    results writer (connectors/results.py) makes the table and fills it."""

    name: str
    schema: str  # Avro schema of the result records
    partition_key: tuple[str, ...]
    clustering: tuple[str, ...] = ("window_start",)
    # Its rows come from `<tenant>.results.<topic>`, for a job with several results topics; from the
    # job's one results topic `<tenant>.results.<job>` when empty.
    topic: str = ""

    @property
    def primary_key(self) -> tuple[str, ...]:
        """Every primary-key column, the partition key's first."""
        return (*self.partition_key, *self.clustering)

    def columns(self) -> list[tuple[str, str]]:
        """(name, CQL type) of every field of the schema, in order."""
        return [(f["name"], _CQL_TYPES[_avro_kind(f["type"])]) for f in codec.schema(self.schema).parsed["fields"]]


def _avro_kind(avro_type: object) -> str:
    """The primitive or logical type of an Avro field type; a nullable field's ["null", T] is T."""
    if isinstance(avro_type, list):
        (branch,) = [t for t in avro_type if t != "null"]
        return _avro_kind(branch)
    if isinstance(avro_type, dict):
        return avro_type.get("logicalType") or avro_type["type"]
    return avro_type


# Functions of our Flink jar that plans call by name (pipeline.plan.JVM_FUNCTIONS).
TOPIC_TENANT = "TOPIC_TENANT"
# The tenant a record belongs to is the one whose topic it was read from, never what the record says.
TOPIC_COLUMN = "kafka_topic"
TOPIC_TENANT_COLUMN = "topic_tenant"
SINK_TOPIC_COLUMN = "topic"
ROUTE_SUFFIX_COLUMN = "route_suffix"  # of a diverted record: the suffix of the topic it goes to
# The columns the plan's window and result queries have besides the keys and the aggregates: no key or aggregate
# may be named so.
RESULT_COLUMNS = ("tenant", "window_start", "window_end", "window_time", TOPIC_TENANT_COLUMN, SINK_TOPIC_COLUMN,
                  ROUTE_SUFFIX_COLUMN)


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
    tumbling: Window | None = None
    aggregates: tuple[tuple[str, Aggregate], ...] = ()
    result_schema: str = ""
    checks: tuple[Rule, ...] = ()
    before: tuple[BeforeWindow, ...] = ()
    after: AfterWindow | None = None
    stage: ResultStage | None = None
    max_behind_s: int = DEFAULT_MAX_BEHIND_S  # set from RunSettings when planned

    def __post_init__(self) -> None:
        object.__setattr__(self, "tenants", tuple(self.tenants))
        if not self.tenants:
            raise PipelineError(f"job {self.name}: name at least one tenant")
        for tenant in self.tenants:
            if problem := name_problem(tenant):
                raise PipelineError(f"job {self.name}: {problem}")

    def _with(self, **changes: object) -> Job:
        return dataclasses.replace(self, **changes)

    def _needs(self, call: str, *parts: str) -> None:
        """Refuse `call` unless the builder calls that give `parts` were made, naming those missing."""
        given = {"source(...)": bool(self.stream), "key_by(...)": bool(self.keys),
                 "window(...)": self.tumbling is not None}
        if absent := [part for part in parts if not given[part]]:
            raise PipelineError(f"job {self.name}: {call} needs {' and '.join(absent)} first")

    def _windowed(self, call: str) -> None:
        """Refuse `call`, a part of a window of keyed aggregates, on a job with results of its own."""
        if self.stage is not None:
            raise PipelineError(f"job {self.name}: {call} on a job whose results come from results_from(...); "
                                "a job has either a window of keyed aggregates or results of its own")

    def source(self, stream: str, schema: str, time: str, required: Sequence[str] = ()) -> Job:
        """Read `<tenant>.sensors.<stream>`, records of Avro `schema`, event time in column `time`."""
        return self._with(stream=stream, event_schema=schema, time_column=time, required=tuple(required))

    def validate(self, *rules: Rule) -> Job:
        """Reject records by these rules too, after the source's own and those of earlier validate calls (first
        match gives the reason)."""
        self._needs("validate(...)", "source(...)")
        if strangers := [r for r in rules if not isinstance(r, Rule)]:
            raise PipelineError(f"job {self.name}: validate(...) takes Rules, not {strangers[0]!r}")
        return self._with(checks=(*self.checks, *rules))

    def before_window(self, *stages: BeforeWindow) -> Job:
        """Views between the on-time records and the window, each stage reading the one before it."""
        self._needs("before_window(...)", "source(...)")
        self._windowed("before_window(...)")
        if strangers := [s for s in stages if not isinstance(s, BeforeWindow)]:
            raise PipelineError(f"job {self.name}: before_window(...) takes BeforeWindow stages, not "
                                f"{type(strangers[0]).__name__}")
        return self._with(before=stages)

    def after_window(self, stage: AfterWindow) -> Job:
        """Rows added to the window's rows (AfterWindow.rows)."""
        self._needs("after_window(...)", "source(...)", "key_by(...)", "window(...)")
        if not isinstance(stage, AfterWindow):
            raise PipelineError(f"job {self.name}: after_window(...) takes an AfterWindow stage, not "
                                f"{type(stage).__name__}")
        return self._with(after=stage)

    def results_from(self, stage: ResultStage) -> Job:
        """Results computed by `stage` (no key_by, window or aggregate), to the results topics it names."""
        self._needs("results_from(...)", "source(...)")
        if not isinstance(stage, ResultStage):
            raise PipelineError(f"job {self.name}: results_from(...) takes a ResultStage, not {type(stage).__name__}")
        if self.keys or self.tumbling is not None or self.aggregates or self.before or self.after:
            raise PipelineError(f"job {self.name}: results_from(...) on a job with a window of keyed aggregates; "
                                "a job has either those or results of its own")
        return self._with(stage=stage)

    def key_by(self, *columns: str) -> Job:
        """Group the window's records by these columns of the source (and the tenant)."""
        self._needs("key_by(...)", "source(...)")
        self._windowed("key_by(...)")
        if not columns:
            raise PipelineError(f"job {self.name}: key_by(...) needs at least one column")
        if clashes := [c for c in columns if c in RESULT_COLUMNS]:
            raise PipelineError(f"job {self.name}: key {clashes[0]!r} is a column the results have already; key by "
                                "another column of the source")
        if clashes := [c for c in columns if c in dict(self.aggregates)]:
            raise PipelineError(f"job {self.name}: key {clashes[0]!r} is the name of an aggregate")
        return self._with(keys=columns)

    def window(self, window: Window) -> Job:
        """The event-time window the keyed records are aggregated over."""
        self._needs("window(...)", "source(...)")
        self._windowed("window(...)")
        if not isinstance(window, Window):
            raise PipelineError(f"job {self.name}: window(...) takes a Window such as tumbling(minutes=1), not "
                                f"{type(window).__name__}")
        return self._with(tumbling=window)

    def aggregate(self, **aggregates: Aggregate) -> Job:
        """The window's aggregates by result field name (these replace any given before)."""
        self._needs("aggregate(...)", "source(...)", "key_by(...)")
        self._windowed("aggregate(...)")
        if not aggregates:
            raise PipelineError(f"job {self.name}: aggregate(...) needs at least one aggregate")
        for name, aggregate in aggregates.items():
            if not isinstance(aggregate, Aggregate):
                raise PipelineError(f"job {self.name}: aggregate {name!r} is a {type(aggregate).__name__}, not an "
                                    "Aggregate such as Count() or Mean('value')")
            if name in RESULT_COLUMNS or name in self.keys:
                raise PipelineError(f"job {self.name}: aggregate {name!r} has the name of "
                                    f"{'a key' if name in self.keys else 'a column the results have already'}; "
                                    "name it otherwise")
        return self._with(aggregates=tuple(aggregates.items()))

    def to_results(self, schema: str) -> Job:
        """Write the results as records of this Avro schema (without: JSON of every column)."""
        self._needs("to_results(...)", "source(...)")
        self._windowed("to_results(...)")
        return self._with(result_schema=schema)

    def result_sinks(self) -> list[ResultSink]:
        """The results topics of a job with results_from, and their queries; none for a windowed job."""
        return self.stage.sinks(self, self.table("on_time")) if self.stage else []

    def parameters(self) -> dict[str, str]:
        """What its stage was planned with (ResultStage.parameters); a windowed job's plan is its SQL alone."""
        return self.stage.parameters() if self.stage else {}

    def restore_problem(self, parameters: Mapping[str, str]) -> str:
        """Why the state of this job planned with `parameters` would not restore into this plan, or ''."""
        return self.stage.restore_problem(parameters) if self.stage else ""

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
