"""`tenantstream query` against the stack's Cassandra: known alarm_rate rows in, each kind's windows out."""

from __future__ import annotations

import json
import math
import re
import socket
import uuid
from pathlib import Path

import pytest

from connectors.cassandra import connect, ensure_result_table, insert_statement, upsert
from connectors.results import NoSuchTableError, read_windows
from jobs.alarm_rate import ALARM_RATE_TABLE
from jobs.tables import RESULT_TABLES
from operators.ranges import parse_query
from stack.config import CONFIG_ENV, DEFAULT_CONFIG
from submit.cli import main

T0400 = 1767240000000  # 2026-01-01T04:00Z
MINUTE = 60_000
KEYS = ["station_id=S1", "datapoint_id=D1"]


def window(i: int, fires: int, events: int, station: str = "S1", datapoint: str = "D1", tenant: str = "acme"):
    """The alarm_rate row of the i-th minute after 04:00 (column order of the table)."""
    start = T0400 + i * MINUTE
    return {"tenant": tenant, "station_id": station, "datapoint_id": datapoint, "window_start": start,
            "window_end": start + MINUTE, "fires": fires, "events": events, "rate": fires / events}


# S1/D1 of acme at 04:00..04:05; the same minutes of another datapoint and of another tenant must never show up.
OURS = [window(i, fires, events) for i, (fires, events) in enumerate([(1, 4), (3, 10), (0, 7), (5, 8), (2, 2),
                                                                       (4, 16)])]
OTHERS = [window(1, 99, 100, datapoint="D2"), window(2, 98, 100, station="S2"),
          window(3, 97, 100, tenant="globex")]


@pytest.fixture(scope="module")
def keyspace(stack):
    """A fresh keyspace with the alarm_rate table holding OURS and OTHERS, dropped afterwards."""
    name = f"it_query_{uuid.uuid4().hex[:10]}"
    cluster, session = connect(stack.cassandra.port)
    try:
        ensure_result_table(session, ALARM_RATE_TABLE, name)
        columns = [column for column, _ in ALARM_RATE_TABLE.columns()]
        insert = insert_statement(session, name, ALARM_RATE_TABLE.name, columns)
        upsert(session, insert, [[row[c] for c in columns] for row in OURS + OTHERS])
        yield name
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)
        cluster.shutdown()


def read(stack, keyspace: str, **words) -> list[dict]:
    query = parse_query(RESULT_TABLES, "alarm_rate", keyspace=keyspace, tenant="acme", keys=KEYS, **words)
    return read_windows(stack.cassandra.port, query)


@pytest.mark.parametrize(("words", "expected"), [
    ({"before": "2026-01-01T04:02"}, OURS[:2]),
    ({"before": "2026-01-01T04:02:00.001Z"}, OURS[:3]),
    ({"after": "2026-01-01T04:04"}, OURS[4:]),
    ({"after": "2026-01-01T06:03+02:00"}, OURS[3:]),
    ({"within": ("2026-01-01T04:01", "2026-01-01T04:03")}, OURS[1:3]),
    ({"within": (str(T0400), str(T0400 + 6 * MINUTE))}, OURS),
    ({"after": "2026-01-01T04:00", "limit": 2}, OURS[:2]),
])
def test_each_kind_reads_exactly_its_windows_of_the_one_partition(stack, keyspace, words, expected):
    assert read(stack, keyspace, **words) == expected


def test_sum_and_mean_over_the_range_are_exact(stack, keyspace):
    within = {"within": ("2026-01-01T04:01", "2026-01-01T04:05")}  # windows 1..4
    total = parse_query(RESULT_TABLES, "alarm_rate", keyspace=keyspace, tenant="acme", keys=KEYS, total="fires",
                        **within).aggregate
    assert total.of(read(stack, keyspace, total="fires", **within)) == 3 + 0 + 5 + 2
    mean = parse_query(RESULT_TABLES, "alarm_rate", keyspace=keyspace, tenant="acme", keys=KEYS, mean="events",
                       **within).aggregate
    assert mean.of(read(stack, keyspace, mean="events", **within)) == (10 + 7 + 8 + 2) / 4  # 6.75, not CQL's 6


def test_an_empty_range_is_an_empty_answer(stack, keyspace):
    assert read(stack, keyspace, within=("2026-01-01T05:00", "2026-01-01T06:00")) == []
    assert read(stack, keyspace, before="2026-01-01T03:59") == []


def cli(keyspace: str, *words: str) -> list[str]:
    return ["query", "alarm_rate", "--keyspace", keyspace, "--tenant", "acme", "--key", "station_id=S1",
            "--key", "datapoint_id=D1", *words]


def test_cli_prints_the_windows_as_a_table_or_json_lines(stack, keyspace, capsys):
    assert main(cli(keyspace, "--within", "2026-01-01T04:01", "2026-01-01T04:03")) == 0
    assert capsys.readouterr().out.splitlines() == [
        "alarm_rate tenant=acme station_id=S1 datapoint_id=D1, window_start in [2026-01-01T04:01:00Z, "
        "2026-01-01T04:03:00Z)",
        "window_start          window_end            fires  events  rate",
        "2026-01-01T04:01:00Z  2026-01-01T04:02:00Z      3      10   0.3",
        "2026-01-01T04:02:00Z  2026-01-01T04:03:00Z      0       7     0",
        "2 windows"]
    assert main(cli(keyspace, "--after", "2026-01-01T04:04", "--json")) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["window_start"], r["fires"], r["events"], r["rate"]) for r in lines] == [
        ("2026-01-01T04:04:00Z", 2, 2, 1.0), ("2026-01-01T04:05:00Z", 4, 16, 0.25)]


def test_cli_prints_sum_and_mean(stack, keyspace, capsys):
    assert main(cli(keyspace, "--before", "2026-01-01T04:06", "--sum", "fires")) == 0
    assert capsys.readouterr().out.splitlines()[1] == "sum(fires) = 15 over 6 windows"
    assert main(cli(keyspace, "--before", "2026-01-01T04:06", "--mean", "rate", "--json")) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer == {"tenant": "acme", "station_id": "S1", "datapoint_id": "D1", "field": "rate",
                      "mean": math.fsum(r["rate"] for r in OURS) / 6, "windows": 6}


def test_cli_answers_an_empty_range_with_no_windows_and_exit_0(stack, keyspace, capsys):
    assert main(cli(keyspace, "--after", "2026-01-01T05:00")) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "no windows"
    assert main(cli(keyspace, "--after", "2026-01-01T05:00", "--json")) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err.startswith("no windows: alarm_rate tenant=acme")


def test_cli_exits_2_on_a_bad_argument_and_1_on_a_missing_keyspace(stack, keyspace, capsys):
    assert main(cli(keyspace, "--within", "2026-01-01T04:03", "2026-01-01T04:03")) == 2
    assert "is not after start" in capsys.readouterr().err
    with pytest.raises(NoSuchTableError):
        read(stack, f"{keyspace}_none", after="0")
    assert main(cli(f"{keyspace}_none", "--after", "0")) == 1
    assert f"no table {keyspace}_none.alarm_rate in Cassandra" in capsys.readouterr().err


def test_cli_exits_1_with_a_hint_when_cassandra_is_unreachable(tmp_path: Path, monkeypatch, capsys):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "stack.toml"
    config.write_text(re.sub(r"(?ms)(^\[cassandra\]$.*?^)port = \d+", rf"\g<1>port = {port}",
                             DEFAULT_CONFIG.read_text()))
    monkeypatch.setenv(CONFIG_ENV, str(config))
    assert main(cli("tenantstream", "--after", "0")) == 1
    err = capsys.readouterr().err
    assert f"Cassandra at 127.0.0.1:{port}" in err and "tenantstream stack up" in err
