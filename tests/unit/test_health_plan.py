"""The sensor health plan names only its tenants' own topics, gives each N its own session window, keys
silence events by sensor, refuses silence minutes that are no positive whole number, and refuses the
savepoint of a plan whose session windows held other tenants."""

from __future__ import annotations

import re

import pytest

from jobs.alarm_rate import alarm_rate_job
from jobs.sensor_health import DEFAULT_SILENCE_MINUTES, sensor_health_job
from pipeline.job import RunSettings
from pipeline.plan import plan

TOPIC = re.compile(r"'topic' = '([^']+)'")


def test_the_plan_names_only_the_tenants_own_topics():
    ddl, inserts = plan(sensor_health_job(["acme", "globex"]), RunSettings())
    topics = [t for listed in TOPIC.findall("\n".join(ddl)) for t in listed.split(";")]
    assert sorted(topics) == sorted(f"{t}.{s}" for t in ("acme", "globex") for s in (
        "sensors.heartbeats", "results.silence", "results.health", "deadletter", "late"))
    assert len(inserts) == 3 and all("'exactly-once'" in d for d in ddl if "'sink.delivery-guarantee'" in d)
    assert sensor_health_job(["acme"]).topics("acme").all() == [  # what a runner creates
        "acme.sensors.heartbeats", "acme.results.silence", "acme.results.health", "acme.deadletter", "acme.late"]


def test_each_silence_minutes_gets_a_session_window_of_its_own():
    same = "\n".join(plan(sensor_health_job(["acme", "globex"]), RunSettings())[1])
    assert same.count("SESSION(TABLE `sensor_health__on_time` PARTITION BY") == 2  # silence and health queries
    assert f"INTERVAL '0 00:{DEFAULT_SILENCE_MINUTES}:00.000' DAY TO SECOND(3)" in same

    ddl, inserts = plan(sensor_health_job(["acme", "globex", "initech"],
                                          silence_minutes={"acme": 5, "globex": 15, "initech": 5}.__getitem__),
                        RunSettings())
    views = [d for d in ddl if d.startswith("CREATE TEMPORARY VIEW `sensor_health__on_time_")]
    assert views == [
        "CREATE TEMPORARY VIEW `sensor_health__on_time_5min` AS SELECT * FROM `sensor_health__on_time` "
        "WHERE `topic_tenant` IN ('acme', 'initech')",
        "CREATE TEMPORARY VIEW `sensor_health__on_time_15min` AS SELECT * FROM `sensor_health__on_time` "
        "WHERE `topic_tenant` IN ('globex')"]
    assert "INTERVAL '0 00:05:00.000' DAY TO SECOND(3)" in inserts[0]
    assert "INTERVAL '0 00:15:00.000' DAY TO SECOND(3)" in inserts[0]


def test_silence_events_are_keyed_by_sensor_and_health_records_by_tenant():
    ddl, _ = plan(sensor_health_job(["acme"]), RunSettings())
    keys = {t: k for t, k in (re.search(r"`sensor_health__(\w+)`.*'key.fields' = '(\w+)'", d, re.S).groups()
                              for d in ddl if "'key.fields'" in d)}
    assert keys == {"silence": "sensor_id", "health": "tenant"}


@pytest.mark.parametrize("minutes", [0, -3, 2.5, "10"])
def test_silence_minutes_must_be_a_positive_whole_number(minutes):
    with pytest.raises(ValueError, match="silence minutes must be a positive whole number"):
        sensor_health_job(["acme"], silence_minutes=lambda tenant: minutes)


def _job(minutes: dict[str, int]):
    return sensor_health_job(sorted(minutes), silence_minutes=minutes.__getitem__)


def test_the_plan_records_each_tenants_silence_minutes_and_a_windowed_job_nothing():
    assert _job({"acme": 5, "globex": 15}).parameters() == {"silence_minutes.acme": "5", "silence_minutes.globex": "15"}
    assert alarm_rate_job(["acme"]).parameters() == {} and alarm_rate_job(["acme"]).restore_problem({"x": "1"}) == ""


@pytest.mark.parametrize(("old", "new"), [
    ({"acme": 2}, {"acme": 3}),  # one tenant: any change
    ({"acme": 2, "globex": 3}, {"acme": 2, "globex": 4}),  # the same windows in the same order
    ({"acme": 5, "globex": 5}, {"acme": 7, "globex": 7}),
    ({"acme": 5, "globex": 15}, {"acme": 5, "globex": 15}),
])
def test_a_savepoint_fits_a_plan_whose_tenants_keep_their_session_windows(old, new):
    assert _job(new).restore_problem(_job(old).parameters()) == ""


@pytest.mark.parametrize(("old", "new", "changes"), [
    ({"acme": 2, "globex": 3}, {"acme": 4, "globex": 3}, "tenant acme: 2 -> 4"),  # the two windows swap places
    ({"acme": 2, "globex": 2}, {"acme": 2, "globex": 3}, "tenant globex: 2 -> 3"),  # one window becomes two
    ({"acme": 2, "globex": 3}, {"acme": 3, "globex": 3}, "tenant acme: 2 -> 3"),  # two become one
    ({"a": 2, "b": 2, "c": 3}, {"a": 2, "b": 3, "c": 3}, "tenant b: 2 -> 3"),  # b moves, the shape stays
    ({"a": 2, "b": 3}, {"a": 4, "b": 1}, "tenant a: 2 -> 4; tenant b: 3 -> 1"),
])
def test_a_savepoint_is_refused_when_tenants_would_move_to_other_session_windows(old, new, changes):
    problem = _job(new).restore_problem(_job(old).parameters())
    assert f"its silence minutes changed ({changes}) so that tenants move to other session windows" in problem
