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
    (["simulate", "--late", "1.5"], "a share is between 0 and 1, not 1.5"),
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
