"""Every command refuses a hostile tenant name, app name, count or duration in one line with exit code 2.

The commands and their arguments are found by walking the parser, so a new command or option is covered
(or makes the walk's own checks fail) without editing this file. No server is needed: parsing fails first.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import submit.cli
from submit.arguments import Count, Matching, Name, Names, Number
from submit.cli import build_parser, main
from submit.cluster import ClusterError

ROOT = Path(__file__).resolve().parents[2]
ACCEPTED = 99  # what a command returns in these tests if its arguments got through

# Hostile text for any name-like argument (tenants, app names, databases, keyspaces, job ids).
HOSTILE_NAMES = [
    "", " ", "ac me", ".", "..", "../globex", "a/b", "a\\b", "a.b", "acme.sensors.alarms",
    "'acme'", '"acme"', "`id`", "$(id)", "a;DROP TABLE t", "a' OR '1'='1", "a/*+ OPTIONS() */", "a%27", "acme\n",
    "a\nb", "a\tb", "a\rb", "\x1b[31mred", "\u0430cme",  # Cyrillic a
    "\uff41cme", "acme\u200b", "acmé", "-acme", "_acme", "a" * 65, "a" * 10_000, "\udcff",
]
HOSTILE_COUNTS = ["", " ", "-5", "-1", "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "abc", "0x10", "\uff15",
                  "\u00b2", "10**9", "9" * 30, "1 000", "5\n", "'5'", "5;", "-0.5"]
NOT_WHOLE = ["1.5", "1e3", "2.0"]
TOO_MANY = ",".join(f"t{i}" for i in range(1_001))  # tenants in one list


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], argparse.ArgumentParser, argparse.Action]]:
    """Every argument of every command and subcommand, with the command's words and its parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, (*path, name))
        elif not isinstance(action, argparse._HelpAction):
            yield path, parser, action


def _valid(action: argparse.Action) -> list[str]:
    """A value the action takes, to fill in the arguments a command requires."""
    if action.choices:
        value = str(next(iter(action.choices)))
    elif isinstance(action.type, Count | Number):
        value = str(int(action.type.high))
    elif isinstance(action.type, Matching):
        value = "0123456789abcdef" * 2 if "job" in action.type.what else "tenantstream"
    else:
        value = "acme"
    return [value] * (action.nargs if isinstance(action.nargs, int) else 1)


def argv_with(path: tuple[str, ...], parser: argparse.ArgumentParser, target: argparse.Action,
              value: str) -> list[str]:
    """The command with every required argument given a valid value, and `target` given `value`."""
    options, positionals = [], []
    for action in parser._actions:
        if action is target:
            if action.option_strings:
                options.append(f"{action.option_strings[-1]}={value}")
            else:
                positionals.append(value)
        elif not action.option_strings and action.nargs not in ("?", "*", 0) and \
                not isinstance(action, argparse._SubParsersAction):
            positionals += _valid(action)
        elif action.required and action.option_strings:
            options += [action.option_strings[-1], *_valid(action)]
    return [*path, *options, *(["--", *positionals] if positionals else [])]


def checked_arguments() -> list[tuple[tuple[str, ...], argparse.ArgumentParser, argparse.Action]]:
    return [(path, parser, action) for path, parser, action in walk(build_parser())
            if isinstance(action.type, Name | Count | Number)]


def cases() -> Iterator[tuple[str, list[str]]]:
    for path, parser, action in checked_arguments():
        if isinstance(action.type, Count):
            values = [*HOSTILE_COUNTS, *NOT_WHOLE, str(action.type.low - 1), str(action.type.high + 1)]
        elif isinstance(action.type, Number):
            values = [*HOSTILE_COUNTS, str(action.type.high * 10)] + (["0"] if action.type.above else [])
        else:
            values = HOSTILE_NAMES + (["acme,acme", "acme, acme", "acme,,globex", ",", TOO_MANY] if isinstance(
                action.type, Names) else ["a,b", " acme", "acme "])  # a list may have spaces after its commas
        for value in values:
            yield argparse._get_action_name(action), argv_with(path, parser, action, value)


@pytest.fixture
def no_handlers(monkeypatch):
    """Commands whose arguments get through return ACCEPTED instead of running (and reaching servers)."""
    parser = build_parser()  # built once: parsing leaves it as it was
    for _, sub, _ in walk(parser):
        if sub.get_default("func"):
            sub.set_defaults(func=lambda args: ACCEPTED)
    monkeypatch.setattr(submit.cli, "build_parser", lambda: parser)


def test_the_walk_finds_every_command_and_checks_their_names_and_numbers():
    arguments = list(walk(build_parser()))
    found = {path for path, _, _ in arguments}
    assert {("stack", "logs"), ("simulate",), ("run",), ("submit",), ("writer",), ("alerts",), ("jobs", "cancel"),
            ("assets", "show"), ("query",), ("tenant", "upload"), ("tenant", "submit"), ("bench",)} <= found
    unchecked_numbers = [(path, argparse._get_action_name(a)) for path, _, a in arguments if a.type in (int, float)]
    assert unchecked_numbers == []
    unchecked_tenants = [(path, argparse._get_action_name(a)) for path, _, a in arguments
                         if "tenant" in a.dest and a.type is None]
    assert unchecked_tenants == []
    assert len(checked_arguments()) >= 45


def test_every_hostile_value_is_refused_in_one_line_with_exit_code_2(no_handlers, capsys):
    failures, checked = [], 0
    for name, argv in cases():
        checked += 1
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        if code != 2 or out or err.count("\n") != 1 or not err.endswith("\n") or "Traceback" in err \
                or not err.startswith("tenantstream: ") or f"argument {name}:" not in err:
            failures.append((argv, code, out, err))
    assert failures == []
    assert checked > 1000


def test_a_nul_character_is_refused_too(no_handlers, capsys):  # argv cannot carry NUL; main() can be given one
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--tenants", "ac\0me"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "tenantstream: run: error: argument --tenants: tenant 'ac\\x00me' must be letters, digits, '-' or '_' "
        "(see `tenantstream run --help`)"]


def test_good_values_get_through(no_handlers):
    assert main(["run", "--tenants", "acme, globex-2,G_3", "--window", "60", "--parallelism", "2"]) == ACCEPTED
    assert main(["simulate", "--events", "1", "--rate", "2.5", "--late", "0"]) == ACCEPTED
    assert main(["tenant", "submit", "peaks", "--tenant", "a" * 64, "--version", "3"]) == ACCEPTED
    assert main(["jobs", "cancel", "0123456789abcdef" * 2]) == ACCEPTED


@pytest.mark.parametrize("argv", [
    [], ["nosuch"], ["run"], ["run", "--tenants", "acme", "extra"], ["query", "alarm_rate", "--within", "0"],
    ["run", "--tenants", "acme", "--silence", "5,acme=2,acme=3"], ["run", "--tenants", "acme", "--silence", "²"],
    ["run", "--tenants", "acme", "--stop-at", "0:²"], ["stack", "logs", "kafka\n"], ["run", "--tenants=ac me\n"],
])
def test_other_bad_arguments_are_one_line_too(argv, no_handlers, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out, err = capsys.readouterr()
    assert (exit_.value.code, out, err.count("\n")) == (2, "", 1)
    assert err.startswith("tenantstream: ") and "Traceback" not in err


@pytest.mark.parametrize(("error", "code", "line"), [
    (ValueError("a.yaml: 1 problem\n  name a .yaml file"), 2, "tenantstream: run: error: a.yaml: 1 problem; name a "
                                                              ".yaml file"),
    (submit.cli.CommandError("no tenant 'x'", code=1), 1, "tenantstream: run: error: no tenant 'x'"),
    (ClusterError("no cluster at http://127.0.0.1:1"), 1,
     "tenantstream: run: error: no cluster at http://127.0.0.1:1"),
    (ZeroDivisionError("division by zero"), 1,
     "tenantstream: run: error: ZeroDivisionError: division by zero (-v logs the traceback)"),
    (KeyboardInterrupt(), 130, "tenantstream: run: error: interrupted"),
])
def test_errors_from_a_command_are_one_line(error, code, line, monkeypatch, capsys):
    def fail(args):
        raise error
    monkeypatch.setattr(submit.cli, "_run", fail)
    assert main(["run", "--tenants", "acme"]) == code
    out, err = capsys.readouterr()
    assert (out, err) == ("", line + "\n")


def test_a_bad_stack_config_is_one_line(tmp_path, monkeypatch, capsys):
    from stack.config import CONFIG_ENV

    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "none.toml"))
    assert main(["stack", "status"]) == 2
    assert capsys.readouterr() == ("", f"tenantstream: stack status: error: stack config {tmp_path / 'none.toml'} "
                                       f"does not exist (check {CONFIG_ENV})\n")


@pytest.mark.parametrize(("config", "message"), [
    ("tenants: ac me\n", "tenant 'ac me' must be letters"),
    ("tenants: [acme, acme]\n", "tenant acme is named more than once"),
    ("tenants: [acme, 7]\n", "tenant must be text, not int"),
    ("tenants: acme\nparallelism: -1\n", "parallelism is a whole number from 1 to 512, not '-1'"),
    ("tenants: acme\nparallelism: .nan\n", "parallelism is a whole number from 1 to 512, not 'nan'"),
    ("tenants: acme\nmetadata_refresh: .inf\n", "seconds between refreshes is a number above 0"),
    ("tenants: acme\nwindow_seconds: true\n", "a window in seconds is a whole number from 1"),
    ("tenants: acme\nwatermarks: always\n", "watermarks are on-periodic or on-event, not 'always'"),
    ("tenants: acme\nspeed: 3\n", "unknown settings 'speed'; known: "),
    ("a: 1\nb: 2\nc: 3\nd: 4\ne: 5\n", "unknown settings 'a', 'b', 'c' and 2 more; known: "),
    ("- acme\n", "expected a mapping of settings, not list"),
    ("tenants: [acme\n", "cannot read the settings"),
])
def test_submit_refuses_bad_settings_in_its_config_file(config, message, tmp_path, capsys):
    path = tmp_path / "job.yaml"
    path.write_text(config)
    assert main(["submit", "alarm_rate", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err and err.startswith("tenantstream: submit: error: ")


@pytest.mark.parametrize("argv", [
    ["run", "--tenants", "ac me"], ["submit", "alarm_rate", "--tenants", "ac me"],
    ["writer", "alarm_rate", "--tenants", "ac me"], ["simulate", "--events", "-5"],
    ["alerts", "alarm_rate", "--tenants", "acme,\u0430cme"], ["tenant", "submit", "x", "--tenant", "a" * 10_000],
    ["query", "alarm_rate", "--tenant", "acme", "--keyspace", "ks; DROP KEYSPACE ks"],
    ["bench", "--parallelism", "1", "nan"],
])
def test_the_command_itself_exits_2_with_one_line(argv):
    """As the README runs it: a real process, no server needed."""
    done = subprocess.run([str(ROOT / "tenantstream"), *argv], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert (done.returncode, done.stdout, done.stderr.count("\n")) == (2, "", 1), done.stderr
    assert done.stderr.startswith(f"tenantstream: {argv[0]}") and "Traceback" not in done.stderr
