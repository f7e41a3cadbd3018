"""Periods in a tenant's time zone (operators/periods.py): DST days, ISO weeks, months, leap days, N hours."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from operators.periods import (
    DAY,
    MONTH,
    WEEK,
    Period,
    PeriodError,
    check_zone,
    parse_period,
    whole_periods,
)
from tests.rollup_oracle import period_bounds

H = 3_600_000


def ms(text: str) -> int:
    """Epoch ms of an ISO time with its offset."""
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@pytest.mark.parametrize(("zone", "day", "hours"), [
    ("Europe/Amsterdam", "2024-03-31T12:00+02:00", 23), ("Europe/Amsterdam", "2024-10-27T12:00+01:00", 25),
    ("America/New_York", "2024-03-10T12:00-04:00", 23), ("America/New_York", "2024-11-03T12:00-05:00", 25),
    ("Europe/Amsterdam", "2024-07-01T12:00+02:00", 24), ("UTC", "2024-03-31T12:00Z", 24)])
def test_a_day_starts_at_local_midnight_and_dst_days_are_23_or_25_hours(zone, day, hours):
    start, end = DAY.start(ms(day), zone), DAY.end(ms(day), zone)
    local = datetime.fromtimestamp(start / 1000, ZoneInfo(zone))
    assert (local.date().isoformat(), local.hour, local.minute) == (day[:10], 0, 0)
    assert end - start == hours * H


def test_day_bounds_are_the_local_midnights():
    assert DAY.start(ms("2024-03-31T12:00+02:00"), "Europe/Amsterdam") == ms("2024-03-31T00:00+01:00")
    assert DAY.end(ms("2024-03-31T12:00+02:00"), "Europe/Amsterdam") == ms("2024-04-01T00:00+02:00")
    assert DAY.start(ms("2024-11-03T23:59-05:00"), "America/New_York") == ms("2024-11-03T00:00-04:00")


def test_iso_weeks_start_on_monday_and_hold_the_leap_day():
    leap = ms("2024-02-29T10:00+01:00")  # a Thursday
    assert WEEK.start(leap, "Europe/Amsterdam") == ms("2024-02-26T00:00+01:00")
    assert WEEK.end(leap, "Europe/Amsterdam") == ms("2024-03-04T00:00+01:00")
    # The week of the spring change is an hour short; a Monday 00:30 belongs to its own week.
    assert WEEK.end(ms("2024-03-27T00:00+01:00"), "Europe/Amsterdam") - WEEK.start(
        ms("2024-03-27T00:00+01:00"), "Europe/Amsterdam") == 7 * 24 * H - H
    assert WEEK.start(ms("2024-03-04T00:30+01:00"), "Europe/Amsterdam") == ms("2024-03-04T00:00+01:00")


def test_months_cross_the_year_and_february_has_its_leap_day():
    assert MONTH.start(ms("2024-02-29T23:59+01:00"), "Europe/Amsterdam") == ms("2024-02-01T00:00+01:00")
    assert MONTH.end(ms("2024-02-29T23:59+01:00"), "Europe/Amsterdam") == ms("2024-03-01T00:00+01:00")
    assert MONTH.end(ms("2028-02-10T00:00Z"), "UTC") - MONTH.start(ms("2028-02-10T00:00Z"), "UTC") == 29 * 24 * H
    assert MONTH.end(ms("2024-12-31T23:00-05:00"), "America/New_York") == ms("2025-01-01T00:00-05:00")
    # UTC 2024-03-01T03:00 is still February in New York.
    assert MONTH.start(ms("2024-03-01T03:00Z"), "America/New_York") == ms("2024-02-01T00:00-05:00")


def test_n_hour_periods_follow_the_local_clock_across_both_changes():
    twelve = parse_period("12h")
    assert twelve.end(ms("2024-03-31T01:00+01:00"), "Europe/Amsterdam") - twelve.start(
        ms("2024-03-31T01:00+01:00"), "Europe/Amsterdam") == 11 * H
    one = parse_period("1h")
    first, second = ms("2024-10-27T02:30+02:00"), ms("2024-10-27T02:30+01:00")  # 02:30 twice in Amsterdam
    assert one.start(first, "Europe/Amsterdam") == one.start(second, "Europe/Amsterdam") == ms("2024-10-27T02:00+02:00")
    assert one.end(second, "Europe/Amsterdam") == ms("2024-10-27T03:00+01:00")
    assert parse_period("6h").start(ms("2024-11-03T13:00-05:00"), "America/New_York") == ms("2024-11-03T12:00-05:00")


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "America/New_York", "UTC"])
@pytest.mark.parametrize("label", ["day", "week", "month", "1h", "12h", "24h"])
def test_every_quarter_hour_around_the_changes_and_month_ends_agrees_with_the_oracle(zone, label):
    period = parse_period(label)
    for span_start in ("2024-02-27T00:00Z", "2024-03-08T00:00Z", "2024-03-29T00:00Z", "2024-10-25T00:00Z",
                       "2024-11-01T00:00Z", "2024-12-30T00:00Z", "2028-02-28T00:00Z"):
        for step in range(4 * 24 * 4):
            instant = ms(span_start) + step * H // 4
            assert (period.start(instant, zone), period.end(instant, zone)) == period_bounds(instant, label, zone)


def test_parse_period_names_the_forms():
    assert [parse_period(t).label for t in ("day", "week", "month", "1h", "12h", "24h")] == \
        ["day", "week", "month", "1h", "12h", "24h"]
    assert parse_period("8h") == Period("hours", 8)
    for bad, words in (("5h", "N divides 24"), ("0h", "N divides 24"), ("year", "is not day, week"),
                       ("", "is not day"), ("12H", "is not day"), ("x" * 500, "...")):
        with pytest.raises(PeriodError, match=words.replace(".", r"\.")):
            parse_period(bad)


def test_time_zones_are_known_iana_names():
    assert check_zone("Europe/Amsterdam") == "Europe/Amsterdam"
    for bad in ("Mars/Olympus", "", "../etc/passwd", "europe/amsterdam", "\x00", 5, None):
        with pytest.raises(PeriodError, match="not a known IANA name"):
            check_zone(bad)


def test_whole_periods_cover_every_period_the_days_touch():
    zone = "Europe/Amsterdam"
    assert whole_periods(DAY, date(2024, 3, 31), date(2024, 3, 31), zone) == (
        ms("2024-03-31T00:00+01:00"), ms("2024-04-01T00:00+02:00"))
    assert whole_periods(WEEK, date(2024, 2, 29), date(2024, 3, 5), zone) == (
        ms("2024-02-26T00:00+01:00"), ms("2024-03-11T00:00+01:00"))
    assert whole_periods(MONTH, None, date(2024, 2, 29), "UTC") == (None, ms("2024-03-01T00:00Z"))
    with pytest.raises(PeriodError, match="before --from"):
        whole_periods(DAY, date(2024, 3, 2), date(2024, 3, 1), zone)
