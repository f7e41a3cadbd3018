"""Named boolean conditions over a record's columns, as Flink SQL."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Condition:
    """A boolean SQL expression with a name that says what it tests."""

    name: str
    sql: str

    def __and__(self, other: Condition) -> Condition:
        return Condition(f"{self.name} and {other.name}", f"({self.sql}) AND ({other.sql})")

    def __invert__(self) -> Condition:
        return Condition(f"not {self.name}", f"NOT ({self.sql})")


# What a condition from an untrusted source (a tenant's app) may contain: column names, numbers,
# comparisons, AND/OR/NOT and parentheses. No strings, functions or subqueries reach the plan.
_TOKEN = re.compile(r"\s*(?:(`[A-Za-z_][A-Za-z0-9_]*`)|(-?\d+(?:\.\d+)?)|(<>|<=|>=|=|<|>)|(AND|OR|NOT)\b|([()]))")


def unsafe_parts(condition: Condition, columns: Sequence[str]) -> list[str]:
    """What in `condition`'s SQL is not a plain comparison of the given columns and numbers."""
    problems, position, text = [], 0, condition.sql.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            return [*problems, f"condition {condition.name!r}: {text[position:position + 20]!r} is not allowed "
                               "(only columns, numbers, comparisons, AND, OR, NOT and parentheses)"]
        column = match.group(1)
        if column and column.strip("`") not in columns:
            problems.append(f"condition {condition.name!r}: {column} is not a column of the stream")
        position = match.end()
    return problems
