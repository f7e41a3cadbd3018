"""What a rollup makes of the stream windows of one period, as Flink SQL aggregates over the window rows.

Only what adds up across windows is rolled up: counts, sums, counter increases and kWh add; a rate is the
ratio of the summed counts (not a mean of the windows' rates); a mean is weighted by each window's readings;
min and max combine.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from operators.aggregates import Max, Min, Sum
from pipeline.sql import quote


@dataclass(frozen=True)
class Ratio:
    """SUM(numerator) / SUM(denominator) over the windows, 0.0 when the denominator sums to 0."""

    numerator: str
    denominator: str

    def sql(self) -> str:
        return (f"CASE WHEN SUM({quote(self.denominator)}) > 0 THEN CAST(SUM({quote(self.numerator)}) AS DOUBLE) "
                f"/ SUM({quote(self.denominator)}) ELSE 0.0 END")


@dataclass(frozen=True)
class WeightedMean:
    """The mean of the windows' means weighted by `weight` (their readings): the mean of all their readings.
    NULL when no window with a mean had a reading."""

    column: str
    weight: str

    def sql(self) -> str:
        having = f"FILTER (WHERE {quote(self.column)} IS NOT NULL)"
        weights = f"SUM({quote(self.weight)}) {having}"
        return (f"CASE WHEN {weights} > 0 THEN SUM({quote(self.column)} * {quote(self.weight)}) {having} "
                f"/ {weights} END")


ALARM_RATE_ROLLUP = {"fires": Sum("fires"), "events": Sum("events"), "rate": Ratio("fires", "events")}
FLOW_ROLLUP = {"readings": Sum("readings"), "breaches": Sum("breaches"), "sum": Sum("sum"),
               "mean": WeightedMean("mean", "readings"), "min": Min("min"), "max": Max("max"),
               "increase": Sum("increase"), "energy_kwh": Sum("energy_kwh")}


class Throttle:
    """Says whether a key's rollup is due: at most one run per key every `interval_s` seconds (the alert
    trigger keys by (rollup key, period, period start)). Pure: the caller passes the time."""

    def __init__(self, interval_s: float = 60.0) -> None:
        self.interval_s = interval_s
        self._last: dict[Hashable, float] = {}

    def due(self, key: Hashable, now: float) -> bool:
        """True, and the run noted, unless the key ran less than `interval_s` before `now`."""
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            return False
        self._last[key] = now
        if len(self._last) > 10_000:  # forget what can no longer hold a run back
            self._last = {k: t for k, t in self._last.items() if now - t < self.interval_s}
        return True
