"""The functions of our Flink jar that plans call give, at every boundary, what the SQL they replace gives:
the trusted event time (epoch 0 when untrusted) and the tenant of a source topic. Local Flink, no server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.flink import CheckpointSettings, streaming_table_env
from pipeline.execute import execute_sql
from pipeline.job import TOPIC_TENANT
from pipeline.plan import jvm_functions_ddl
from pipeline.validation import KAFKA_TIMESTAMP_COLUMN, trusted_event_time

EARLIEST = 946_684_800_000  # 2000-01-01 00:00:00 UTC, the default earliest event time
DAY = 24 * 3600 * 1000
APPENDED = 1_767_225_600_000  # 2026-01-01, the Kafka append time of the rows below


@pytest.fixture(scope="module")
def query(tmp_path_factory):
    env = streaming_table_env(CheckpointSettings(tmp_path_factory.mktemp("functions") / "checkpoints"))
    for statement in jvm_functions_ddl():
        execute_sql(env, statement)

    def rows(sql: str) -> list[tuple]:
        with execute_sql(env, sql).collect() as results:
            return [tuple(row) for row in results]

    return rows


def _ltz(ms: int | None) -> str:
    return "CAST(NULL AS TIMESTAMP_LTZ(3))" if ms is None else f"TO_TIMESTAMP_LTZ({ms}, 3)"


def _utc_text(ms: int) -> str:
    """How Flink writes a TIMESTAMP_LTZ(3) as text in the jobs' session time zone, UTC."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def test_trusted_event_time_is_the_event_time_exactly_within_the_bounds_else_epoch_zero(query):
    cases = {  # (event time, append time): trusted
        (EARLIEST - 1, APPENDED): False, (EARLIEST, APPENDED): True, (APPENDED, APPENDED): True,
        (APPENDED + DAY, APPENDED): True, (APPENDED + DAY + 1, APPENDED): False, (None, APPENDED): False,
        (0, APPENDED): False, (APPENDED + 5 * DAY, None): True, (EARLIEST - 1, None): False,
    }
    values = ", ".join(f"({_ltz(event)}, {_ltz(appended)}, {i})" for i, (event, appended) in enumerate(cases))
    # The SQL the function replaced, as the oracle: untrusted when this is true (NULL: trusted).
    untrusted_sql = (f"`event_time` IS NULL OR `event_time` < TO_TIMESTAMP_LTZ({EARLIEST}, 3) "
                     f"OR `event_time` > {KAFKA_TIMESTAMP_COLUMN} + INTERVAL '24' HOUR")
    rows = query(f"SELECT i, {trusted_event_time('event_time')} = `event_time`, "
                 f"CAST({trusted_event_time('event_time')} AS STRING), ({untrusted_sql}) IS TRUE "
                 f"FROM (VALUES {values}) AS t(`event_time`, {KAFKA_TIMESTAMP_COLUMN}, i)")
    by_case = {i: (kept, time, oracle_untrusted) for i, kept, time, oracle_untrusted in rows}
    for i, ((event, _), trusted) in enumerate(cases.items()):
        kept, time, oracle_untrusted = by_case[i]
        assert oracle_untrusted is not trusted, (event, "the oracle disagrees with the table")
        assert time == _utc_text(event if trusted else 0), event
        if trusted:
            assert kept is True, event  # the event time itself, to the millisecond


def test_an_earliest_bound_at_or_before_1970_is_refused():
    with pytest.raises(ValueError, match="epoch 0 stands for an untrusted time"):
        trusted_event_time("event_time", earliest="1970-01-01 00:00:00")


def test_topic_tenant_is_the_topic_without_its_suffix_and_null_without_it(query):
    topics = ["acme.sensors.alarms", "globex.sensors.alarms", "acme.sensors.alarms", "acme.sensors.flow",
              "a.b.sensors.alarms", ".sensors.alarms", None]
    values = ", ".join(f"({'CAST(NULL AS STRING)' if t is None else repr(t)}, {i})" for i, t in enumerate(topics))
    rows = dict(query(f"SELECT i, {TOPIC_TENANT}(topic, '.sensors.alarms') FROM (VALUES {values}) AS t(topic, i)"))
    assert [rows[i] for i in range(len(topics))] == ["acme", "globex", "acme", None, "a.b", "", None]
