"""The check every plan passes before it runs, whoever built it: only the statements the planner makes, over
only the job's own tenants' topics and documents.

Parts of a plan come from stages that the job carries (pipeline.job: before_window, after_window, results_from),
so the plan's SQL is checked as text, as Flink will read it, before any of it reaches Flink:

- Tokens as Flink's SQL parser reads them: string literals (a quote is doubled), backtick names (a backtick is
  doubled), numbers, words and operators. Comments and hints (`--`, `//`, `/* */`, `/*+ OPTIONS(...) */`) are
  refused, since an OPTIONS hint rewrites a table's options, its topic included; so are `;` (a second statement),
  prefixed literals (`E'...'` reads backslashes, which would make the two readings differ), double quotes and
  any character the planner never writes.
- Statement kinds: CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS of FUNCTIONS, CREATE [TEMPORARY] TABLE name
  (...) WITH (...), CREATE TEMPORARY VIEW name AS SELECT ..., and INSERT INTO a Kafka table of the plan SELECT
  ... (pipeline.execute wraps those in one EXECUTE STATEMENT SET). Nothing else: no catalogs, modules,
  jars, SET, CREATE TABLE AS or LIKE.
- A view or insert reads only tables and views the plan created (before it), by plain names.
- Tables: connectors and formats from allow-lists, and per connector only the option keys it lists, with values
  of the expected form. A Kafka table that is written is a sink: its topics are `<tenant>.results.<name>`,
  `<tenant>.deadletter` or `<tenant>.late`, and nothing reads it; any other Kafka table is a source of
  `<tenant>.sensors.<the job's stream>` topics. `<tenant>` is one of the job's tenants, the bootstrap servers are
  the run's, the consumer group and transactional ids the job's own, and a login (SASL/SCRAM) the job's own
  principal's. Lookup tables of documents carry only
  documents of the job's tenants, or read only theirs from the metadata store.

A refusal is PlanRefused, one line naming the job, the table (or view, function, statement) and what is wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError
from pipeline.sql import WATERMARK_EMITS

if TYPE_CHECKING:
    from pipeline.job import Job, RunSettings


class PlanRefused(PipelineError):  # noqa: N818 (says what happened to the plan)
    """A plan's statement is not one the planner makes for the job's own tenants; the message says which and why."""


class _Bad(Exception):  # noqa: N818 (a refusal, not a failure)
    """What is wrong with one statement; check_plan adds which statement it is."""


# Functions of our Flink jar (connectors/flink-format) a plan may register, with their classes. Kept here, apart
# from the planner's own list (pipeline.plan.JVM_FUNCTIONS), so that the check does not take the planner's word.
FUNCTIONS = {"TRUSTED_EVENT_TIME": "tenantstream.flink.TrustedEventTime",
             "TOPIC_TENANT": "tenantstream.flink.TopicTenant",
             "TEXT_FAULT": "tenantstream.flink.TextFault"}

FORMATS = {"tenantstream-avro", "json", "raw"}
# Options of each format, after its name: 'tenantstream-avro.schema' (or 'value.tenantstream-avro.schema').
FORMAT_OPTIONS: dict[str, dict[str, Callable[[str], bool]]] = {
    "tenantstream-avro": {"schema": re.compile(r"[a-z][a-z0-9_]*\.v[0-9]+").fullmatch},
    "json": {"timestamp-format.standard": {"ISO-8601", "SQL"}.__contains__},
    "raw": {},
}

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_FIELDS = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(;[A-Za-z_][A-Za-z0-9_]*)*")
_DIGITS = re.compile(r"[0-9]{1,12}")
# The Kafka client's SCRAM login module, as Kafka names it and as the shaded Flink connector does.
_JAAS = re.compile(r'(org\.apache\.flink\.kafka\.shaded\.)?org\.apache\.kafka\.common\.security\.scram\.'
                   r'ScramLoginModule required username="(?P<username>[^"\\\r\n]+)" password="[^"\\\r\n]+";')


def _one_of(*values: str) -> Callable[[str], bool]:
    return set(values).__contains__


# Kafka options any Kafka table may have, besides 'connector', 'topic' and the bootstrap servers (checked apart):
# client authentication (SASL/SCRAM).
KAFKA_AUTH_OPTIONS: dict[str, Callable[[str], bool]] = {
    "properties.security.protocol": _one_of("SASL_PLAINTEXT", "SASL_SSL"),
    "properties.sasl.mechanism": _one_of("SCRAM-SHA-256", "SCRAM-SHA-512"),
    "properties.sasl.jaas.config": _JAAS.fullmatch,
}
SECRET_OPTIONS = {"properties.sasl.jaas.config", "uri"}  # never shown in a refusal (logins, passwords)
KAFKA_SOURCE_OPTIONS: dict[str, Callable[[str], bool]] = {
    "properties.isolation.level": _one_of("read_committed"),
    "scan.startup.mode": _one_of("group-offsets", "earliest-offset", "latest-offset"),
    "properties.auto.offset.reset": _one_of("earliest", "latest"),
    "scan.bounded.mode": _one_of("latest-offset", "specific-offsets"),
    "scan.bounded.specific-offsets": re.compile(r"partition:[0-9]+,offset:[0-9]+(;partition:[0-9]+,offset:[0-9]+)*")
    .fullmatch,
    "scan.watermark.emit.strategy": _one_of(*WATERMARK_EMITS),
}
KAFKA_SINK_OPTIONS: dict[str, Callable[[str], bool]] = {
    "sink.delivery-guarantee": _one_of("exactly-once"),
    "properties.transaction.timeout.ms": _DIGITS.fullmatch,
    "key.fields": _FIELDS.fullmatch,
}
# Lookup tables of our jar (connectors/flink-format): InlineDocumentsTableFactory, MongoLookupTableFactory.
DOCUMENTS_CONNECTOR = "tenantstream-documents"
MONGODB_CONNECTOR = "tenantstream-mongodb"
MONGODB_OPTIONS: dict[str, Callable[[str], bool]] = {
    "uri": re.compile(r"mongodb://[^\s'\"]+").fullmatch,
    "database": re.compile(r"[A-Za-z0-9_-]+").fullmatch,
    "collection": _one_of("sensors", "elements"),
    "refresh-interval": re.compile(r"[0-9]{1,9} ?(ms|s|min)").fullmatch,
}
_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
CONNECTORS = ("kafka", DOCUMENTS_CONNECTOR, MONGODB_CONNECTOR)

# ---------------------------------------------------------------------------------------------------- tokens

_WHITESPACE = " \t\n\r\f"  # what Flink's parser skips; any other control or non-ASCII character is refused
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_SYMBOLS = ("<>", "<=", ">=", "!=", "||", "(", ")", ",", ".", "=", "<", ">", "+", "-", "*", "/", "%")
_COMMENTS = ("--", "//", "/*")


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "name" (in backticks), "string", "number" or "symbol"
    text: str  # a word as written; a name's or string's value, unquoted; a number or symbol as written
    at: int  # where it starts in the statement

    def word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.upper() in words

    def symbol(self, symbol: str) -> bool:
        return self.kind == "symbol" and self.text == symbol

    @property
    def is_name(self) -> bool:
        return self.kind in ("word", "name")


def tokens(statement: str) -> list[Token]:
    """The statement's tokens; _Bad for a comment, a hint, ';', an unterminated literal or a stray character."""
    found: list[Token] = []
    at = 0
    while at < len(statement):
        char = statement[at]
        if char in _WHITESPACE:
            at += 1
        elif statement.startswith(_COMMENTS, at):
            raise _Bad(f"comment or hint {_excerpt(statement, at)}: plans carry none (a hint rewrites a table)")
        elif char in "'`":
            if char == "'" and at and (statement[at - 1].isalnum() or statement[at - 1] == "_"):
                raise _Bad(f"prefixed string literal {_excerpt(statement, at - 1)}: plans write plain literals")
            at = _quoted(statement, at, found)
        elif char == ";":
            raise _Bad(f"';' at {_excerpt(statement, at)}: one statement at a time")
        elif match := _WORD.match(statement, at) or _NUMBER.match(statement, at):
            found.append(Token("word" if match.re is _WORD else "number", match.group(), at))
            at = match.end()
        else:
            symbol = next((s for s in _SYMBOLS if statement.startswith(s, at)), None)
            if symbol is None:
                raise _Bad(f"unexpected character {char!r} at {_excerpt(statement, at)}")
            found.append(Token("symbol", symbol, at))
            at += len(symbol)
    return found


def _quoted(statement: str, start: int, found: list[Token]) -> int:
    """Add the string literal or backtick name starting at `start` (its quote doubled inside); where it ends."""
    quote, at, parts = statement[start], start + 1, []
    while True:
        end = statement.find(quote, at)
        if end < 0:
            raise _Bad(f"unterminated {'string' if quote == chr(39) else 'name'} {_excerpt(statement, start)}")
        parts.append(statement[at:end])
        if not statement.startswith(quote * 2, end):
            found.append(Token("string" if quote == "'" else "name", quote.join(parts), start))
            return end + 1
        at = end + 2


_PASSWORD = re.compile(r"""(password\s*=\s*)("[^"]*"?|'[^']*'?|\S*)|(//[^/@\s]*:)[^@\s]*@""", re.IGNORECASE)


def _excerpt(statement: str, at: int, width: int = 64) -> str:
    """The statement's text from `at`, for a refusal: refusals are shown to tenants, so passwords are blanked."""
    text = statement[at:at + width] + ("..." if at + width < len(statement) else "")
    return repr(_PASSWORD.sub(lambda m: f"{m[1]}***" if m[1] else f"{m[3]}***@", text))


# ---------------------------------------------------------------------------------------------------- the plan


@dataclass
class _Table:
    name: str
    connector: str
    options: dict[str, str]


@dataclass
class _Plan:
    """What the statements so far created and read, and what the job may name."""

    job_name: str
    tenants: tuple[str, ...]
    stream: str
    bootstrap: str
    group: str
    tables: dict[str, _Table] = field(default_factory=dict)
    views: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    mentioned: dict[str, str] = field(default_factory=dict)  # a name that a view or insert holds -> that statement

    def created(self) -> set[str]:
        return self.tables.keys() | self.views

    def add(self, name: str) -> None:
        if name in self.created():
            raise _Bad(f"`{name}` is created twice")

    def reads(self, label: str, query: list[Token]) -> None:
        """Note what `query` reads; _Bad if that is not a plain name the plan created before."""
        for token in _table_references(query):
            if token.text not in self.created():
                raise _Bad(f"reads `{token.text}`, which the plan did not create (before it)")
        for token in query:
            if token.is_name:
                self.mentioned.setdefault(token.text, label)


def check_plan(job: Job, settings: RunSettings, ddl: Sequence[str],
               inserts: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The plan (DDL statements, INSERT statements of one statement set) as checked, to run as it is; PlanRefused
    if a statement is not one the planner makes for `job`'s tenants, run with `settings`."""
    name = job.name
    if type(name) is not str or not _NAME.fullmatch(name):
        raise PlanRefused(f"plan refused: job name {name!r} is not letters, digits, '-' or '_'")
    tenants, stream = tuple(job.tenants), job.stream
    for text in (*tenants, stream):
        if type(text) is not str or not _NAME.fullmatch(text):
            raise PlanRefused(f"plan of {name} refused: tenant or stream {text!r} is not letters, digits, '-' or '_'")
    group = settings.group_id or f"tenantstream.{name}.{'+'.join(tenants)}"
    plan = _Plan(name, tenants, stream, settings.bootstrap, group)
    ddl, inserts = tuple(ddl), tuple(inserts)
    for number, statement in enumerate((*ddl, *inserts), 1):
        label = f"statement {number}"
        try:
            if type(statement) is not str:
                raise _Bad(f"is a {type(statement).__name__}, not text")
            label = _label(statement) or label
            found = tokens(statement)
            (_insert if number > len(ddl) else _declare)(plan, label, found)
        except _Bad as bad:
            raise PlanRefused(f"plan of {name} refused: {label}: {bad}") from None
    for table in plan.tables.values():
        label = f"table `{table.name}`"
        try:
            _check_table(plan, table)
        except _Bad as bad:
            raise PlanRefused(f"plan of {name} refused: {label}: {bad}") from None
    return ddl, inserts


_LABEL = re.compile(r"\s*(CREATE\s+(TEMPORARY\s+)?(SYSTEM\s+)?(?P<kind>TABLE|VIEW|FUNCTION)\s+(IF\s+NOT\s+EXISTS\s+)?"
                    r"|(?P<insert>INSERT\s+INTO)\s+)(?P<name>`[^`]*`|\w+)", re.IGNORECASE)


def _label(statement: str) -> str:
    """'table `x`', 'view `x`', 'function `X`' or 'insert into `x`' as the statement begins, else ''; for messages."""
    match = _LABEL.match(statement)
    if not match:
        return ""
    kind = "insert into" if match["insert"] else match["kind"].lower()
    return f"{kind} `{match['name'].strip('`')}`"


_KINDS = "CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS, CREATE [TEMPORARY] TABLE, CREATE TEMPORARY VIEW"


def _declare(plan: _Plan, label: str, found: list[Token]) -> None:
    words = [t.text.upper() if t.kind == "word" else None for t in found[:4]]
    if words[:4] == ["CREATE", "TEMPORARY", "SYSTEM", "FUNCTION"]:
        _function(found[4:])
    elif words[:3] == ["CREATE", "TEMPORARY", "TABLE"] or words[:2] == ["CREATE", "TABLE"]:
        _table(plan, found[3 if words[1] == "TEMPORARY" else 2:])
    elif words[:3] == ["CREATE", "TEMPORARY", "VIEW"]:
        name, query = _name(found, 3), found[4:]
        if not found[4:5] or not found[4].word("AS") or not found[5:6] or not found[5].word("SELECT"):
            raise _Bad("a view is CREATE TEMPORARY VIEW name AS SELECT ...")
        plan.add(name)
        plan.reads(label, query)
        plan.views.add(name)
    else:
        raise _Bad(f"{_kind(found)} is not a statement the planner makes ({_KINDS})")


def _kind(found: list[Token]) -> str:
    words = []
    for token in found[:4]:
        if token.kind != "word":
            break
        words.append(token.text.upper())
    return " ".join(words) or "a statement without a keyword"


def _name(found: list[Token], at: int) -> str:
    """The plain (unqualified) name at `at`."""
    if at >= len(found) or not found[at].is_name:
        raise _Bad("names no table")
    if at + 1 < len(found) and found[at + 1].symbol("."):
        raise _Bad(f"qualified name {found[at].text}.{found[at + 2].text if at + 2 < len(found) else ''}: plans "
                   "name their own tables only")
    return found[at].text


def _function(rest: list[Token]) -> None:
    """IF NOT EXISTS <name> AS '<class>' LANGUAGE JAVA, of a pair in FUNCTIONS."""
    shape = ["IF", "NOT", "EXISTS", None, "AS", None, "LANGUAGE", "JAVA"]
    if len(rest) != len(shape) or any(w and not t.word(w) for t, w in zip(rest, shape, strict=True)) \
            or not rest[3].is_name or rest[5].kind != "string":
        raise _Bad("a function is CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS name AS 'class' LANGUAGE JAVA")
    name, java_class = rest[3].text, rest[5].text
    if FUNCTIONS.get(name) != java_class:
        raise _Bad(f"function {name} AS {java_class!r} is not one of {', '.join(sorted(FUNCTIONS))} with its class")


def _table(plan: _Plan, rest: list[Token]) -> None:
    """<name> ( columns ) WITH ( 'key' = 'value', ... ), and nothing after it."""
    name = _name(rest, 0)
    if not rest[1:2] or not rest[1].symbol("("):
        raise _Bad("a table is CREATE TABLE name (columns) WITH (options)")
    after_columns = _closing(rest, 1) + 1
    if after_columns + 1 >= len(rest) or not rest[after_columns].word("WITH") or \
            not rest[after_columns + 1].symbol("("):
        raise _Bad("a table is CREATE TABLE name (columns) WITH (options), with nothing else")
    end = _closing(rest, after_columns + 1)
    if end != len(rest) - 1:
        raise _Bad(f"{_kind(rest[end + 1:]) or rest[end + 1].text} after the table's options: a table is CREATE "
                   "TABLE name (columns) WITH (options), with nothing else")
    options: dict[str, str] = {}
    items, at = rest[after_columns + 2:end], 0
    while at < len(items):
        key, equals, value = (*items[at:at + 3], None, None, None)[:3]
        if not (key.kind == "string" and equals and equals.symbol("=") and value and value.kind == "string"):
            raise _Bad("its options are 'key' = 'value' pairs separated by commas")
        if key.text in options:
            raise _Bad(f"option {key.text!r} is given twice")
        options[key.text] = value.text
        at += 3
        if at < len(items):
            if not items[at].symbol(",") or at + 1 == len(items):
                raise _Bad("its options are 'key' = 'value' pairs separated by commas")
            at += 1
    plan.add(name)
    plan.tables[name] = _Table(name, options.get("connector", ""), options)


def _closing(found: list[Token], opening: int) -> int:
    """Where the parenthesis opened at `opening` closes."""
    depth = 0
    for at in range(opening, len(found)):
        depth += found[at].symbol("(") - found[at].symbol(")")
        if depth == 0:
            return at
    raise _Bad("a parenthesis is not closed")


def _insert(plan: _Plan, label: str, found: list[Token]) -> None:
    """INSERT INTO <a table of the plan> SELECT ... (_check_table: a Kafka table)"""
    if len(found) < 4 or not (found[0].word("INSERT") and found[1].word("INTO")):
        raise _Bad(f"{_kind(found)} is not a statement of the statement set (INSERT INTO table SELECT ...)")
    target = _name(found, 2)
    if not found[3].word("SELECT"):
        raise _Bad("an insert is INSERT INTO table SELECT ..., with no column list, partition or hint")
    if target not in plan.tables:
        raise _Bad(f"`{target}` is no table the plan created")
    plan.reads(label, found[4:])
    plan.written.add(target)


# Words that end a FROM clause at the level of its SELECT.
_FROM_ENDS = ("WHERE", "GROUP", "HAVING", "WINDOW", "ORDER", "LIMIT", "UNION", "EXCEPT", "INTERSECT", "MINUS",
              "QUALIFY", "OFFSET", "FETCH", "SELECT")


def _table_references(query: list[Token]) -> Iterable[Token]:
    """The tokens of `query` that name a table or view: after FROM, JOIN or a comma of a FROM clause, and after
    TABLE (as in TUMBLE(TABLE x, ...)). A qualified name (catalog.database.table) is _Bad."""
    levels = [[False, False]]  # per parenthesis: a SELECT seen in it, in its FROM clause
    expect = False  # the next token names a table (or opens a subquery or join, or is a keyword of one)
    for at, token in enumerate(query):
        level, follows = levels[-1], query[at + 1] if at + 1 < len(query) else None
        expected, expect = expect, False
        if expected and token.is_name and not token.word("TABLE", "LATERAL", "UNNEST", "SELECT", "VALUES", "WITH"):
            yield Token(token.kind, _name(query, at), token.at)
        elif token.word("TABLE") and follows is not None and follows.is_name:
            yield Token(follows.kind, _name(query, at + 1), follows.at)
        if token.symbol("("):  # where a table was expected, a subquery or a parenthesised table or join
            levels.append([False, expected])
            expect = expected
        elif token.symbol(")") and len(levels) > 1:
            levels.pop()
        elif token.word("SELECT"):
            level[:] = [True, False]
        elif token.word("FROM") and level[0] and not (at and query[at - 1].word("DISTINCT")):
            level[1] = expect = True
        elif token.word("JOIN") or (token.symbol(",") and level[1]):
            expect = True
        elif token.word(*_FROM_ENDS):
            level[1] = False


# ---------------------------------------------------------------------------------------------------- tables


def _check_table(plan: _Plan, table: _Table) -> None:
    if table.connector not in CONNECTORS:
        raise _Bad(f"connector {table.connector!r} is not one of {', '.join(CONNECTORS)}")
    if table.connector != "kafka":
        if table.name in plan.written:
            raise _Bad("is written, and plans write Kafka tables only")
        _check_documents(plan, table)
        return
    sink = table.name in plan.written
    if sink and table.name in plan.mentioned:  # every name a view or insert holds, what it reads included
        raise _Bad(f"is written, and also named by {plan.mentioned[table.name]}: a sink is never read")
    options = dict(table.options)
    options.pop("connector")
    bootstrap = options.pop("properties.bootstrap.servers", "")
    if bootstrap != plan.bootstrap:
        raise _Bad(f"option 'properties.bootstrap.servers' {bootstrap[:80]!r} is not the run's bootstrap servers "
                   f"{plan.bootstrap!r}")
    if "topic" not in options:
        raise _Bad("names no 'topic' (a 'topic-pattern' is not allowed: a table lists its topics)")
    if sink:
        strangers = [t for t in options.pop("topic").split(";") if not any(m(t) for m in _sink_topics(plan))]
        allowed = f"<tenant>.results.<name>, <tenant>.deadletter or <tenant>.late of {', '.join(plan.tenants)}"
    else:
        sources = [f"{t}.sensors.{plan.stream}" for t in plan.tenants]
        strangers = [t for t in options.pop("topic").split(";") if t not in sources]
        allowed = ", ".join(sources)
    if strangers:
        raise _Bad(f"topic {strangers[0]!r} is not one of its tenants' {'sink' if sink else 'source'} topics "
                   f"({allowed})")
    if sink:
        prefix = f"tenantstream.{plan.job_name}.{'+'.join(plan.tenants)}."
        transactional = options.pop("sink.transactional-id-prefix", "")
        if not (transactional.startswith(prefix) and _NAME.fullmatch(transactional.removeprefix(prefix))):
            raise _Bad(f"option 'sink.transactional-id-prefix' {transactional!r} is not the job's own ({prefix}<sink>)")
        if options.get("sink.delivery-guarantee") != "exactly-once":
            raise _Bad("option 'sink.delivery-guarantee' is not 'exactly-once'")
    elif options.pop("properties.group.id", None) != plan.group:
        raise _Bad(f"option 'properties.group.id' is not the job's consumer group {plan.group}")
    _check_options(options, {**KAFKA_AUTH_OPTIONS, **(KAFKA_SINK_OPTIONS if sink else KAFKA_SOURCE_OPTIONS)},
                   formats=True)
    login = _JAAS.fullmatch(options.get("properties.sasl.jaas.config", ""))
    if login and not re.fullmatch(rf"job-{re.escape(plan.job_name)}-[0-9a-f]{{16}}", login["username"]):
        raise _Bad("option 'properties.sasl.jaas.config' logs in as another principal than the job's own "
                   f"(job-{plan.job_name}-<digest>; value not shown)")


def _sink_topics(plan: _Plan) -> list[Callable[[str], object]]:
    return [re.compile(rf"{re.escape(t)}\.(results\.[A-Za-z0-9_-]+|deadletter|late)").fullmatch for t in plan.tenants]


def _check_options(options: dict[str, str], allowed: dict[str, Callable[[str], object]], formats: bool = False) -> None:
    """Every option is allowed and of its allowed form; with `formats`, the format options as well."""
    format_keys = {}
    if formats:
        for key in ("format", "key.format", "value.format"):
            if key in options:
                fmt = options.pop(key)
                if fmt not in FORMATS:
                    raise _Bad(f"option {key!r}: format {fmt!r} is not one of {', '.join(sorted(FORMATS))}")
                prefix = key.removesuffix("format")
                format_keys.update({f"{prefix}{fmt}.{name}": check for name, check in FORMAT_OPTIONS[fmt].items()})
    for key, value in options.items():
        check = allowed.get(key) or format_keys.get(key)
        if check is None:
            raise _Bad(f"option {key!r} is not allowed")
        if not check(value):
            shown = "(value not shown)" if key in SECRET_OPTIONS else repr(value[:80])
            raise _Bad(f"option {key!r} has a value not of the allowed form {shown}")


def _check_documents(plan: _Plan, table: _Table) -> None:
    """A lookup table's documents, or what it reads from the metadata store, are its tenants' only."""
    options = dict(table.options)
    options.pop("connector")
    for key in [k for k in options if k.startswith("fields.")]:
        if not (_FIELD_PATH.fullmatch(key.removeprefix("fields.")) and _FIELD_PATH.fullmatch(options.pop(key))):
            raise _Bad(f"option {key!r} is not fields.<column> = '<document path>'")
    if table.connector == DOCUMENTS_CONNECTOR:
        try:
            documents = json.loads(options.pop("documents", ""))
        except ValueError:
            raise _Bad("option 'documents' is not JSON") from None
        if not isinstance(documents, list):
            raise _Bad("option 'documents' is not a list of documents")
        strangers = sorted({repr(d.get("tenant")) if isinstance(d, dict) else "a non-object" for d in documents
                            if not (isinstance(d, dict) and d.get("tenant") in plan.tenants)})
        if strangers:
            raise _Bad(f"option 'documents' holds documents of {', '.join(strangers)}, not only of its tenants "
                       f"{', '.join(plan.tenants)}")
    else:
        tenants = options.pop("tenants", "").split(";")
        if not set(tenants) <= set(plan.tenants):
            raise _Bad(f"option 'tenants' {';'.join(tenants)!r} names others than its tenants "
                                  f"{', '.join(plan.tenants)}")
        missing = {"uri", "database", "collection"} - options.keys()
        if missing:
            raise _Bad(f"names no {', '.join(sorted(missing))}")
    _check_options(options, MONGODB_OPTIONS if table.connector == MONGODB_CONNECTOR else {})
