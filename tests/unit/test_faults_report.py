"""`tenantstream faults` reports the runs that ended even when a later run breaks off (a scenario's bug, a server
that never came back): their table is printed and written as JSON, and the command still fails."""

from __future__ import annotations

import json
from types import SimpleNamespace

from faults.run import RunReport
from submit import cli
from submit import faults as faults_command


def _report(name: str) -> RunReport:
    return RunReport(name, 1, f"{name} fault", 0.1, 0, 10.6, 6000, 72, True, 0, 0, 1, 0, 70.0)


def test_a_run_that_breaks_off_leaves_the_ended_runs_reported(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(faults_command, "RESULTS_DIR", tmp_path)
    monkeypatch.setenv("TENANTSTREAM_STACK_CONFIG", "")
    monkeypatch.setattr(faults_command.control, "status", lambda cfg: [SimpleNamespace(name="kafka-1", state="up")])

    def run(cfg, scenario, spec, index):
        if scenario.name == "taskmanager-loss":
            raise AttributeError("module 'connectors.credentials' has no attribute 'jaas_line'")
        assert spec.at == 0.0
        return _report(scenario.name)

    monkeypatch.setattr(faults_command, "run", run)
    assert cli.main(["faults", "broker-kill", "taskmanager-loss", "--at", "0"]) == 1
    out, err = capsys.readouterr()
    assert "| broker-kill #1 | broker-kill fault | 0.1 | 0 | 10.6 |" in out
    assert "jaas_line" in err and "Traceback" not in err
    [written] = tmp_path.glob("faults-*.json")
    runs = json.loads(written.read_text())["runs"]
    assert [(r["scenario"], r["checkpoints_before"]) for r in runs] == [("broker-kill", 0)]
