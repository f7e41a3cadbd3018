"""Named boolean conditions over a record's columns, as Flink SQL."""

from __future__ import annotations

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

