"""`tenantstream rollup`'s arguments (bad ones: one line, exit 2, before any server), the alert trigger's choice
of rollups and its throttle, and the tenant's time zone in asset files. (The generic hostile-name walk of
test_cli_hostile covers --tenant, --database, --keyspace and --parallelism.)"""

from __future__ import annotations

from datetime import datetime

import pytest

import submit.rollup
from jobs.rollup import ROLLUPS, Rollup, RollupError
from jobs.tables import RESULT_TABLES
from operators.periods import DAY, parse_period
from operators.ranges import QueryError, parse_query
from operators.rollups import Throttle
from schemas.assets import AssetError, parse_assets
from submit.cli import main
from submit.rollup import alert_rollups


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@pytest.fixture
def no_servers(monkeypatch):
    """A rollup whose arguments pass the checks fails here instead of reaching the metadata store."""
    def unreachable(*args, **kwargs):
        raise AssertionError("reached the metadata store")
    monkeypatch.setattr(submit.rollup, "MetadataStore", unreachable)


@pytest.mark.parametrize(("argv", "words"), [
    (["--period", "5h"], "N divides 24"), (["--period", "year"], "is not day, week, month or Nh"),
    (["--period", "12h\n"], "is not day"), (["--period", "\u0661h"], "is not day"),
    (["--period", "day", "--from", "2024-02-30"], "a date is YYYY-MM-DD"),
    (["--period", "day", "--from", "20240229"], "a date is YYYY-MM-DD"),
    (["--period", "day", "--to", "2024-W09"], "a date is YYYY-MM-DD"),
    (["--period", "day", "--to", "2024-02-29T00:00"], "a date is YYYY-MM-DD"),
    (["--period", "day", "--keys", "station_id"], "keys are COLUMN=VALUE"),
    (["--period", "day", "--keys", "=S1"], "keys are COLUMN=VALUE"),
    (["--period", "day", "--keys", "station_id=S1,station_id=S2"], "is given twice"),
    (["--period", "day", "--keys", "station_id=a\x1bb"], "printable text"),
    (["--period", "day", "--keys", "station_id=" + "x" * 201], "at most 200 characters"),
    (["--period", "day", "--keys", "sensor_id=S1"], "has no key 'sensor_id'; its keys are station_id, datapoint_id"),
    (["--period", "day", "--from", "2024-03-02", "--to", "2024-03-01"], "--to 2024-03-01 is before --from"),
    ([], "name the period with --period"),
    (["--on-alerts", "--period", "day"], "--on-alerts recomputes"),
])
def test_bad_rollup_arguments_are_one_line_and_exit_2(argv, words, no_servers, capsys):
    try:
        code = main(["rollup", "alarm_rate", "--tenant", "acme", *argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    assert (code, out, err.count("\n")) == (2, "", 1), err
    assert err.startswith("tenantstream: rollup: error: ") and words in err and "Traceback" not in err


def test_key_values_are_string_literals_in_the_plan():
    rollup = Rollup(ROLLUPS["alarm_rate"], "acme", DAY, "UTC", only=((("station_id", "S1' OR '1'='1"),),))
    assert "`station_id` = 'S1'' OR ''1''=''1'" in rollup.filter_sql()
    assert rollup.filter_sql().startswith("`tenant` = 'acme'")
    with pytest.raises(ValueError, match="tenant"):
        Rollup(ROLLUPS["alarm_rate"], "globex.results", DAY, "UTC")


def test_the_throttle_lets_a_key_run_once_a_minute():
    throttle = Throttle(60.0)
    assert throttle.due("k", 100.0) and not throttle.due("k", 159.9) and throttle.due("k", 160.0)
    assert throttle.due("other", 100.5)


def alert(key: str, at: str, job: str = "alarm_rate") -> dict:
    return {"tenant": "acme", "job": job, "key": key, "window_start": ms(at), "window_end": ms(at) + 60_000,
            "metric": "rate", "value": 0.9, "threshold": 0.5}


def test_an_alert_asks_for_its_keys_day_week_and_month_at_most_once_a_minute():
    kind, throttle = ROLLUPS["alarm_rate"], Throttle(60.0)
    columns = ("station_id", "datapoint_id")
    first = alert_rollups(kind, "acme", "Europe/Amsterdam", columns,
                          [alert("S1/D1", "2024-10-27T02:30+01:00"), alert("S1/D1", "2024-10-27T02:31+01:00"),
                           alert("S2/D/x", "2024-10-27T03:00+01:00"), alert("S9", "2024-10-27T03:00+01:00"),
                           alert("S3/D1", "2024-10-27T03:00+01:00", job="flow")], throttle, now=0.0)
    assert [(r.period.label, r.start_ms, r.end_ms) for r in first] == [
        ("day", ms("2024-10-27T00:00+02:00"), ms("2024-10-28T00:00+01:00")),
        ("week", ms("2024-10-21T00:00+02:00"), ms("2024-10-28T00:00+01:00")),
        ("month", ms("2024-10-01T00:00+02:00"), ms("2024-11-01T00:00+01:00"))]
    assert {r.only for r in first} == {((("station_id", "S1"), ("datapoint_id", "D1")),
                                        (("station_id", "S2"), ("datapoint_id", "D/x")))}
    assert alert_rollups(kind, "acme", "Europe/Amsterdam", columns, [alert("S1/D1", "2024-10-27T05:00+01:00")],
                         throttle, now=30.0) == []
    later = alert_rollups(kind, "acme", "Europe/Amsterdam", columns, [alert("S1/D1", "2024-10-28T05:00+01:00")],
                          throttle, now=30.0)
    assert [r.period.label for r in later] == ["day", "week"]  # a new day and ISO week; the month ran 30 s ago
    assert [r.period for r in alert_rollups(kind, "acme", "Europe/Amsterdam", columns,
                                            [alert("S1/D1", "2024-10-27T05:00+01:00")], throttle, now=61.0)] == \
        [parse_period(p) for p in ("day", "week", "month")]


def test_a_tenants_time_zone_is_checked_in_the_asset_file():
    tenant = {"id": "acme", "name": "Acme", "alarm_rate_threshold": 0.1, "flow_breach_threshold": 0.1}
    assert parse_assets({"tenants": [{**tenant, "timezone": "America/New_York"}]}, "a.yaml").tenants[0].timezone \
        == "America/New_York"
    assert parse_assets({"tenants": [tenant]}, "a.yaml").tenants[0].timezone is None
    with pytest.raises(AssetError, match=r"tenants\[0\]\.timezone: time zone 'Mars/Base' is not a known IANA"):
        parse_assets({"tenants": [{**tenant, "timezone": "Mars/Base"}]}, "a.yaml")
    with pytest.raises(RollupError):
        Rollup(ROLLUPS["flow_aggregates"], "acme", DAY, "UTC", only=((),))


def test_query_reads_a_rollup_table_by_its_whole_key_period_included():
    query = parse_query(RESULT_TABLES, "alarm_rate_rollup", keyspace="tenantstream", tenant="acme",
                        keys=["station_id=S1", "datapoint_id=D1", "period=12h"], after="2024-03-01")
    text, params = query.cql()
    assert "tenant = ? AND station_id = ? AND datapoint_id = ? AND period = ? AND window_start >= ?" in text
    assert params == ["acme", "S1", "D1", "12h", ms("2024-03-01T00:00Z")]
    with pytest.raises(QueryError, match="add --key period="):
        parse_query(RESULT_TABLES, "flow_aggregates_rollup", keyspace="tenantstream", tenant="acme",
                    keys=["sensor_id=P1"], after="2024-03-01")
