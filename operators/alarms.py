"""Alarm-rate logic for BTS monitoring data: when an alarm fires, and what a window reports."""

from __future__ import annotations

from operators.aggregates import Count, CountIf, Share
from operators.conditions import Condition

NO_THRESHOLD = 999999

value_above_threshold = Condition(
    "value above a real threshold",
    f"`value` > `valueThreshold` AND `valueThreshold` <> {NO_THRESHOLD}",
)

ALARM_RATE = {"fires": CountIf(value_above_threshold), "events": Count(), "rate": Share(value_above_threshold)}
