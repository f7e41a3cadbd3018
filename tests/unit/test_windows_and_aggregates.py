"""Tumbling windows label [start, end) by both edges; aggregates and rules render to Flink SQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from operators import Count, CountIf, Max, Mean, Min, Share, Sum, tumbling
from operators.alarms import value_above_threshold
from pipeline.sql import sql_string
from pipeline.validation import Rule, rejection_reason


def ms(hh: int, mm: int, ss: int = 0) -> int:
    return int(datetime(2026, 1, 1, hh, mm, ss, tzinfo=UTC).timestamp() * 1000)


def test_readings_at_04_00_04_05_04_10_fall_in_the_window_ending_04_15():
    window = tumbling(minutes=15)
    for t in (ms(4, 0), ms(4, 5), ms(4, 10), ms(4, 14, 59)):
        assert (window.start_of(t), window.end_of(t)) == (ms(4, 0), ms(4, 15))
    assert window.start_of(ms(4, 15)) == ms(4, 15)  # the right edge belongs to the next window


def test_window_size_must_be_whole_seconds():
    assert tumbling(minutes=1).interval_sql() == "INTERVAL '0 00:01:00.000' DAY TO SECOND(3)"
    assert tumbling(minutes=15).interval_sql() == "INTERVAL '0 00:15:00.000' DAY TO SECOND(3)"  # no 99 s cap
    with pytest.raises(ValueError, match="whole number of seconds"):
        tumbling(seconds=0)


def test_aggregates_render_to_flink_sql():
    assert Count().sql() == "COUNT(*)"
    assert CountIf(value_above_threshold).sql() == (
        "COUNT(*) FILTER (WHERE `value` > `valueThreshold` AND `valueThreshold` <> 999999)")
    assert Share(value_above_threshold).sql().startswith("CAST(COUNT(*) FILTER (WHERE")
    assert [a.sql() for a in (Sum("value"), Mean("value"), Min("value"), Max("value"))] == [
        "SUM(`value`)", "AVG(`value`)", "MIN(`value`)", "MAX(`value`)"]


def test_first_matching_rule_gives_the_reason_and_quotes_are_escaped():
    rules = [Rule.because("a IS NULL", "missing a"), Rule.because("b < 0", "b is 'negative'")]
    assert rejection_reason(rules) == (
        "CASE WHEN a IS NULL THEN 'missing a' WHEN b < 0 THEN 'b is ''negative''' ELSE CAST(NULL AS STRING) END")
    assert sql_string("it's") == "'it''s'"
