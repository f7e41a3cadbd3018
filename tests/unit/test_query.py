"""`tenantstream query`: every bad argument gets its own message, each kind renders to one bound CQL slice."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from jobs.alarm_rate import ALARM_RATE_TABLE
from jobs.tables import RESULT_TABLES
from operators.ranges import Aggregate, QueryError, format_time, parse_query, parse_time
from submit.cli import main
from submit.query import format_answer, json_lines

T0400, T0415, T0500 = 1767240000000, 1767240900000, 1767243600000  # 2026-01-01 04:00, 04:15, 05:00 UTC
KEYS = ["station_id=S1", "datapoint_id=D2"]
COLUMNS = "tenant, station_id, datapoint_id, window_start, window_end, fires, events, rate"
WHERE_KEY = "FROM tenantstream.alarm_rate WHERE tenant = ? AND station_id = ? AND datapoint_id = ?"


def query(**words):
    """parse_query for alarm_rate with a good argument for everything that `words` leaves out."""
    args = {"keyspace": "tenantstream", "tenant": "acme", "keys": KEYS, "within": None, **words}
    if not {"before", "after", "within"} & {k for k, v in args.items() if v is not None}:
        args["within"] = ("2026-01-01T04:00", "2026-01-01T05:00")
    return parse_query(RESULT_TABLES, args.pop("table", "alarm_rate"), **args)


@pytest.mark.parametrize(("words", "message"), [
    ({"table": "flow"}, "no result table 'flow'; the tables are alarm_rate"),
    ({"keyspace": "bad-name"}, "--keyspace 'bad-name' is not a keyspace name"),
    ({"tenant": None}, "name the tenant with --tenant"),
    ({"tenant": ""}, "name the tenant with --tenant"),
    ({"keys": []}, "alarm_rate rows are found by their whole key: add --key station_id=... --key datapoint_id=..."),
    ({"keys": ["station_id=S1"]}, "alarm_rate rows are found by their whole key: add --key datapoint_id=..."),
    ({"keys": [*KEYS, "rack=R1"]}, "alarm_rate has no key 'rack'; its keys are station_id, datapoint_id"),
    ({"keys": [*KEYS, "tenant=globex"]}, "the tenant is given with --tenant, not --key"),
    ({"keys": ["station_id", "datapoint_id=D2"]}, "--key takes COLUMN=VALUE, not 'station_id'"),
    ({"keys": [*KEYS, "station_id=S2"]}, "--key station_id is given twice"),
    ({"keys": ["station_id=", "datapoint_id=D2"]}, "--key station_id= has no value"),
    ({"within": ()}, "--within takes START END, not 0 time(s)"),
    ({"before": "2026-01-01T04:15", "after": "2026-01-01T04:00"},
     "give one of --before, --after and --within, not --before and --after"),
    ({"before": "yesterday"}, "--before: 'yesterday' is not a time; give ISO-8601 such as 2026-01-01T04:15"),
    ({"after": "2026-13-01T00:00"}, "--after: '2026-13-01T00:00' is not a time"),
    ({"after": "1.5e12"}, "--after: '1.5e12' is not a time"),
    ({"within": ("2026-01-01T04:00", "soon")}, "--within END: 'soon' is not a time"),
    ({"before": " "}, "--before: the time is missing; give ISO-8601"),
    ({"within": ("", "2026-01-01T05:00")}, "--within START: the time is missing"),
    ({"before": "9" * 20}, "--before: '99999999999999999999' is out of range (years 1 to 9999)"),
    ({"within": ("2026-01-01T05:00", "2026-01-01T04:00")},
     "--within: end 2026-01-01T04:00:00Z is not after start 2026-01-01T05:00:00Z"),
    ({"within": ("2026-01-01T04:00Z", "2026-01-01T06:00+02:00")},
     "--within: end 2026-01-01T04:00:00Z is not after start 2026-01-01T04:00:00Z"),
    ({"total": "station_id"}, "--sum: station_id holds text, not numbers; the numeric fields of alarm_rate are "
                              "fires, events, rate"),
    ({"mean": "window_start"}, "--mean: window_start holds timestamp, not numbers"),
    ({"mean": "temperature"}, "--mean: alarm_rate has no field 'temperature'; its numeric fields are fires, "
                              "events, rate"),
    ({"total": "fires", "mean": "rate"}, "give one of --sum and --mean, not both"),
    ({"limit": 0}, "--limit is at least 1, not 0"),
    ({"limit": 5, "total": "fires"}, "--limit shortens the list of windows, but --sum is over the whole range"),
])
def test_each_bad_argument_gets_its_own_message(words, message):
    with pytest.raises(QueryError) as err:
        query(**words)
    assert str(err.value).startswith(message)


def test_missing_kind_is_asked_for():
    with pytest.raises(QueryError, match=r"^say which windows: --before TIME, --after TIME or --within START END$"):
        parse_query(RESULT_TABLES, "alarm_rate", keyspace="tenantstream", tenant="acme", keys=KEYS)


@pytest.mark.parametrize(("words", "where", "times"), [
    ({"before": "2026-01-01T04:15"}, "window_start < ?", [T0415]),
    ({"after": "2026-01-01T04:15"}, "window_start >= ?", [T0415]),
    ({"within": ("2026-01-01T04:00", "2026-01-01T05:00")}, "window_start >= ? AND window_start < ?",
     [T0400, T0500]),
])
def test_each_kind_renders_to_a_slice_of_one_partition_with_bound_values(words, where, times):
    text, params = query(**words).cql()
    assert text == f"SELECT {COLUMNS} {WHERE_KEY} AND {where}"
    assert params == ["acme", "S1", "D2", *times]
    assert "ALLOW FILTERING" not in text


def test_keys_render_in_the_tables_key_order_and_limit_is_bound():
    text, params = query(keys=list(reversed(KEYS)), before="2026-01-01T04:15", limit=10).cql()
    assert text == f"SELECT {COLUMNS} {WHERE_KEY} AND window_start < ? LIMIT ?"
    assert params == ["acme", "S1", "D2", T0415, 10]


def test_values_never_enter_the_statement_text():
    text, params = query(tenant="x' OR 1=1 --", keys=["station_id=S1'; DROP TABLE t", "datapoint_id=D2"]).cql()
    assert "DROP" not in text and "OR 1=1" not in text
    assert params[:2] == ["x' OR 1=1 --", "S1'; DROP TABLE t"]


@pytest.mark.parametrize(("text", "ms"), [
    ("2026-01-01T04:15", T0415),
    ("2026-01-01T04:15Z", T0415),
    ("2026-01-01T04:15:00+00:00", T0415),
    ("2026-01-01T06:15+02:00", T0415),
    ("2026-01-01T01:15-03:00", T0415),
    ("2026-01-01 04:15", T0415),
    (" 2026-01-01T04:15 ", T0415),
    ("2026-01-01T04:15:00.250Z", T0415 + 250),
    ("2026-01-01", T0400 - 4 * 3_600_000),
    ("1767240900000", T0415),
    ("0", 0),
])
def test_times_are_iso_8601_naive_meaning_utc_or_epoch_milliseconds(text, ms):
    assert parse_time(text, "--after") == ms


def test_times_print_as_iso_8601_utc_with_milliseconds_only_when_there_are_some():
    assert format_time(T0415) == "2026-01-01T04:15:00Z"
    assert format_time(T0415 + 250) == "2026-01-01T04:15:00.250Z"
    assert parse_time(format_time(T0415 + 250), "--after") == T0415 + 250


def test_sum_is_exact_over_whole_numbers_and_rounded_once_over_doubles():
    big = [{"fires": 2**62}, {"fires": 2**62}, {"fires": None}]
    assert Aggregate("sum", "fires", integer=True).of(big) == 2**63  # CQL's bigint sum would overflow
    assert Aggregate("mean", "events", integer=True).of([{"events": 10}, {"events": 11}]) == 10.5  # CQL avg: 10
    assert Aggregate("sum", "rate", integer=False).of([{"rate": 0.1}] * 10) == 1.0  # plain sum: 0.9999999999999999
    assert Aggregate("sum", "fires", integer=True).of([]) == 0
    assert Aggregate("mean", "rate", integer=False).of([]) is None


@dataclass(frozen=True)
class HealthTable:
    """A table shaped like a future job's: plugged in by name without changing the query code."""

    name: str = "health"
    partition_key: tuple[str, ...] = ("tenant", "sensor_id")
    clustering: tuple[str, ...] = ("window_start",)

    def columns(self) -> list[tuple[str, str]]:
        return [("tenant", "text"), ("sensor_id", "text"), ("window_start", "timestamp"), ("silent", "boolean"),
                ("mean_interval_ms", "bigint")]


def test_another_result_table_plugs_in_by_name():
    tables = {"alarm_rate": ALARM_RATE_TABLE, "health": HealthTable()}
    health = parse_query(tables, "health", keyspace="ks", tenant="acme", keys=["sensor_id=P7"],
                         after="2026-01-01T04:00", mean="mean_interval_ms")
    assert health.cql() == ("SELECT tenant, sensor_id, window_start, silent, mean_interval_ms FROM ks.health "
                            "WHERE tenant = ? AND sensor_id = ? AND window_start >= ?", ["acme", "P7", T0400])
    with pytest.raises(QueryError, match="health has no key 'station_id'; its keys are sensor_id"):
        parse_query(tables, "health", keyspace="ks", tenant="acme", keys=KEYS, after="0")
    with pytest.raises(QueryError, match="silent holds boolean, not numbers"):
        parse_query(tables, "health", keyspace="ks", tenant="acme", keys=["sensor_id=P7"], after="0", total="silent")


ROWS = [{"tenant": "acme", "station_id": "S1", "datapoint_id": "D2", "window_start": T0400,
         "window_end": T0400 + 60_000, "fires": 3, "events": 12, "rate": 0.25},
        {"tenant": "acme", "station_id": "S1", "datapoint_id": "D2", "window_start": T0400 + 60_000,
         "window_end": T0400 + 120_000, "fires": 10, "events": 15, "rate": 2 / 3}]


def test_answer_is_a_table_of_the_windows_or_the_aggregate_or_no_windows():
    within = query()
    assert format_answer(within, ROWS).splitlines() == [
        "alarm_rate tenant=acme station_id=S1 datapoint_id=D2, window_start in [2026-01-01T04:00:00Z, "
        "2026-01-01T05:00:00Z)",
        "window_start          window_end            fires  events      rate",
        "2026-01-01T04:00:00Z  2026-01-01T04:01:00Z      3      12      0.25",
        "2026-01-01T04:01:00Z  2026-01-01T04:02:00Z     10      15  0.666667",
        "2 windows"]
    assert format_answer(query(after="2026-01-01T04:00", total="fires"), ROWS).splitlines() == [
        "alarm_rate tenant=acme station_id=S1 datapoint_id=D2, window_start >= 2026-01-01T04:00:00Z",
        "sum(fires) = 13 over 2 windows"]
    assert format_answer(query(before="2026-01-01T04:00", mean="fires"), []).splitlines() == [
        "alarm_rate tenant=acme station_id=S1 datapoint_id=D2, window_start < 2026-01-01T04:00:00Z", "no windows"]


def test_json_lines_carry_every_column_with_times_in_iso_8601():
    lines = [json.loads(line) for line in json_lines(query(), ROWS)]
    assert lines[0] == {**ROWS[0], "window_start": "2026-01-01T04:00:00Z", "window_end": "2026-01-01T04:01:00Z"}
    assert lines[1]["rate"] == 2 / 3
    assert [json.loads(line) for line in json_lines(query(mean="events"), ROWS)] == [
        {"tenant": "acme", "station_id": "S1", "datapoint_id": "D2", "field": "events", "mean": 13.5, "windows": 2}]
    assert json_lines(query(), []) == []


def cli(*words: str) -> list[str]:
    return ["query", "alarm_rate", "--tenant", "acme", "--key", "station_id=S1", "--key", "datapoint_id=D2", *words]


@pytest.mark.parametrize(("argv", "message"), [
    (cli(), "error: say which windows: --before TIME, --after TIME or --within START END"),
    (["query", "alarm_rate", "--key", "station_id=S1", "--before", "0"], "error: name the tenant with --tenant"),
    (cli("--key", "rack=R1", "--before", "0"), "error: alarm_rate has no key 'rack'"),
    (cli("--within", "2026-01-01T05:00", "2026-01-01T04:00"), "error: --within: end 2026-01-01T04:00:00Z is not "
                                                               "after start 2026-01-01T05:00:00Z"),
    (["query", "flow", "--tenant", "acme", "--before", "0"], "error: no result table 'flow'"),
    (cli("--after", "noon"), "error: --after: 'noon' is not a time"),
    (cli("--after", "0", "--sum", "station_id"), "error: --sum: station_id holds text, not numbers"),
    (cli("--within", "2026-01-01T04:00"), "argument --within: expected 2 arguments"),
    (cli("--before", "0", "--limit", "ten"), "argument --limit: a limit is a whole number from 1 to "
                                             "1,000,000, not 'ten'"),
])
def test_cli_exits_2_with_the_message_before_connecting(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own checks
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_help_explains_kinds_times_and_exit_codes_with_examples(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["query", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for words in ("--before T (start < T)", "--within START END", "UTC when it has no Z or offset", "epoch",
                  "milliseconds", "examples:", "tenantstream query alarm_rate --tenant acme", "exit status",
                  "alarm_rate: station_id, datapoint_id"):
        assert words in out


def test_the_sensor_health_tables_are_queryable_by_name():
    silence = parse_query(RESULT_TABLES, "sensor_silence", keyspace="ks", tenant="acme", keys=["sensor_id=P7"],
                          within=("2026-01-01T04:00", "2026-01-01T05:00"))
    assert silence.cql() == ("SELECT tenant, sensor_id, state, at, last_heartbeat, silence_minutes FROM "
                             "ks.sensor_silence WHERE tenant = ? AND sensor_id = ? AND at >= ? AND at < ?",
                             ["acme", "P7", T0400, T0500])
    health = parse_query(RESULT_TABLES, "sensor_health", keyspace="ks", tenant="acme", keys=[], after="0",
                         mean="silent_share")
    assert health.cql()[0].endswith("FROM ks.sensor_health WHERE tenant = ? AND window_start >= ?")
