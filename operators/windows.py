"""Tumbling event-time windows: [start, start + size), labelled by start and right edge."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import OperatorError
from pipeline.sql import interval_sql
from pipeline.stages import Window


@dataclass(frozen=True)
class Tumbling(Window):
    size_ms: int

    def __post_init__(self) -> None:
        if self.size_ms <= 0 or self.size_ms % 1000:
            raise OperatorError(f"a tumbling window is a positive whole number of seconds, not {self.size_ms} ms")

    def interval_sql(self) -> str:
        return interval_sql(self.size_ms)

    def tvf_sql(self, table: str, time_column: str) -> str:
        """Flink's TUMBLE window table-valued function over `table`."""
        return f"TABLE(TUMBLE(TABLE {table}, DESCRIPTOR({time_column}), {self.interval_sql()}))"

    def start_of(self, event_time_ms: int) -> int:
        return event_time_ms - event_time_ms % self.size_ms

    def end_of(self, event_time_ms: int) -> int:
        return self.start_of(event_time_ms) + self.size_ms


def tumbling(minutes: int = 0, seconds: int = 0) -> Tumbling:
    """A tumbling window of the given size, e.g. tumbling(minutes=1)."""
    return Tumbling((minutes * 60 + seconds) * 1000)
