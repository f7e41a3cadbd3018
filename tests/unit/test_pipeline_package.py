"""The pipeline package is the base: planning needs no server client, dependencies run one way, and the job
model's contracts are checked where they are used."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

import submit.cli
from jobs.alarm_rate import alarm_rate_job
from jobs.catalog import BUILT_IN_JOBS
from operators.aggregates import Count, Mean
from operators.windows import tumbling
from pipeline import errors, stages
from pipeline.check import PlanRefused
from pipeline.errors import PipelineError, TenantstreamError
from pipeline.job import Job, RunSettings
from pipeline.plan import plan
from pipeline.sql import STOP_KINDS, WATERMARK_EMITS, stop_kind
from pipeline.stages import AfterWindow, Aggregate, BeforeWindow, ResultStage, Window
from pipeline.validation import Rule
from schemas.names import check_names
from tests.planned_jobs import RECORDING

ROOT = Path(__file__).parents[2]
SERVER_CLIENTS = ("confluent_kafka", "cassandra", "pymongo", "pyflink")

# In a fresh interpreter in which no server client can be imported: plan every case of the recording, and the
# built-in jobs as the catalog builds them from a metadata store (a stand-in with what the recorded cases used).
_WITHOUT_CLIENTS = f"""
import json, sys
for name in {SERVER_CLIENTS!r}:
    sys.modules[name] = None
import pipeline.check, pipeline.job, pipeline.plan
below_jobs = sorted(m for m in sys.modules if m.split(".")[0] in ("operators", "jobs", "connectors", "submit"))
from jobs.catalog import BUILT_IN_JOBS
from operators.windows import tumbling
from pipeline.job import RunSettings
from pipeline.plan import plan
from tests.planned_jobs import planned_statements

class Store:
    uri, database = "mongodb://127.0.0.1:27017", "tenantstream"
    def assets(self, tenants):
        return None
    def thresholds(self, tenant):
        return {{"tenant": {{"silence_minutes": {{"acme": 5, "globex": 20}}.get(tenant, 10)}}}}

catalog = {{
    "alarm_rate two tenants 5 min": BUILT_IN_JOBS["alarm_rate"].build(("acme", "globex"), tumbling(minutes=5), None, 1),
    "flow live metadata": BUILT_IN_JOBS["flow_aggregates"].build(("acme", "globex", "initech"), tumbling(minutes=5),
                                                                 Store(), 2.5),
    "health three N": BUILT_IN_JOBS["sensor_health"].build(("acme", "globex", "initech"), None, Store(), 10),
}}
print(json.dumps({{"below_jobs": below_jobs, "planned": planned_statements(),
                  "catalog": {{case: [s for part in plan(job, RunSettings()) for s in part]
                              for case, job in catalog.items()}},
                  "clients": sorted(m for m in sys.modules if m.split(".")[0] in {SERVER_CLIENTS!r}
                                    and sys.modules[m] is not None)}}))
"""


def test_every_built_in_job_plans_as_recorded_with_no_server_client_importable():
    done = subprocess.run([sys.executable, "-c", _WITHOUT_CLIENTS], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    recorded = json.loads(RECORDING.read_text())
    assert answer["clients"] == []
    assert answer["below_jobs"] == []  # the planner alone loads no operator, job, connector or command
    assert answer["planned"] == recorded
    for case, statements in answer["catalog"].items():
        assert statements == recorded[case]["default"], case


# ------------------------------------------------------------------------------------------------ one way

# What each base package must not import (in any form: at the top, in a function, under TYPE_CHECKING).
ABOVE = ("jobs", "connectors", "submit", "dashboard", "bench", "faults")
FORBIDDEN = {"pipeline": {"operators", *ABOVE}, "operators": set(ABOVE), "schemas": set(ABOVE),
             "jobs": set(ABOVE) - {"jobs"}}


def imported_packages(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in `source`, a module of `package`, relative ones resolved."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, package if node.level else node.module or ""))
    return found


def violations(package: str) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line}: imports {module}"
            for path in sorted((ROOT / package).rglob("*.py"))
            for line, module in imported_packages(path.read_text(), package)
            if module.split(".")[0] in FORBIDDEN[package]]


def test_the_finder_sees_imports_under_type_checking_and_in_functions():
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from jobs.pipeline import Job\n"
              "def f():\n    import connectors.kafka\n")
    assert imported_packages(source, "operators") == [(1, "typing"), (3, "jobs.pipeline"), (5, "connectors.kafka")]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_run_one_way(package):
    assert violations(package) == []


# ------------------------------------------------------------------------------------------------ contracts


def alarms(name: str = "j") -> Job:
    return Job(name, tenants=("acme",)).source("alarms", schema="alarm_event.v2", time="event_time")


class NotAnAggregate:
    sql_type = "BIGINT"

    def sql(self) -> str:
        return "COUNT(*)"


def test_aggregate_takes_only_aggregates():
    with pytest.raises(PipelineError, match=r"job j: aggregate 'n' is a NotAnAggregate, not an Aggregate"):
        alarms().key_by("station_id").aggregate(n=NotAnAggregate())
    assert isinstance(Count(), Aggregate) and isinstance(Mean("value"), Aggregate)


@pytest.mark.parametrize("name", ["tenant", "window_start", "window_end", "topic", "station_id"])
def test_aggregate_names_may_not_clash_with_the_window_columns_or_keys(name):
    with pytest.raises(PipelineError, match=rf"job j: aggregate '{name}' has the name of"):
        alarms().key_by("station_id").window(tumbling(minutes=1)).aggregate(**{name: Count()})


def test_a_key_may_not_be_named_as_a_window_column():
    with pytest.raises(PipelineError, match="key 'window_end' is a column the results have already"):
        alarms().key_by("window_end")


def test_a_second_validate_adds_rules_and_only_rules_are_taken():
    first, second = Rule.because("`value` < 0", "negative"), Rule.because("`value` > 1e9", "too large")
    job = alarms().validate(first).validate(second)
    assert job.checks == (first, second) and job.rules()[-2:] == [first, second]
    with pytest.raises(PipelineError, match=r"validate.*takes Rules"):
        alarms().validate("`value` < 0")


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Job("j", tenants=("acme",)).key_by("station_id"), r"key_by\(\.\.\.\) needs source\(\.\.\.\) first"),
    (lambda: alarms().aggregate(events=Count()), r"aggregate\(\.\.\.\) needs key_by\(\.\.\.\) first"),
    (lambda: alarms().key_by("station_id").after_window(object()), r"after_window\(\.\.\.\) needs window\(\.\.\.\)"),
    (lambda: Job("j", tenants=("acme",)).validate(), r"validate\(\.\.\.\) needs source\(\.\.\.\) first"),
    (lambda: alarms().key_by("station_id").results_from(object()), r"results_from\(\.\.\.\) takes a ResultStage"),
])
def test_builder_calls_in_an_impossible_order_fail_at_the_call_naming_what_is_missing(build, message):
    with pytest.raises(PipelineError, match=message):
        build()


class Results(ResultStage):
    def views(self, job, on_time):
        return []

    def sinks(self, job, on_time):
        return []

    def parameters(self):
        return {}

    def restore_problem(self, parameters):
        return ""


def test_a_job_has_either_a_window_or_results_of_its_own():
    with pytest.raises(PipelineError, match=r"results_from.*on a job with a window of keyed aggregates"):
        alarms().key_by("station_id").results_from(Results())
    with pytest.raises(PipelineError, match=r"key_by.*on a job whose results come from results_from"):
        alarms().results_from(Results()).key_by("station_id")


def test_parts_that_are_not_of_their_kind_are_refused_where_they_are_given():
    with pytest.raises(PipelineError, match=r"window\(\.\.\.\) takes a Window"):
        alarms().window(60_000)
    with pytest.raises(PipelineError, match=r"before_window\(\.\.\.\) takes BeforeWindow stages, not Results"):
        alarms().before_window(Results())


@pytest.mark.parametrize("contract", [Aggregate, Window, BeforeWindow, AfterWindow, ResultStage])
def test_every_hook_is_a_public_abstract_method_saying_when_it_runs_and_what_a_failure_does(contract):
    hooks = sorted(contract.__abstractmethods__)
    assert hooks and not [h for h in hooks if h.startswith("_")]
    for hook in hooks:
        doc = inspect.getdoc(getattr(contract, hook)) or ""
        assert "Runs" in doc and ("exception" in doc or "refuses" in doc), (contract.__name__, hook)
    with pytest.raises(TypeError, match="abstract"):
        type("Half", (contract,), {})()  # a subclass that fills no hook cannot be made


def test_every_contract_in_stages_is_checked_by_the_tests():
    contracts = {c for _, c in inspect.getmembers(stages, inspect.isclass)
                 if inspect.isabstract(c) and c.__module__ == stages.__name__}
    assert contracts == {Aggregate, Window, BeforeWindow, AfterWindow, ResultStage}


# ------------------------------------------------------------------------------------------------ errors


def test_no_planner_error_is_a_bare_value_error():
    bare = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in sorted((ROOT / "pipeline").glob("*.py"))
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
            and getattr(node.exc.func, "id", "") in ("ValueError", "RuntimeError", "Exception")]
    assert bare == []
    with pytest.raises(PipelineError) as refused:
        plan(alarms(), RunSettings())
    assert type(refused.value) is not ValueError and isinstance(refused.value, TenantstreamError)
    assert issubclass(PlanRefused, PipelineError)


def test_each_package_has_its_subclass_of_the_root_error():
    from connectors.cassandra import CassandraUnavailableError
    from connectors.credentials import CredentialsError
    from connectors.kafka_access import AccessError
    from connectors.metadata import MetadataUnavailableError
    from dashboard.stream import FrameError
    from dashboard.tokens import TokenError
    from faults.disk import DiskError
    from faults.nodes import FaultError
    from jobs.rollup import RollupError
    from operators.periods import PeriodError
    from operators.ranges import QueryError
    from schemas.assets import AssetError
    from schemas.codec import DecodeError
    from stack.control import StackError
    from stack.install import InstallError
    from stack.servers import NotReadyError
    from submit.arguments import CommandError
    from submit.cluster import ClusterError
    from submit.tenant_apps import AppError, AppRejected

    family = {errors.PipelineError: [PlanRefused], errors.OperatorError: [PeriodError, QueryError],
              errors.SchemaError: [AssetError, DecodeError], errors.JobError: [RollupError],
              errors.ConnectorError: [CassandraUnavailableError, CredentialsError, AccessError,
                                      MetadataUnavailableError],
              errors.SubmitError: [CommandError, ClusterError, AppError, AppRejected],
              errors.StackSetupError: [StackError, InstallError, NotReadyError],
              errors.DashboardError: [TokenError, FrameError], errors.FaultsError: [FaultError, DiskError]}
    for base, members in family.items():
        assert issubclass(base, TenantstreamError)
        assert [m for m in members if not issubclass(m, base)] == [], base
    with pytest.raises(errors.SchemaError, match="at least one tenant"):
        check_names([], "tenant")


@pytest.mark.parametrize(("error", "code", "line"), [
    (PipelineError("job j: aggregate(...) needs key_by(...) first"), 2,
     "tenantstream: stack status: error: job j: aggregate(...) needs key_by(...) first"),
    (errors.ConnectorError("Kafka at 127.0.0.1:1 did not answer"), 1,
     "tenantstream: stack status: error: Kafka at 127.0.0.1:1 did not answer"),
    (type("Down", (errors.ConnectorError,), {"hint": "; start it"})("Cassandra at 127.0.0.1:1"), 1,
     "tenantstream: stack status: error: Cassandra at 127.0.0.1:1; start it"),
])
def test_the_command_line_handles_the_family_by_its_exit_code_and_hint(error, code, line, monkeypatch, capsys):
    def fail(args):
        raise error
    monkeypatch.setattr(submit.cli, "_stack_status", fail)
    assert submit.cli.main(["stack", "status"]) == code
    assert capsys.readouterr() == ("", line + "\n")


# ------------------------------------------------------------------------------------------------ settings


def test_settings_with_a_fixed_set_of_values_are_checked_and_offered_by_the_command_line():
    with pytest.raises(PipelineError, match="watermark emission 'sometimes' is none of on-periodic, on-event"):
        RunSettings(watermark_emit="sometimes")
    with pytest.raises(PipelineError, match="PARTITION:OFFSET pairs"):
        RunSettings(stop_at="0:x")
    assert [stop_kind(s) for s in ("", "latest", "0:100,1:250")] == list(STOP_KINDS)
    run = next(a for a in submit.cli.build_parser()._subparsers._group_actions[0].choices["run"]._actions
               if "--watermarks" in a.option_strings)
    assert tuple(run.choices) == WATERMARK_EMITS


@pytest.mark.parametrize("name", sorted(BUILT_IN_JOBS))
def test_run_takes_its_jobs_windows_and_tables_from_the_catalog(name):
    args = Namespace(job=name, tenants=("acme",), window=None, silence=None, assets=None)
    job, tables = submit.cli._job(args)
    built_in = BUILT_IN_JOBS[name]
    assert tables == built_in.tables
    window = job.stage.window if job.stage else job.tumbling
    assert window == built_in.window
    job, _ = submit.cli._job(Namespace(**{**vars(args), "window": 120}))
    assert (job.stage.window if job.stage else job.tumbling) == tumbling(minutes=2)


def test_a_catalog_job_is_the_job_its_module_builds_with_the_catalogs_window():
    built = BUILT_IN_JOBS["alarm_rate"].build(("acme",), None, None, 1.0)
    assert built == alarm_rate_job(("acme",)) and built.tumbling == BUILT_IN_JOBS["alarm_rate"].window
