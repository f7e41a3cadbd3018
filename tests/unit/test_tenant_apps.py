"""Tenant apps: the contract is checked without running the app, loading keeps the tenant's own job,
accepted apps are kept as versions, and the CLI reports problems as FILE:LINE:COL: message."""

from __future__ import annotations

import json
import re
import textwrap
import zipfile

import pytest

from operators.aggregates import Count, Max, Mean
from operators.alarms import ALARM_RATE
from operators.windows import tumbling
from pipeline.job import Job
from submit.cli import main
from submit.tenant_apps import MAX_BYTES, AppError, AppRejected, apps, load, package, set_status, upload, validate

GOOD = textwrap.dedent("""\
    from operators.aggregates import Count, Max, Mean
    from operators.windows import tumbling

    def app(stream):
        return (stream.key_by("station_id")
                      .window(tumbling(minutes=5))
                      .aggregate(events=Count(), peak=Max("value"), mean_value=Mean("value")))
    """)


def stream(tenant: str = "acme") -> Job:
    return Job("app_peaks", tenants=(tenant,)).source("alarms", schema="alarm_event.v2", time="event_time",
                                                      required=("station_id", "datapoint_id"))


def test_the_example_app_is_accepted_and_loads_into_the_tenants_job():
    assert validate(GOOD, "peaks.py", "acme") == []
    job = load(GOOD, "peaks.py", "acme", stream())
    assert job == stream().key_by("station_id").window(tumbling(minutes=5)).aggregate(
        events=Count(), peak=Max("value"), mean_value=Mean("value"))


def test_every_allowed_form_loads():
    source = textwrap.dedent('''\
        """Peak values per station and datapoint."""
        from __future__ import annotations

        import math
        import operators.aggregates
        import operators.windows as windows
        from operators.alarms import value_above_threshold

        KEYS = ("station_id", "datapoint_id")
        MINUTES: int = 10


        class Settings:
            """Constants grouped in a class."""
            minutes = MINUTES

            def window(self):
                return windows.tumbling(minutes=math.ceil(self.minutes))


        def app(stream):
            named = {name: agg for name, agg in [("fires", operators.aggregates.CountIf(value_above_threshold))]}
            pick = lambda column: operators.aggregates.Max(column)
            return (stream.key_by(*KEYS).window(Settings().window())
                    .aggregate(**named, peak=pick("value"), total=operators.aggregates.Sum("value")))
        ''')
    job = load(source, "forms.py", "acme", stream())
    assert job.keys == ("station_id", "datapoint_id") and job.tumbling == tumbling(minutes=10)
    assert [name for name, _ in job.aggregates] == ["fires", "peak", "total"]


def marked_line(source: str) -> int:
    return next(n for n, line in enumerate(source.splitlines(), 1) if "# <-" in line)


HOSTILE = {
    "import os": ("import os  # <-\n" + GOOD, "import of os is not allowed"),
    "import subprocess": (GOOD + "\ndef helper():\n    import subprocess  # <-\n", "import of subprocess"),
    "from socket import socket": ("from socket import socket  # <-\n" + GOOD, "import of socket"),
    "relative import": ("from . import helpers  # <-\n" + GOOD, "relative imports are not allowed"),
    "open()": ("def app(stream):\n    open('/etc/passwd').read()  # <-\n    return stream\n", "`open` is not allowed"),
    "eval": ("def app(stream):\n    return eval('stream')  # <-\n", "`eval` is not allowed"),
    "exec": ("def app(stream):\n    exec('import os')  # <-\n    return stream\n", "`exec` is not allowed"),
    "__import__": ("def app(stream):\n    __import__('os').system('id')  # <-\n    return stream\n",
                   "`__import__` is not allowed"),
    "subclasses": ("def app(stream):\n    return ().__class__.__bases__[0].__subclasses__()  # <-\n",
                   "`.__class__`: attributes starting with '_'"),
    "getattr": ("def app(stream):\n    return getattr(stream, '_with')(tenants=('globex',))  # <-\n",
                "`getattr` is not allowed"),
    "private method": ("def app(stream):\n    return stream._with(tenants=('globex',))  # <-\n",
                       "`._with`: attributes starting with '_'"),
    "__builtins__": ("def app(stream):\n    return __builtins__['open']  # <-\n", "`__builtins__`: names starting"),
    "frames": ("def app(stream):\n    return [g.gi_frame.f_back for g in [(x for x in ())]]  # <-\n",
               "`.gi_frame` reaches the interpreter's frames"),
    "str.format": ("def app(stream):\n    return '{0._with}'.format(stream)  # <-\n", "`.format` reaches"),
    "match attribute": ("def app(stream):\n    match stream:\n        case object(gi_frame=f):  # <-\n"
                        "            return f\n", "`.gi_frame` reaches"),
    "patching a library class": ("from operators.aggregates import Count\ndef app(stream):\n"
                                 "    Count.sql = lambda self: 'COUNT(*) FROM other'  # <-\n    return stream\n",
                                 "assigning or deleting attributes is not allowed"),
    "other tenant's topic": ("def app(stream):\n    topic = 'globex.results.alarm_rate'  # <-\n    return stream\n",
                             "'globex.results.alarm_rate' names a topic of tenant globex"),
    "other tenant's topic in an f-string": (
        "def app(stream):\n    topic = f'globex.sensors.{stream.stream}'  # <-\n    return stream\n",
        "'globex.sensors.{...}' names a topic of tenant globex"),
    "computed tenant": ("def app(stream):\n    topic = f'{stream.name}.deadletter'  # <-\n    return stream\n",
                        "builds a topic name for a computed tenant"),
    "cassandra table": ("def app(stream):\n    table = 'tenantstream.alarm_rate'  # <-\n    return stream\n",
                        "'tenantstream.alarm_rate' names a Cassandra table"),
    "syntax error": ("def app(stream):\n    return stream.key_by(  # <-\n", "syntax error"),
    "missing entry point": ("def transform(stream):  # <-\n    return stream\n", "no entry point"),
    "wrong arity": ("def app(stream, window):  # <-\n    return stream\n", "exactly one parameter"),
    "no parameter": ("def app():  # <-\n    return None\n", "exactly one parameter"),
    "top-level call": ('print("loading")  # <-\n' + GOOD, "top-level code runs at import time"),
    "top-level computed constant": ("WINDOW = tumbling(minutes=5)  # <-\n" + GOOD, "top-level code runs at import"),
    "import-time default": ("def app(stream, x=list(range(10**9))):  # <-\n    return stream\n",
                            "computed at import time"),
    "decorator": ("def wrap(f):\n    return f\n@wrap  # <-\ndef app(stream):\n    return stream\n",
                  "decorators run at import time"),
    "global": ("def app(stream):\n    global state  # <-\n    return stream\n", "`global` is not supported"),
    "yield": ("def app(stream):\n    yield stream  # <-\n", "`yield` is not supported"),
    "async": ("async def app(stream):  # <-\n    return stream\n", "`async def` is not supported"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_or_broken_apps_are_rejected_at_the_right_line(case):
    source, message = HOSTILE[case]
    line = marked_line(source)
    violations = validate(source, "app.py", "acme")
    assert any(v.line == line and message in v.message for v in violations), "\n".join(map(str, violations))
    with pytest.raises(AppRejected) as rejected:
        load(source, "app.py", "acme", stream())
    assert f"app.py:{line}:" in str(rejected.value)


def test_oversize_file_is_rejected_before_parsing():
    source = GOOD + "# padding\n" * (MAX_BYTES // 10)
    assert [str(v) for v in validate(source, "big.py", "acme")] == ["big.py:1:1: the file is larger than 64 KiB"]


def test_a_file_too_deep_to_parse_is_rejected_not_crashed():
    (violation,) = validate("x = 1" + "+1" * 30_000, "deep.py", "acme")
    assert str(violation).startswith("deep.py:1:1: cannot be parsed: maximum recursion depth")


def test_own_topics_and_work_inside_app_are_fine():
    source = GOOD.replace("def app(stream):", "def app(stream):\n    note = 'acme.results.app_peaks'")
    assert validate(source, "app.py", "acme") == []
    assert validate(source, "app.py", "globex")[0].message.startswith("'acme.results.app_peaks' names a topic")


def test_validate_never_runs_the_code():
    assert validate("raise SystemExit('ran')\n", "app.py", "acme")  # rejected, not raised


def test_the_light_checker_knows_the_results_keyspace():
    from connectors.results import DEFAULT_KEYSPACE
    from submit.app_check import KEYSPACE

    assert KEYSPACE == DEFAULT_KEYSPACE


def test_violation_names_file_line_and_column():
    (violation,) = validate("import os\n" + GOOD, "apps/peaks.py", "acme")
    assert str(violation).startswith("apps/peaks.py:1:1: import of os is not allowed")


@pytest.mark.parametrize(("body", "message"), [
    ("    return 42", "returned int, not the stream"),
    ("    return stream.key_by('station_id')", "without window(...), aggregate(...)"),
    ("    return stream.source('heartbeats', schema='alarm_event.v2', time='event_time')",
     "stream.source(...): the platform binds the tenant's source and sinks"),
    ("    return stream.key_by('nope').window(tumbling(minutes=1)).aggregate(n=Count())",
     "key 'nope' is not a column of alarm_event.v2"),
    ("    return stream.key_by('station_id').window(tumbling(minutes=1)).aggregate(**{'n` FROM x': Count()})",
     "a result name is a letter"),
    ("    return stream.key_by('station_id').window(tumbling(minutes=1)).aggregate(n=Mean('nope'))",
     "'nope' is not a numeric column of the stream"),
    ("    return stream.key_by('station_id').window(tumbling(minutes=1)).aggregate(n=Raw())",
     "Raw is not one of the aggregates"),
    # A condition carries SQL: only columns, numbers and comparisons get into the plan.
    ("    hot = Condition('hot', \"`value` > (SELECT MAX(`value`) FROM `other` WHERE t = 'x')\")\n"
     "    return stream.key_by('station_id').window(tumbling(minutes=1)).aggregate(n=CountIf(hot))",
     "'SELECT MAX(`value`) ' is not allowed"),
    ("    hot = Condition('hot', '`secret` > 1')\n"
     "    return stream.key_by('station_id').window(tumbling(minutes=1)).aggregate(n=CountIf(hot))",
     "`secret` is not a numeric column of the stream"),
])
def test_load_refuses_what_the_platform_cannot_run_as_the_tenants_job(body, message):
    source = ("from operators.aggregates import Count, CountIf, Mean\nfrom operators.conditions import Condition\n"
              "from operators.windows import tumbling\n\n"
              "class Raw:\n    def sql(self):\n        return 'COUNT(*) FROM other'\n\n"
              f"def app(stream):\n{body}\n")
    assert validate(source, "app.py", "acme") == []
    with pytest.raises(AppError, match=re.escape(message)):
        load(source, "app.py", "acme", stream())


def test_conditions_of_columns_numbers_and_comparisons_are_accepted():
    source = ("from operators.aggregates import CountIf\nfrom operators.alarms import value_above_threshold\n"
              "from operators.conditions import Condition\nfrom operators.windows import tumbling\n\n"
              "def app(stream):\n"
              "    hot = Condition('hot', '`value` >= 40.5 AND NOT (`valueThreshold` = -1)') & value_above_threshold\n"
              "    return stream.key_by('station_id').window(tumbling(minutes=1)).aggregate(n=CountIf(hot))\n")
    job = load(source, "app.py", "acme", stream())
    # rendered by the platform from the condition's tree: the same test, in the platform's own words
    assert job.aggregates[0][1].condition.sql == ("`value` >= 40.5 AND NOT (`valueThreshold` = -1) AND "
                                                  "`value` > `valueThreshold` AND `valueThreshold` <> 999999")


UNCHECKED = "tests.unit.sandbox_entries:unchecked"  # the sandbox's entry without the static check


def test_a_trick_past_validation_still_cannot_name_another_tenant():
    # The app's stream records keys, a window and aggregates only: there is no tenant in it to change.
    source = "def app(stream):\n    return stream._with(tenants=('globex',))\n"
    with pytest.raises(AppError, match=r"app\.py:2: app raised AttributeError: 'Stream' object has no attribute"):
        load(source, "app.py", "acme", stream(), entry=UNCHECKED)


def test_load_gives_only_the_allow_list_at_run_time():
    for source in ("import os\ndef app(stream):\n    return os\n",
                   "def app(stream):\n    return open('/etc/passwd')\n"):
        with pytest.raises(AppError, match=r"app raised (ImportError|NameError)"):
            load(source, "app.py", "acme", stream(), entry=UNCHECKED)


def test_allowed_modules_give_no_module_objects_and_no_imported_functions():
    source = "from operators.aggregates import dataclass\n" + GOOD
    assert validate(source, "app.py", "acme") == []
    with pytest.raises(AppError, match=r"app\.py:1: app raised ImportError: cannot import name 'dataclass'"):
        load(source, "app.py", "acme", stream())


def test_an_app_changes_only_its_own_copies_of_library_values():
    source = GOOD.replace("def app(stream):", "from operators.alarms import ALARM_RATE\n\ndef app(stream):\n"
                                              "    ALARM_RATE.clear()")
    load(source, "peaks.py", "acme", stream())
    assert list(ALARM_RATE) == ["fires", "events", "rate"]


def test_errors_raised_by_the_app_carry_its_line():
    source = GOOD.replace("tumbling(minutes=5)", "tumbling(minutes=-5)")
    with pytest.raises(AppError) as failed:
        load(source, "peaks.py", "acme", stream())
    assert failed.value.line == 6
    assert str(failed.value).startswith("peaks.py:6: app raised OperatorError: a tumbling window is a positive")


def test_load_wants_the_stream_bound_to_the_tenant_alone():
    with pytest.raises(ValueError, match="bound to acme alone"):
        load(GOOD, "peaks.py", "acme", stream("globex"))


def test_registry_keeps_versions_statuses_and_packages(tmp_path):
    app_file = tmp_path / "peaks.py"
    app_file.write_text(GOOD)
    registry = tmp_path / "registry"
    first = upload(app_file, "acme", base=registry)
    assert (first.name, first.version, first.status) == ("peaks", 1, "accepted")
    assert upload(app_file, "acme", base=registry) == first  # same content, same version
    assert first.app_file.read_text() == GOOD
    meta = json.loads((registry / "acme" / "peaks" / "v1" / "meta.json").read_text())
    assert set(meta) >= {"tenant", "name", "version", "sha256", "uploaded_at", "status"}
    assert meta["uploaded_at"].endswith("Z")

    app_file.write_text(GOOD.replace("minutes=5", "minutes=15"))
    second = upload(app_file, "acme", base=registry)
    assert second.version == 2 and second.sha256 != first.sha256
    upload(app_file, "globex", name="other-app", base=registry)

    running = set_status("acme", "peaks", 2, "running", base=registry)
    set_status("acme", "peaks", 1, "failed", "checkpoint storage unreachable", base=registry)
    listed = apps(base=registry)
    assert [(v.tenant, v.name, v.version, v.status) for v in listed] == [
        ("acme", "peaks", 1, "failed"), ("acme", "peaks", 2, "running"), ("globex", "other-app", 1, "accepted")]
    assert listed[0].detail == "checkpoint storage unreachable"
    assert [v.tenant for v in apps("globex", base=registry)] == ["globex"]

    with zipfile.ZipFile(package(running)) as archive:
        assert sorted(archive.namelist()) == ["app.py", "meta.json"]
        assert archive.read("app.py").decode() == app_file.read_text()
        assert json.loads(archive.read("meta.json"))["status"] == "running"


def test_registry_refuses_rejected_apps_bad_names_statuses_and_changed_files(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n" + GOOD)
    with pytest.raises(AppRejected, match=r"bad\.py:1:1: import of os"):
        upload(bad, "acme", base=tmp_path / "registry")
    assert apps(base=tmp_path / "registry") == []
    dotted = tmp_path / "peaks.v2.py"
    dotted.write_text(GOOD)
    for tenant, name, what in (("acme/../globex", "peaks", "tenant"), ("acme", "peaks v2", "app name"),
                               ("acme", None, "app name 'peaks.v2'")):
        with pytest.raises(ValueError, match=f"{what}.* must be letters, digits, '-' or '_'"):
            upload(dotted, tenant, name, base=tmp_path / "registry")
    good = tmp_path / "peaks.py"
    good.write_text(GOOD)
    version = upload(good, "acme", base=tmp_path / "registry")
    with pytest.raises(ValueError, match="status 'done' is not one of"):
        set_status("acme", "peaks", 1, "done", base=tmp_path / "registry")
    with pytest.raises(ValueError, match="no app acme/peaks v9"):
        set_status("acme", "peaks", 9, "running", base=tmp_path / "registry")
    version.app_file.write_text(GOOD + "\n# edited\n")
    with pytest.raises(ValueError, match="changed since it was accepted"):
        package(version)


def test_cli_upload_prints_the_version_and_lists_it(tmp_path, capsys):
    app_file = tmp_path / "peaks.py"
    app_file.write_text(GOOD)
    registry = str(tmp_path / "registry")
    assert main(["tenant", "upload", str(app_file), "--tenant", "acme", "--registry", registry]) == 0
    assert capsys.readouterr().out.startswith("acme/peaks v1 accepted (sha256 ")
    assert main(["tenant", "apps", "--tenant", "acme", "--registry", registry]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["TENANT", "APP", "VERSION", "STATUS", "UPLOADED"]
    assert row.split()[:4] == ["acme", "peaks", "v1", "accepted"]


def test_cli_upload_prints_each_violation_and_exits_2(tmp_path, capsys):
    app_file = tmp_path / "bad.py"
    app_file.write_text("import os\n" + GOOD.replace("return (", "open('x')\n    return ("))
    registry = str(tmp_path / "registry")
    assert main(["tenant", "upload", str(app_file), "--tenant", "acme", "--registry", registry]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{app_file}:1:1: import of os is not allowed: tenant apps may import only __future__, math, "
                   "operators.aggregates, operators.alarms, operators.conditions, operators.windows",
                   f"{app_file}:6:5: `open` is not allowed in tenant apps: it reaches outside the app or into "
                   "Python's internals",
                   f"{app_file}: rejected, 2 problem(s)"]
    assert main(["tenant", "apps", "--registry", registry]) == 0
    assert "no tenant apps" in capsys.readouterr().err


def test_cli_asks_for_a_name_when_the_file_name_is_none(tmp_path, capsys):
    app_file = tmp_path / "peaks.v2.py"
    app_file.write_text(GOOD)
    argv = ["tenant", "upload", str(app_file), "--tenant", "acme", "--registry", str(tmp_path / "registry")]
    assert main(argv) == 2
    assert capsys.readouterr().err == ("error: app name 'peaks.v2' must be letters, digits, '-' or '_'; "
                                       "name the app with --name\n")
    assert main([*argv, "--name", "peaks-v2"]) == 0


def test_cli_refuses_bad_tenant_names(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["tenant", "upload", "peaks.py", "--tenant", "acme;globex"])
    assert exit_.value.code == 2
    assert "tenant 'acme;globex' must be letters, digits, '-' or '_'" in capsys.readouterr().err
