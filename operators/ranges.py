"""Range queries over result tables: which windows of one (tenant, key) to read, and what to total.

Pure, no I/O: the command line's words become a RangeQuery, checked here so that every
mistake gets its own message before anything connects, and the query renders itself to
one CQL statement with bound parameters. The whole partition key is bound and the range
is on the first clustering column (the window start), so Cassandra reads a slice of one
partition: no ALLOW FILTERING.

Sums and means are computed here in Python over the returned rows rather than with CQL's
sum()/avg(): CQL's avg over an int or bigint column truncates to an integer and its sum
stays in the column's type (int overflows), while Python's integer sum is exact and
math.fsum rounds a sum of doubles once. One partition holds one row per window (a day of
one-minute windows is 1,440 rows), so reading the rows costs little.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pipeline.errors import OperatorError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
INTEGER_TYPES = frozenset({"int", "bigint"})
NUMERIC_TYPES = INTEGER_TYPES | {"double"}
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")  # a CQL name that needs no quoting
_EPOCH_MS = re.compile(r"[0-9]+")
TIME_FORMATS = ("ISO-8601 such as 2026-01-01T04:15, 2026-01-01T04:15Z or 2026-01-01T06:15+02:00 (UTC when it "
                "has no Z or offset), or epoch milliseconds such as 1767240900000")


class QueryError(OperatorError):
    """A query the user has to correct: the message says what is wrong and what would do."""


class Table(Protocol):
    """What a range query needs of a result table; connectors.results.ResultTable has it.

    The partition key starts with the tenant column, and the first clustering column is the
    window start, as in every result table of windows (sensor_silence's is its event's time `at`).
    """

    @property
    def name(self) -> str: ...

    @property
    def partition_key(self) -> tuple[str, ...]: ...

    @property
    def clustering(self) -> tuple[str, ...]: ...

    def columns(self) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class Aggregate:
    """A sum or a mean of one numeric field over the selected windows."""

    function: str  # "sum" or "mean"
    field: str
    integer: bool  # the field holds whole numbers: sum them exactly

    def of(self, rows: Sequence[Mapping[str, object]]) -> int | float | None:
        """The sum (0 over no windows) or mean (None over no windows) of the field's non-null values."""
        values = [row[self.field] for row in rows if row[self.field] is not None]
        total = sum(values) if self.integer else math.fsum(values)
        if self.function == "sum":
            return total
        return total / len(values) if values else None


@dataclass(frozen=True)
class RangeQuery:
    """The windows of one partition whose start lies in [start_ms, end_ms); None leaves that side open."""

    table: Table
    keyspace: str
    partition: tuple[tuple[str, str], ...]  # (column, value) for every partition-key column, in key order
    start_ms: int | None
    end_ms: int | None
    aggregate: Aggregate | None = None
    limit: int | None = None
    # The clustering values of the last row of the previous page: this page starts after that row.
    page_after: tuple[object, ...] | None = None

    @property
    def time_column(self) -> str:
        return self.table.clustering[0]

    def cql(self) -> tuple[str, list[object]]:
        """One SELECT with a bound parameter for every value (the driver binds epoch milliseconds)."""
        where = [f"{column} = ?" for column, _ in self.partition]
        params: list[object] = [value for _, value in self.partition]
        if self.page_after is not None:  # a tuple bound, as CQL has it for a row of several clustering columns
            where.append(f"({', '.join(self.table.clustering)}) > ({', '.join('?' * len(self.page_after))})")
            params.extend(self.page_after)
        elif self.start_ms is not None:
            where.append(f"{self.time_column} >= ?")
            params.append(self.start_ms)
        if self.end_ms is not None:
            where.append(f"{self.time_column} < ?")
            params.append(self.end_ms)
        columns = ", ".join(name for name, _ in self.table.columns())
        text = f"SELECT {columns} FROM {self.keyspace}.{self.table.name} WHERE {' AND '.join(where)}"
        if self.limit is not None:
            text += " LIMIT ?"
            params.append(self.limit)
        return text, params

    def describe(self) -> str:
        """The query in words, e.g. `alarm_rate tenant=acme station_id=S1, window_start < 2026-01-01T04:15:00Z`."""
        key = " ".join(f"{column}={value}" for column, value in self.partition)
        if self.start_ms is not None and self.end_ms is not None:
            span = f"in [{format_time(self.start_ms)}, {format_time(self.end_ms)})"
        elif self.start_ms is not None:
            span = f">= {format_time(self.start_ms)}"
        else:
            span = f"< {format_time(self.end_ms)}"
        return f"{self.table.name} {key}, {self.time_column} {span}"


def parse_time(text: str, option: str) -> int:
    """Epoch milliseconds of `text`, ISO-8601 or epoch milliseconds; `option` names it in errors."""
    text = text.strip()
    if not text:
        raise QueryError(f"{option}: the time is missing; give {TIME_FORMATS}")
    if _EPOCH_MS.fullmatch(text):
        ms = int(text)
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise QueryError(f"{option}: {text!r} is not a time; give {TIME_FORMATS}") from None
        ms = ((moment if moment.tzinfo else moment.replace(tzinfo=UTC)) - EPOCH) // _MS
    try:
        format_time(ms)
    except OverflowError:
        raise QueryError(f"{option}: {text!r} is out of range (years 1 to 9999)") from None
    return ms


def format_time(ms: int) -> str:
    """ISO-8601 in UTC with a Z, milliseconds only when there are some: 2026-01-01T04:15:00Z."""
    moment = EPOCH + ms * _MS
    return moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds").replace("+00:00", "Z")


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of a timestamp as the Cassandra driver returns it (naive, UTC)."""
    return (moment.replace(tzinfo=UTC) - EPOCH) // _MS


def parse_query(tables: Mapping[str, Table], table: str, *, keyspace: str, tenant: str | None,
                keys: Sequence[str], before: str | None = None, after: str | None = None,
                within: Sequence[str] | None = None, total: str | None = None, mean: str | None = None,
                limit: int | None = None) -> RangeQuery:
    """Check the command line's query words and build the query; QueryError says what to fix.

    `keys` are COLUMN=VALUE words; exactly one of before, after (a time each) and within
    (start and end) selects the windows: start before `before`, start at or after `after`,
    start in [start, end). `total` and `mean` name a numeric field to aggregate.
    """
    if table not in tables:
        raise QueryError(f"no result table {table!r}; the tables are {', '.join(sorted(tables))}")
    result = tables[table]
    if not _IDENTIFIER.fullmatch(keyspace):
        raise QueryError(f"--keyspace {keyspace!r} is not a keyspace name (a letter, then letters, digits or _)")
    if not tenant:
        raise QueryError("name the tenant with --tenant")
    partition = ((result.partition_key[0], tenant), *_key_values(result, keys))
    start_ms, end_ms = _window_starts(before, after, within)
    aggregate = _aggregate(result, total, mean)
    if limit is not None and limit < 1:
        raise QueryError(f"--limit is at least 1, not {limit}")
    if limit is not None and aggregate is not None:
        raise QueryError(f"--limit shortens the list of windows, but --{aggregate.function} is over the whole "
                         "range: leave out one of them")
    return RangeQuery(result, keyspace, partition, start_ms, end_ms, aggregate, limit)


def _key_values(table: Table, keys: Sequence[str]) -> list[tuple[str, str]]:
    """The value of each key column after the tenant, in key order, from COLUMN=VALUE words."""
    valid = table.partition_key[1:]
    given: dict[str, str] = {}
    for word in keys:
        column, equals, value = word.partition("=")
        if not equals:
            raise QueryError(f"--key takes COLUMN=VALUE, not {word!r}")
        if column == table.partition_key[0]:
            raise QueryError(f"the {column} is given with --tenant, not --key")
        if column not in valid:
            raise QueryError(f"{table.name} has no key {column!r}; its keys are {', '.join(valid)}")
        if column in given:
            raise QueryError(f"--key {column} is given twice")
        if not value:
            raise QueryError(f"--key {column}= has no value")
        given[column] = value
    missing = [column for column in valid if column not in given]
    if missing:
        raise QueryError(f"{table.name} rows are found by their whole key: add "
                         + " ".join(f"--key {column}=..." for column in missing))
    return [(column, given[column]) for column in valid]


def _window_starts(before: str | None, after: str | None, within: Sequence[str] | None) -> tuple[int | None,
                                                                                                 int | None]:
    """[start, end) of the window starts asked for, from exactly one of the three kinds."""
    kinds = [kind for kind, value in (("--before", before), ("--after", after), ("--within", within))
             if value is not None]
    if not kinds:
        raise QueryError("say which windows: --before TIME, --after TIME or --within START END")
    if len(kinds) > 1:
        raise QueryError(f"give one of --before, --after and --within, not {' and '.join(kinds)}")
    if before is not None:
        return None, parse_time(before, "--before")
    if after is not None:
        return parse_time(after, "--after"), None
    if len(within) != 2:
        raise QueryError(f"--within takes START END, not {len(within)} time(s)")
    start, end = parse_time(within[0], "--within START"), parse_time(within[1], "--within END")
    if end <= start:
        raise QueryError(f"--within: end {format_time(end)} is not after start {format_time(start)}")
    return start, end


def _aggregate(table: Table, total: str | None, mean: str | None) -> Aggregate | None:
    if total is not None and mean is not None:
        raise QueryError("give one of --sum and --mean, not both")
    if total is None and mean is None:
        return None
    function, field = ("sum", total) if total is not None else ("mean", mean)
    types = dict(table.columns())
    numeric = ", ".join(name for name, cql_type in types.items() if cql_type in NUMERIC_TYPES)
    if field not in types:
        raise QueryError(f"--{function}: {table.name} has no field {field!r}; its numeric fields are {numeric}")
    if types[field] not in NUMERIC_TYPES:
        raise QueryError(f"--{function}: {field} holds {types[field]}, not numbers; the numeric fields of "
                         f"{table.name} are {numeric}")
    return Aggregate(function, field, integer=types[field] in INTEGER_TYPES)
