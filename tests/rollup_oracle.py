"""An independent, plain-Python computation of the rollups (jobs/rollup.py) from stream window rows.

It shares nothing with the job's SQL nor with operators/periods.py: a window's period is found from the local
calendar date (and hour) of its start, with `date` arithmetic and ISO calendar functions, and the period's
bounds are the local midnights (or hours) of those dates made instants by zoneinfo.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Bounds = tuple[int, int]


def _instant(day: date, hour: int, zone: ZoneInfo) -> int:
    """Epoch ms of local `hour`:00 on `day` (hour 24 is the next day's midnight)."""
    if hour == 24:
        day, hour = day + timedelta(days=1), 0
    return int(datetime.combine(day, time(hour), tzinfo=zone).timestamp() * 1000)


def period_bounds(start_ms: int, label: str, zone_name: str) -> Bounds:
    """[start, end) in epoch ms of the period `label` (day, week, month, Nh) that holds the instant."""
    zone = ZoneInfo(zone_name)
    local = datetime.fromtimestamp(start_ms / 1000, zone)
    today = local.date()
    if label == "day":
        return _instant(today, 0, zone), _instant(today + timedelta(days=1), 0, zone)
    if label == "week":
        year, week, _ = today.isocalendar()
        monday = date.fromisocalendar(year, week, 1)
        return _instant(monday, 0, zone), _instant(monday + timedelta(weeks=1), 0, zone)
    if label == "month":
        first = date(today.year, today.month, 1)
        following = date(today.year + today.month // 12, today.month % 12 + 1, 1)
        return _instant(first, 0, zone), _instant(following, 0, zone)
    size = int(label.removesuffix("h"))
    # The wall-clock hour; at the autumn change the repeated hour (fold 1) is the same hour of the clock.
    first_hour = local.hour // size * size
    return _instant(today, first_hour, zone), _instant(today, first_hour + size, zone)


def alarm_rate_rollup(windows: Iterable[Mapping], label: str, zone: str) -> dict[tuple, tuple]:
    """(station, datapoint, start, end) -> (fires, events, rate) from alarm-rate window rows."""
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for w in windows:
        key = (w["station_id"], w["datapoint_id"], *period_bounds(w["window_start"], label, zone))
        totals[key][0] += w["fires"]
        totals[key][1] += w["events"]
    return {key: (fires, events, fires / events if events else 0.0) for key, (fires, events) in totals.items()}


FLOW_FIELDS = ("readings", "breaches", "sum", "mean", "min", "max", "increase", "energy_kwh")


def flow_rollup(windows: Iterable[Mapping], label: str, zone: str) -> dict[tuple, tuple]:
    """(sensor, element, kind, start, end) -> FLOW_FIELDS from flow window rows: counts, sums, increases and
    energies add up, means are weighted by their windows' readings, min and max combine; None where no window
    had a value."""
    groups: dict[tuple, list[Mapping]] = defaultdict(list)
    for w in windows:
        groups[(w["sensor_id"], w["element_id"], w["kind"], *period_bounds(w["window_start"], label, zone))].append(w)
    out = {}
    for key, rows in groups.items():
        def present(field: str, rows: list[Mapping] = rows) -> list[float]:
            return [r[field] for r in rows if r[field] is not None]

        weighted = [(r["mean"], r["readings"]) for r in rows if r["mean"] is not None]
        weight = sum(n for _, n in weighted)
        out[key] = (sum(r["readings"] for r in rows), sum(r["breaches"] for r in rows),
                    sum(present("sum")) if present("sum") else None,
                    sum(m * n for m, n in weighted) / weight if weight else None,
                    min(present("min"), default=None), max(present("max"), default=None),
                    sum(present("increase")) if present("increase") else None,
                    sum(present("energy_kwh")) if present("energy_kwh") else None)
    return out
