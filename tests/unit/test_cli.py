"""`tenantstream --help` explains every command; bad arguments get clear errors."""

from __future__ import annotations

import pytest

from submit.cli import build_parser, main


@pytest.mark.parametrize("command", [["stack"], ["stack", "up"], ["stack", "down"], ["stack", "status"],
                                     ["stack", "logs"], ["demo"], ["simulate"], ["run"], ["bench"],
                                     ["tenant"], ["tenant", "upload"], ["tenant", "apps"], ["tenant", "submit"],
                                     ["submit"], ["jobs"], ["jobs", "list"], ["jobs", "cancel"],
                                     ["jobs", "savepoint"], ["writer"], ["alerts"], ["query"], ["assets"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command, "--help"])
    assert exit_.value.code == 0
    assert len(capsys.readouterr().out.splitlines()) > 3


def test_top_level_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("stack", "demo", "simulate", "run", "bench", "tenant", "submit", "jobs", "writer", "alerts",
                    "query", "assets"):
        assert f"    {command}" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["simulate", "--late", "1.5"], "tenantstream: simulate: error: argument --late: a share is a number from 0 to 1, "
                                    "not '1.5' (see `tenantstream simulate --help`)"),
    (["run", "--tenants", " , "], "name at least one tenant"),
    (["stack", "logs", "zookeeper"], "invalid choice: 'zookeeper'"),
])
def test_bad_arguments_are_explained(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_run_takes_the_job_to_run_and_the_flow_jobs_metadata(tmp_path, capsys):
    args = build_parser().parse_args(["run", "flow_aggregates", "--tenants", "acme", "--bounded"])
    assert (args.job, args.tenants, args.stop_at) == ("flow_aggregates", ("acme",), "latest")
    assert build_parser().parse_args(["run", "--tenants", "acme"]).job == "alarm_rate"
    assert main(["run", "flow_aggregates", "--tenants", "acme", "--assets", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read the file" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "sensor_health", "--tenants", "acme", "--silence", "acme=0"], "silence minutes is a whole number from 1 "
                                                                              "to 10,080, not '0'"),
    (["run", "sensor_health", "--tenants", "acme", "--silence", "ten"], "not 'ten'"),
    (["run", "alarm_rate", "--tenants", "acme", "--silence", "5"], "--silence is for sensor_health, not alarm_rate"),
    (["run", "sensor_health", "--tenants", "acme", "--silence", "5,globex=3"], "names globex, not in --tenants"),
    (["run", "flow", "--tenants", "acme"], "invalid choice: 'flow'"),
    (["simulate", "--stream", "weather"], "invalid choice: 'weather'"),
])
def test_bad_job_arguments_are_explained(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_run_takes_silence_minutes_and_simulate_heartbeats():
    args = build_parser().parse_args(["run", "sensor_health", "--tenants", "acme,globex", "--silence", "5,acme=2"])
    assert (args.job, args.tenants, args.silence) == ("sensor_health", ("acme", "globex"), {"": 5, "acme": 2})
    assert build_parser().parse_args(["simulate", "--stream", "heartbeats"]).stream == "heartbeats"
