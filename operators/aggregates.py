"""Window aggregates as small named objects (in the manner of Quix Streams' Count, Sum, Mean).

Each renders itself to a Flink SQL aggregate expression, so a job declared in
Python aggregates in the JVM.
"""

from __future__ import annotations

from dataclasses import dataclass

from operators.conditions import Condition
from pipeline.sql import quote
from pipeline.stages import Aggregate


@dataclass(frozen=True)
class Count(Aggregate):
    """How many records fell into the window."""

    sql_type = "BIGINT"

    def sql(self) -> str:
        return "COUNT(*)"


@dataclass(frozen=True)
class CountIf(Aggregate):
    """How many records of the window meet `condition`."""

    condition: Condition
    sql_type = "BIGINT"

    def sql(self) -> str:
        return f"COUNT(*) FILTER (WHERE {self.condition.sql})"


@dataclass(frozen=True)
class Share(Aggregate):
    """The fraction of the window's records that meet `condition` (fires / events)."""

    condition: Condition
    sql_type = "DOUBLE"

    def sql(self) -> str:
        return f"CAST({CountIf(self.condition).sql()} AS DOUBLE) / COUNT(*)"


@dataclass(frozen=True)
class _OfColumn(Aggregate):
    column: str
    where: Condition | None = None  # only the records meeting it count; NULL when none does
    function = ""
    sql_type = "DOUBLE"

    def sql(self) -> str:
        only = f" FILTER (WHERE {self.where.sql})" if self.where else ""
        return f"{self.function}({quote(self.column)}){only}"


class Sum(_OfColumn):
    """Sum of an additive quantity over the window."""

    function = "SUM"


class Mean(_OfColumn):
    """Arithmetic mean over the window."""

    function = "AVG"


class Min(_OfColumn):
    """Smallest value in the window."""

    function = "MIN"


class Max(_OfColumn):
    """Largest value in the window."""

    function = "MAX"
