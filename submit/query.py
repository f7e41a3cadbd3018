"""What `tenantstream query` prints: a table to read, or JSON lines for scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from operators.ranges import NUMERIC_TYPES, RangeQuery, format_time

Row = Mapping[str, object]


def format_answer(query: RangeQuery, rows: Sequence[Row]) -> str:
    """The query in words, then its windows as a table, or its sum or mean; `no windows` if none."""
    if not rows:
        return f"{query.describe()}\nno windows"
    if query.aggregate is not None:
        a = query.aggregate
        return f"{query.describe()}\n{a.function}({a.field}) = {a.of(rows)} over {_windows(len(rows))}"
    partition = {column for column, _ in query.partition}
    columns = [(name, cql_type) for name, cql_type in query.table.columns() if name not in partition]
    cells = [[name for name, _ in columns]] + [[_text(row[name], cql_type) for name, cql_type in columns]
                                                for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.rjust(width) if cql_type in NUMERIC_TYPES else cell.ljust(width)
                       for cell, width, (_, cql_type) in zip(line, widths, columns, strict=True)).rstrip()
             for line in cells]
    return "\n".join([query.describe(), *lines, _windows(len(rows))])


def json_lines(query: RangeQuery, rows: Sequence[Row]) -> list[str]:
    """One JSON object a window, every column, times as ISO-8601 UTC; or one for the sum or mean."""
    if query.aggregate is not None:
        a = query.aggregate
        return [json.dumps({**dict(query.partition), "field": a.field, a.function: a.of(rows), "windows": len(rows)})]
    types = dict(query.table.columns())
    return [json.dumps({name: format_time(value) if types[name] == "timestamp" and value is not None else value
                        for name, value in row.items()}) for row in rows]


def _windows(count: int) -> str:
    return f"{count} window{'s' * (count != 1)}"


def _text(value: object, cql_type: str) -> str:
    if value is None:
        return "-"
    if cql_type == "timestamp":
        return format_time(value)
    return f"{value:.6g}" if isinstance(value, float) else str(value)
