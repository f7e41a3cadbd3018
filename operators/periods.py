"""Calendar periods of a tenant's local time: days, ISO weeks, months and N-hour parts of a day.

Pure, no I/O: what a rollup (jobs/rollup.py) groups the stored windows by, as Flink SQL expressions, and the
same bounds in Python for the command line's --from/--to and the alert trigger's "current day, week, month".

The rule: a period is a span of the tenant's wall clock (its IANA time zone, UTC when it has none). Days,
weeks (ISO: Monday to Monday) and months start at local midnight; an N-hour period is N hours of the local
clock, restarting at every local midnight (so N divides 24 and every day has the same periods). A day on which
daylight saving time starts is 23 hours long and one on which it ends 25 hours; the N-hour period holding the
change is an hour shorter or longer (at the autumn change, both 02:00 hours of Amsterdam are one period).
A window belongs to the period holding its start.

In SQL the job sets `table.local-time-zone` to the tenant's zone: CAST of a TIMESTAMP_LTZ to TIMESTAMP gives
its wall-clock time there, the period start is floored on the wall clock, and CAST back to TIMESTAMP_LTZ
gives the instant (java.time: a wall time that does not exist moves forward by the gap, one that occurs twice
takes the earlier offset; Python's zoneinfo with fold=0 gives the same instants).
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from pipeline.errors import OperatorError
from schemas.names import shown

Kind = Literal["day", "week", "month", "hours"]
DEFAULT_ZONE = "UTC"
_HOURS = re.compile(r"([0-9]{1,2})h")
HOUR_DIVISORS = (1, 2, 3, 4, 6, 8, 12, 24)
PERIOD_FORMS = f"day, week, month or Nh with N one of {', '.join(map(str, HOUR_DIVISORS))} (such as 12h)"


class PeriodError(OperatorError):
    """A period, time zone or date range the user has to correct; the message says what would do."""


@dataclass(frozen=True)
class Period:
    kind: Kind
    hours: int = 24  # of an N-hour period

    @property
    def label(self) -> str:
        """How rows and the command line name it: day, week, month or e.g. 12h."""
        return f"{self.hours}h" if self.kind == "hours" else self.kind

    def start_sql(self, instant: str) -> str:
        """The TIMESTAMP_LTZ(3) start of the period holding `instant` (a TIMESTAMP_LTZ expression), in the
        session's local time zone."""
        return f"CAST({self._start_wall(instant)} AS TIMESTAMP_LTZ(3))"

    def end_sql(self, instant: str) -> str:
        """The TIMESTAMP_LTZ(3) end (the next period's start) of the period holding `instant`."""
        unit, count = {"day": ("DAY", 1), "week": ("DAY", 7), "month": ("MONTH", 1),
                       "hours": ("HOUR", self.hours)}[self.kind]
        return f"CAST(TIMESTAMPADD({unit}, {count}, {self._start_wall(instant)}) AS TIMESTAMP_LTZ(3))"

    def _start_wall(self, instant: str) -> str:
        wall = f"CAST({instant} AS TIMESTAMP(3))"
        day = f"FLOOR({wall} TO DAY)"
        if self.kind == "day":
            return day
        if self.kind == "month":
            return f"FLOOR({wall} TO MONTH)"
        if self.kind == "week":  # DAYOFWEEK: Sunday 1 .. Saturday 7, so days since Monday = (DAYOFWEEK + 5) % 7
            return f"TIMESTAMPADD(DAY, -MOD(DAYOFWEEK({wall}) + 5, 7), {day})"
        return f"TIMESTAMPADD(HOUR, HOUR({wall}) - MOD(HOUR({wall}), {self.hours}), {day})"

    def start(self, instant_ms: int, zone: str) -> int:
        """Epoch ms of the start of the period holding `instant_ms`, in `zone`."""
        return _ms(self._start_local(_local(instant_ms, zone)))

    def end(self, instant_ms: int, zone: str) -> int:
        """Epoch ms of the end (the next period's start) of the period holding `instant_ms`, in `zone`."""
        start = self._start_local(_local(instant_ms, zone))
        if self.kind == "month":
            following = (start.replace(year=start.year + 1, month=1) if start.month == 12
                         else start.replace(month=start.month + 1))
        else:
            following = start + (timedelta(days=7) if self.kind == "week" else timedelta(hours=self.hours))
        return _ms(following.replace(tzinfo=start.tzinfo, fold=0))

    def _start_local(self, local: datetime) -> datetime:
        """The wall-clock start (a naive time with the zone attached, fold 0) of the period holding `local`."""
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
        if self.kind == "week":
            return midnight - timedelta(days=midnight.weekday())
        if self.kind == "month":
            return midnight.replace(day=1)
        if self.kind == "hours":
            return midnight.replace(hour=local.hour - local.hour % self.hours)
        return midnight


DAY, WEEK, MONTH = Period("day"), Period("week"), Period("month")


def parse_period(text: str) -> Period:
    """day, week, month or Nh (N dividing 24); PeriodError otherwise."""
    if text in ("day", "week", "month"):
        return Period(text)
    hours = _HOURS.fullmatch(text)
    if hours and int(hours[1]) in HOUR_DIVISORS:
        return Period("hours", int(hours[1]))
    if hours:
        raise PeriodError(f"period {text!r}: N-hour periods restart at local midnight, so N divides 24: "
                          f"{', '.join(map(str, HOUR_DIVISORS))}")
    raise PeriodError(f"period {shown(text)} is not {PERIOD_FORMS}")


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_zone(name: object) -> str:
    """`name` if it is a known IANA time zone (such as Europe/Amsterdam or UTC), else PeriodError."""
    if not isinstance(name, str) or name not in _zones():
        what = shown(name) if isinstance(name, str) else type(name).__name__
        raise PeriodError(f"time zone {what} is not a known IANA name such as Europe/Amsterdam, "
                          "America/New_York or UTC")
    return name


def local_midnight_ms(day: date, zone: str) -> int:
    """Epoch ms of the first instant of local `day` in `zone`."""
    return _ms(datetime(day.year, day.month, day.day, tzinfo=zoneinfo.ZoneInfo(zone)))


def whole_periods(period: Period, first_day: date | None, last_day: date | None,
                  zone: str) -> tuple[int | None, int | None]:
    """[start, end) in epoch ms of the periods that overlap the local days first_day through last_day (None
    leaves a side open): a rollup over it covers every period it touches whole, so a rerun over the same days
    rewrites the same rows with the same values."""
    if first_day is not None and last_day is not None and last_day < first_day:
        raise PeriodError(f"--to {last_day} is before --from {first_day}")
    start = None if first_day is None else period.start(local_midnight_ms(first_day, zone), zone)
    end = None if last_day is None else period.end(local_midnight_ms(last_day + timedelta(days=1), zone) - 1,
                                                   zone)
    return start, end


def _local(instant_ms: int, zone: str) -> datetime:
    return datetime.fromtimestamp(instant_ms / 1000, zoneinfo.ZoneInfo(zone))


def _ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
