"""Rules that keep bad records off the main path, each with the reason it gives.

A rule is a SQL condition that is true when the record is bad, and the reason
(a SQL string expression) written to the dead-letter topic. The first rule that
matches gives the reason; a record no rule rejects is valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.errors import PipelineError
from pipeline.sql import interval_sql, sql_string

DECODE_ERROR_COLUMN = "decode_error"
KAFKA_TIMESTAMP_COLUMN = "kafka_ts"
PROCESSING_TIME_COLUMN = "proc_time"  # for lookup joins (e.g. of metadata) as of now


@dataclass(frozen=True)
class Rule:
    rejects: str  # SQL condition, true for a bad record
    reason: str  # SQL string expression

    @staticmethod
    def because(rejects: str, reason: str) -> Rule:
        """A rule whose reason is fixed text."""
        return Rule(rejects, sql_string(reason))


def undecodable() -> Rule:
    """Bytes the format could not decode: the format's own reason."""
    return Rule(f"{DECODE_ERROR_COLUMN} IS NOT NULL", f"{DECODE_ERROR_COLUMN}")


def missing(column: str) -> Rule:
    """An absent or empty id (compared, not trimmed: no string is built per record)."""
    return Rule.because(f"`{column}` IS NULL OR `{column}` = ''", f"missing {column}")


TEXT_FAULT = "TEXT_FAULT"  # a Java function of our Flink jar: what is wrong with a text, or NULL
MAX_TEXT_CHARS = 200  # the most characters a text field (an id, a kind, a unit, a tenant) may have


def plain_text(column: str, max_chars: int = MAX_TEXT_CHARS) -> Rule:
    """A text of more than `max_chars` characters, or with a control character (U+0000-U+001F,
    U+007F-U+009F), is bad: ids end up in keys, topics' records, Cassandra rows and reasons. NULL passes."""
    fault = f"{TEXT_FAULT}(`{column}`, {max_chars})"
    return Rule(f"{fault} IS NOT NULL", f"'{column} ' || {fault}")


def finite(column: str) -> Rule:
    """NaN and infinities are bad (x - x is 0 for every finite x, NaN otherwise); NULL passes."""
    return Rule(f"`{column}` - `{column}` <> 0",
                f"'{column} is not a finite number: ' || CAST(`{column}` AS STRING)")


TRUSTED_EVENT_TIME = "TRUSTED_EVENT_TIME"  # a Java function of our Flink jar, which each job's plan registers
UNTRUSTED_TIME = "TO_TIMESTAMP_LTZ(0, 3)"
# The bounds of a trusted event time, shared by the rowtime (trusted_event_time) and its rule (timestamp_in_range).
EARLIEST_EVENT_TIME = "2000-01-01 00:00:00"
MAX_HOURS_AHEAD = 24


def trusted_event_time(column: str, earliest: str = EARLIEST_EVENT_TIME,
                       max_ahead_hours: int = MAX_HOURS_AHEAD) -> str:
    """SQL: the record's event time if it may move the watermark, else epoch 0 (UNTRUSTED_TIME). Untrusted:
    missing, before `earliest` (UTC), or more than `max_ahead_hours` after the Kafka append time."""
    earliest_ms = _epoch_ms(earliest)
    if earliest_ms <= 0:
        raise PipelineError(f"earliest {earliest} must be after 1970-01-01: epoch 0 stands for an untrusted time")
    return f"{TRUSTED_EVENT_TIME}(`{column}`, {KAFKA_TIMESTAMP_COLUMN}, {earliest_ms}, {max_ahead_hours * 3_600_000})"


def timestamp_in_range(column: str, earliest: str = EARLIEST_EVENT_TIME,
                       max_ahead_hours: int = MAX_HOURS_AHEAD) -> Rule:
    """Event times before `earliest` or more than `max_ahead_hours` after the Kafka append time are bad."""
    return Rule(
        f"{trusted_event_time(column, earliest, max_ahead_hours)} = {UNTRUSTED_TIME}",
        f"'bad timestamp: {column} ' || COALESCE(CAST(`{column}` AS STRING), 'missing') || "
        f"' is before {earliest} UTC or more than {max_ahead_hours} h after the Kafka append time ' || "
        f"CAST({KAFKA_TIMESTAMP_COLUMN} AS STRING)",
    )


def behind_append_time(column: str, max_behind_s: int) -> Rule:
    """An event time more than `max_behind_s` before the Kafka append time is bad. The broker sets the append
    time of the sensor topics (LogAppendTime), so a tenant cannot move it; and since a record's partition may
    not fall further behind than that (see pipeline.plan.source_ddl), a tenant whose times stand still cannot
    hold back the watermark that the other tenants of its job share. NULL passes."""
    return Rule(f"`{column}` < {KAFKA_TIMESTAMP_COLUMN} - {interval_sql(max_behind_s * 1000)}",
                f"'event time too far behind: {column} ' || CAST(`{column}` AS STRING) || "
                f"' is more than {max_behind_s} s before the Kafka append time ' || "
                f"CAST({KAFKA_TIMESTAMP_COLUMN} AS STRING)")


def matches_tenant(column: str, topic_tenant: str) -> Rule:
    """A record that names another tenant than its topic's is rejected (an empty name is the topic's).

    `topic_tenant` is the SQL expression of the topic's tenant.
    """
    return Rule(f"`{column}` <> '' AND `{column}` <> {topic_tenant}",
                f"'unknown tenant: record says ' || `{column}` || ' on a topic of tenant ' || {topic_tenant}")


def any_rejects(rules: Sequence[Rule]) -> str:
    """A SQL condition: true when any of `rules` rejects the record."""
    return " OR ".join(f"({rule.rejects})" for rule in rules)


def rejection_reason(rules: Sequence[Rule]) -> str:
    """A SQL expression: the reason of the first rule that rejects the record, else NULL."""
    cases = " ".join(f"WHEN {rule.rejects} THEN {rule.reason}" for rule in rules)
    return f"CASE {cases} ELSE CAST(NULL AS STRING) END"


def _epoch_ms(utc: str) -> int:
    from datetime import UTC, datetime

    return int(datetime.fromisoformat(utc).replace(tzinfo=UTC).timestamp() * 1000)
