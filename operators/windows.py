"""Tumbling event-time windows: [start, start + size), labelled by start and right edge."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tumbling:
    size_ms: int

    def __post_init__(self) -> None:
        if self.size_ms <= 0 or self.size_ms % 1000:
            raise ValueError(f"a tumbling window is a positive whole number of seconds, not {self.size_ms} ms")

    def interval_sql(self) -> str:
        return interval_sql(self.size_ms)

    def tvf_sql(self, table: str, time_column: str) -> str:
        """Flink's TUMBLE window table-valued function over `table`."""
        return f"TABLE(TUMBLE(TABLE {table}, DESCRIPTOR({time_column}), {self.interval_sql()}))"

    def start_of(self, event_time_ms: int) -> int:
        return event_time_ms - event_time_ms % self.size_ms

    def end_of(self, event_time_ms: int) -> int:
        return self.start_of(event_time_ms) + self.size_ms


def interval_sql(ms: int) -> str:
    """A Flink SQL interval of `ms` milliseconds, up to 99 days (`INTERVAL 'n' SECOND` stops at 99 s)."""
    days, rest = divmod(ms, 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"INTERVAL '{days} {hours:02}:{minutes:02}:{seconds:02}.{millis:03}' DAY TO SECOND(3)"


def tumbling(minutes: int = 0, seconds: int = 0) -> Tumbling:
    """A tumbling window of the given size, e.g. tumbling(minutes=1)."""
    return Tumbling((minutes * 60 + seconds) * 1000)
