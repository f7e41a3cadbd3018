"""Hostile tenant apps: each ends in AppRejected or AppError with one line per problem, within the sandbox's
time limit, and nothing another tenant owns is ever planned.

The apps are real app files, run the way `tenant upload` and `tenant submit` run them (submit/sandbox.py:
a confined child that prints a spec; the Job is built from the spec). Behind them: the sandbox's own
walls (what a child can reach), and children that answer with something other than one spec.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from dataclasses import dataclass

import pytest

from operators.aggregates import Count, CountIf, Max, Mean, Share, Sum
from operators.alarms import value_above_threshold
from operators.conditions import Condition
from operators.windows import tumbling
from pipeline.job import RunSettings
from pipeline.plan import plan
from submit import sandbox
from submit.cli import main
from submit.tenant_apps import AppError, AppRejected, bound_stream, load, upload

LIMITS = sandbox.Limits(cpu_s=2, wall_s=15)  # the CPU limit is what stops a spinning app
SLACK_S = 10  # starting the child and the test's own work, on a loaded machine
HEADER = ("from operators.aggregates import Count, CountIf, Share, Sum, Mean, Min, Max\n"
          "from operators.conditions import Condition\n"
          "from operators.windows import tumbling, Tumbling\n\n")
WINDOWED = "stream.key_by('station_id').window(tumbling(minutes=1))"


def app_file(body: str, before: str = "") -> str:
    """An app file: the usual imports, `before` at the top level, then `def app(stream):` with `body`."""
    return HEADER + textwrap.dedent(before) + "\ndef app(stream):\n" + textwrap.indent(textwrap.dedent(body), "    ")


def aggregating(expression: str, before: str = "") -> str:
    """An app whose only odd part is the aggregate `n=<expression>`."""
    return app_file(f"return {WINDOWED}.aggregate(n={expression})\n", before)


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    error: type[Exception]
    message: str


CASES = [
    # Objects with behaviour: only the library's own types, by exact type, become part of the spec.
    Case("a subclass of an aggregate", aggregating("Mine()", "class Mine(Count):\n    pass\n"),
         AppError, "Mine is not one of the aggregates"),
    Case("a subclass named like the library's aggregate", aggregating(
        "Count()", "class Count(Count):\n    def sql(self):\n        return 'COUNT(*) FROM other'\n"),
         AppError, "Count is not one of the aggregates"),
    Case("a subclass of a condition", aggregating("CountIf(Hot('hot', '`value` > 1'))",
                                                  "class Hot(Condition):\n    pass\n"),
         AppError, "its condition must be an operators.conditions.Condition"),
    Case("an object with an sql method as an aggregate", aggregating(
        "Raw()", "class Raw:\n    sql_type = 'BIGINT'\n    def sql(self):\n        return 'COUNT(*) FROM other'\n"),
         AppError, "Raw is not one of the aggregates"),
    Case("an object with name and sql as a condition", aggregating(
        "Share(Fake())", "class Fake:\n    name = 'hot'\n    sql = '`value` > 1'\n"),
         AppError, "its condition must be an operators.conditions.Condition"),
    Case("a str subclass as a column", aggregating("Max(S('value'))", "class S(str):\n    pass\n"),
         AppError, "the column must be a plain str, not S"),
    Case("a str subclass as a key", app_file(
        "return stream.key_by(S('station_id')).window(tumbling(minutes=1)).aggregate(n=Count())\n",
        "class S(str):\n    pass\n"), AppError, "a key of key_by(...) must be a plain str, not S"),
    Case("a str subclass as a condition's SQL", aggregating("CountIf(Condition('hot', S('`value` > 1')))",
                                                            "class S(str):\n    pass\n"),
         AppError, "the condition's SQL must be a plain str, not S"),
    Case("a str subclass as a result name", app_file(
        f"return {WINDOWED}.aggregate(**{{S('n'): Count()}})\n", "class S(str):\n    pass\n"),
         AppError, "a result name must be a plain str, not S"),
    Case("a subclass of the window", app_file(
        "return stream.key_by('station_id').window(W(60000)).aggregate(n=Count())\n",
        "class W(Tumbling):\n    pass\n"), AppError, "the window must come from operators.windows"),
    Case("a window of a float size", app_file(
        "return stream.key_by('station_id').window(Tumbling(60000.0)).aggregate(n=Count())\n"),
         AppError, "the window must come from operators.windows"),
    Case("a result stage of its own", app_file(
        "return stream.results_from(Stage())\n",
        "class Stage:\n    def views(self, job, on_time):\n        return ['CREATE TEMPORARY VIEW x AS SELECT 1']\n"),
         AppError, "stream.results_from(...): the platform binds the tenant's source and sinks"),
    Case("views before the window", app_file(
        f"return {WINDOWED}.before_window(Views()).aggregate(n=Count())\n",
        "class Views:\n    def views(self, job, on_time):\n        return []\n"),
         AppError, "the platform binds the tenant's source and sinks"),
    Case("rules of its own", app_file(f"return {WINDOWED}.validate(Rule()).aggregate(n=Count())\n",
                                      "class Rule:\n    rejects = 'TRUE'\n"),
         AppError, "app.py:9: stream.validate(...)"),
    Case("a look-alike of the stream", app_file("return Fake()\n", "class Fake:\n    keys = ('station_id',)\n"),
         AppError, "app(stream) returned Fake, not the stream it was given"),
    Case("a list instead of the stream", app_file("return [stream]\n"), AppError, "returned list"),
    Case("an app that is no function", app_file("return stream\n") + "\napp = 5\n",
         AppError, "`app` is not a function after the module ran"),
    # SQL text in conditions: a condition is read as a tree of comparisons; anything else is refused.
    Case("a subquery in a condition", aggregating(
        "CountIf(Condition('hot', '`value` > (SELECT MAX(`value`) FROM t)'))"),
         AppError, "'SELECT MAX(`value`) ' is not allowed in a condition"),
    Case("SQL in the where of a Sum", aggregating(
        "Sum('value', where=Condition('w', '1 = 1) OR (`value` IN (SELECT 1)'))"), AppError, "is not allowed"),
    Case("SQL text as the where of a Max", aggregating("Max('value', where='`value` > 1')"),
         AppError, "its condition must be an operators.conditions.Condition"),
    Case("a string literal in a condition", aggregating("CountIf(Condition('c', \"`station_id` = 'x'\"))"),
         AppError, "is not allowed in a condition"),
    Case("a function call in a condition", aggregating("CountIf(Condition('c', 'ABS(`value`) > 1'))"),
         AppError, "'ABS(`value`) > 1' is not allowed"),
    Case("an SQL comment in a condition", aggregating("CountIf(Condition('c', '`value` > 1 -- x'))"),
         AppError, "is not allowed in a condition"),
    Case("backticks smuggled into a column", aggregating("Max('value` FROM x --')"),
         AppError, "the column is a letter followed by letters, digits or '_'"),
    Case("an unknown column in a condition", aggregating("CountIf(Condition('c', '`secret` > 1'))"),
         AppError, "`secret` is not a numeric column of the stream"),
    Case("a text column in a condition", aggregating("Share(Condition('c', '`station_id` > 1'))"),
         AppError, "`station_id` is not a numeric column"),
    Case("digits of another script in a condition", aggregating("CountIf(Condition('c', '`value` > \u0663'))"),
         AppError, "is not allowed in a condition"),
    Case("a condition without a comparison", aggregating("CountIf(Condition('c', '`value`'))"),
         AppError, "expected a comparison"),
    Case("an unbalanced condition", aggregating("CountIf(Condition('c', '(`value` > 1'))"),
         AppError, "a '(' is not closed"),
    # Flink SQL hints: refused as text, and nowhere to put them as data.
    Case("a hint in a string literal", app_file(
        "hint = \"/*+ OPTIONS('scan.startup.mode'='earliest-offset') */\"\nreturn stream\n"),
         AppRejected, "'/*' starts an SQL comment or hint"),
    Case("a hint built at run time in a condition", aggregating(
        "CountIf(Condition('c', '/' + \"*+ OPTIONS('topic'='x') *\" + '/ `value` > 1'))"),
         AppError, "is not allowed in a condition"),
    Case("a hint built at run time in a key", app_file(
        "key = 'station_id ' + '/' + '*+ OPTIONS() *' + '/'\n"
        "return stream.key_by(key).window(tumbling(minutes=1)).aggregate(n=Count())\n"),
         AppError, "a key of key_by(...) is a letter followed by"),
    Case("a hint built at run time in a result name", app_file(
        f"return {WINDOWED}.aggregate(**{{'n ' + '/' + '*+ OPTIONS() *' + '/': Count()}})\n"),
         AppError, "a result name is a letter followed by"),
    # Another tenant's topics, written out or built at run time.
    Case("another tenant's topic as a literal", app_file(
        "return stream.key_by('globex.sensors.alarms').window(tumbling(minutes=1)).aggregate(n=Count())\n"),
         AppRejected, "'globex.sensors.alarms' names a topic of tenant globex"),
    Case("another tenant's results topic in a condition", aggregating(
        "CountIf(Condition('c', '`globex.results.alarm_rate` > 1'))"),
         AppRejected, "names a topic of tenant globex"),
    Case("a topic by concatenation", app_file(
        "return stream.key_by('glo' + 'bex.sens' + 'ors.alarms').window(tumbling(minutes=1)).aggregate(n=Count())\n"),
         AppError, "a key of key_by(...) is a letter followed by"),
    Case("a topic by slicing a literal", aggregating("Max('xxglobex.sensors.alarms'[2:])"),
         AppRejected, "names a topic of tenant xxglobex"),
    Case("a topic by reversing a literal", aggregating("Max('smrala.srosnes.xebolg'[::-1])"),
         AppError, "the column is a letter followed by"),
    Case("a topic by join, as the source", app_file(
        "return stream.source('.'.join(['globex', 'sensors', 'alarms']), schema='alarm_event.v2', "
        "time='event_time')\n"), AppError, "stream.source(...): the platform binds the tenant's source"),
    Case("a topic by replace", aggregating("Mean('acme.sensors.alarms'.replace('acme', 'globex'))"),
         AppError, "the column is a letter followed by"),
    Case("a topic in an f-string", app_file("topic = f\"{'glo'}bex.sensors.alarms\"\nreturn stream\n"),
         AppRejected, "builds a topic name for a computed tenant"),
    Case("a topic by chr()", app_file("topic = ''.join([chr(c) for c in (103, 108, 111)])\nreturn stream\n"),
         AppError, "app raised NameError: name 'chr' is not defined"),
    Case("a Cassandra table", app_file("table = 'tenantstream.alarm_rate'\nreturn stream\n"),
         AppRejected, "names a Cassandra table"),
    # Text the parser refuses, or that would exhaust it.
    Case("a null byte", app_file("return stream\x00\n"), AppRejected, "cannot contain null bytes"),
    Case("a lone surrogate", app_file("x = '\udc80'\nreturn stream\n"), AppRejected, "a lone surrogate"),
    Case("parentheses 5000 deep", app_file("return " + "(" * 5000 + "stream" + ")" * 5000 + "\n"),
         AppRejected, "too many nested parentheses"),
    Case("a sum of 20000 terms", app_file("x = 1" + "+1" * 20000 + "\nreturn stream\n"),
         AppRejected, "cannot be parsed"),
    # The sandbox: files, network, processes, CPU, memory, the interpreter itself.
    Case("reading a file", app_file("return open('/etc/passwd').read()\n"), AppRejected, "`open` is not allowed"),
    Case("reading a file through pathlib", "from pathlib import Path\n" + app_file("return stream\n"),
         AppRejected, "import of pathlib is not allowed"),
    Case("opening a socket", app_file("import socket\nsocket.create_connection(('127.0.0.1', 9092))\n"),
         AppRejected, "import of socket is not allowed"),
    Case("forking", app_file("import os\nos.fork()\nreturn stream\n"), AppRejected, "import of os is not allowed"),
    Case("a subprocess", app_file("import subprocess\nreturn subprocess.run(['id'])\n"),
         AppRejected, "import of subprocess is not allowed"),
    Case("spinning forever", app_file("while True:\n    pass\n"), AppRejected, "used more than 2 s of CPU"),
    Case("allocating at once", app_file("cells = [0] * 10**10\nreturn stream\n"), AppRejected, "memory limit"),
    Case("allocating without bound", app_file("cells = []\nwhile True:\n    cells.append('x' * 10**6)\n"),
         AppRejected, "memory limit"),
    Case("a string of a terabyte", app_file("return 'x' * 2**40\n"), AppRejected, "memory limit"),
    Case("deep recursion", app_file("return down(0)\n", "def down(n):\n    return down(n + 1)\n"),
         AppRejected, "recursed too deeply"),
    Case("crashing the interpreter", app_file(
        "z = range(1)\nfor i in range(300000):\n    z = zip(z)\nfor x in z:\n    pass\nreturn stream\n"),
         AppRejected, "crashed the interpreter (SIGSEGV)"),
    # Exceptions: one line, whatever the app raises.
    Case("a huge multi-line exception", app_file("raise ValueError('boom\\n' * 100000)\n"),
         AppError, "app raised ValueError: boom?boom?"),
    Case("an exception of the app's own type", app_file("raise Odd(stream)\n", "class Odd(ValueError):\n    pass\n"),
         AppError, "app raised Odd: Stream(stream='alarms'"),
    Case("raising something that is no exception", app_file("raise 42\n"),
         AppError, "app raised TypeError: exceptions must derive from BaseException"),
    Case("an exception whose str() raises", app_file(
        "raise Bad()\n", "class Bad(ValueError):\n    def __str__(self):\n        raise Bad()\n"),
         AppRejected, "`__str__`: names starting with '_'"),
    Case("an exception whose message cannot be printed", app_file(
        "x = []\nfor i in range(100000):\n    x = [x]\nraise ValueError(x)\n"),
         AppError, "app raised ValueError: (its message could not be read)"),
    Case("control characters in an exception", app_file("raise ValueError('\\x1b[2J\\x00\\r')\n"),
         AppError, "app raised ValueError: ?[2J??"),
    # Numbers that are not finite, or out of range.
    Case("a window of infinite size", app_file(
        "return stream.key_by('station_id').window(tumbling(minutes=float('inf'))).aggregate(n=Count())\n"),
         AppError, "app raised OperatorError: a tumbling window is a positive whole number of seconds"),
    Case("a window of NaN size", app_file(
        "return stream.key_by('station_id').window(Tumbling(float('nan'))).aggregate(n=Count())\n"),
         AppError, "a tumbling window is a positive whole number of seconds"),
    Case("a window of 10**12 minutes", app_file(
        "return stream.key_by('station_id').window(tumbling(minutes=10**12)).aggregate(n=Count())\n"),
         AppRejected, "is greater than the maximum"),
    Case("a huge number in a condition", aggregating("CountIf(Condition('c', '`value` > 99999999999999999999'))"),
         AppError, "99999999999999999999 is not a finite number within"),
    Case("a number too long for a condition", aggregating("CountIf(Condition('c', '`value` > ' + '9' * 100))"),
         AppError, "a number of at most 24 characters"),
    # Names and sizes.
    Case("an over-long result name", app_file(f"return {WINDOWED}.aggregate(**{{'n' * 10000: Count()}})\n"),
         AppError, "a result name is longer than 64 characters"),
    Case("an over-long key", app_file(
        "return stream.key_by('k' * 100).window(tumbling(minutes=1)).aggregate(n=Count())\n"),
         AppError, "a key of key_by(...) is longer than 64 characters"),
    Case("a thousand aggregates", app_file(
        f"return {WINDOWED}.aggregate(**{{'n' + str(i): Count() for i in range(1000)}})\n"),
         AppError, "at most 8 keys and 32 aggregates"),
    Case("a condition of a hundred comparisons", aggregating(
        "CountIf(Condition('c', ' OR '.join(['`value` > 1'] * 100)))"), AppError, "more than 200 parts"),
    Case("a condition nested too deep", app_file(
        f"hot = Condition('hot', '`value` > 1')\nfor i in range(50):\n    hot = ~hot\n"
        f"return {WINDOWED}.aggregate(n=CountIf(hot))\n"), AppError, "nested deeper than 12"),
    Case("the key `tenant`", app_file(
        "return stream.key_by('tenant').window(tumbling(minutes=1)).aggregate(n=Count())\n"),
         AppError, "key 'tenant' is a column the results have already"),
    Case("an aggregate named like a key", app_file(f"return {WINDOWED}.aggregate(station_id=Count())\n"),
         AppError, "aggregate 'station_id': the name is a key"),
    Case("an aggregate named like a column of the plan", app_file(
        f"return {WINDOWED}.aggregate(window_time=Count(), topic_tenant=Count())\n"),
         AppError, "aggregate 'window_time': the name is a key, a result column"),
    Case("a Sum of a text column", aggregating("Sum('station_id')"),
         AppError, "'station_id' is not a numeric column of the stream"),
]


def stream(tenant: str = "acme"):
    return bound_stream(tenant, "peaks")


def topics_of_plan(job) -> list[str]:
    """Every topic the planned statements name (sources and sinks)."""
    ddl, inserts = plan(job, RunSettings())
    return [topic for statement in ddl + inserts for option in re.findall(r"'topic' = '([^']*)'", statement)
            for topic in option.split(";")]


def assert_one_line_each(err: Exception, filename: str) -> None:
    for line in str(err).splitlines():
        assert line.startswith(f"{filename}:") and len(line) < 600 and line.isprintable(), line
    if isinstance(err, AppError):
        assert "\n" not in str(err)


def test_there_are_at_least_forty_hostile_apps():
    assert len(CASES) >= 40 and len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_hostile_app_ends_in_one_line_per_problem_within_the_limit(case):
    started = time.monotonic()
    try:
        job = load(case.source, "app.py", "acme", stream(), LIMITS)
    except (AppRejected, AppError) as err:
        elapsed = time.monotonic() - started
        assert type(err) is case.error, f"{type(err).__name__}: {err}"
        assert case.message in str(err)
        assert_one_line_each(err, "app.py")
        assert elapsed < LIMITS.wall_s + SLACK_S
    else:
        pytest.fail(f"accepted, and it would plan topics {topics_of_plan(job)}")


# Apps that look odd but are the tenant's own business: accepted, and their plans name acme's topics only.
ACCEPTED = {
    "own topic named in a local": app_file(f"note = 'acme.results.app_peaks'\n"
                                           f"return {WINDOWED}.aggregate(n=Count())\n"),
    "nested NOT and parentheses": aggregating("CountIf(Condition('c', 'NOT (NOT (`value` > 1 OR (`value` < -2.5)))'))"),
    "a condition and another, combined": aggregating("Share(Condition('a', '`value` >= 0') & ~Condition('b', "
                                                     "'`valueThreshold` = 999999'))"),
    "where on every column aggregate": app_file(
        f"hot = Condition('hot', '`value` > `valueThreshold`')\n"
        f"return {WINDOWED}.aggregate(s=Sum('value', where=hot), m=Mean('value', where=hot), "
        "lo=Min('valueThreshold', where=~hot), hi=Max('value'))\n"),
}


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_accepted_apps_plan_only_the_tenants_own_topics(name):
    job = load(ACCEPTED[name], "app.py", "acme", stream(), LIMITS)
    topics = topics_of_plan(job)
    assert topics and all(topic.startswith("acme.") for topic in topics), topics


def test_a_normal_app_plans_the_same_statements_as_the_job_written_by_hand():
    source = ("from operators.aggregates import Count, CountIf, Max, Mean, Share, Sum\n"
              "from operators.alarms import value_above_threshold\nfrom operators.windows import tumbling\n\n"
              "def app(stream):\n"
              "    return (stream.key_by('station_id', 'datapoint_id').window(tumbling(minutes=5))\n"
              "            .aggregate(fires=CountIf(value_above_threshold), events=Count(),\n"
              "                       rate=Share(value_above_threshold), peak=Max('value'), mean=Mean('value'),\n"
              "                       hot_sum=Sum('value', where=value_above_threshold)))\n")
    by_hand = stream().key_by("station_id", "datapoint_id").window(tumbling(minutes=5)).aggregate(
        fires=CountIf(value_above_threshold), events=Count(), rate=Share(value_above_threshold), peak=Max("value"),
        mean=Mean("value"), hot_sum=Sum("value", where=value_above_threshold))
    loaded = load(source, "app.py", "acme", stream())
    assert plan(loaded, RunSettings()) == plan(by_hand, RunSettings())
    assert loaded.aggregates[0][1].condition == Condition("condition of fires", value_above_threshold.sql)


# Children that answer with something other than one spec, as if an app had got hold of the child's stdout.
SPEC = {"stream": "alarms", "keys": ["station_id"], "window": {"size_ms": 60000},
        "aggregates": [{"name": "n", "kind": "Count"}]}
ODD_CHILDREN = [
    ("garbage before the answer", "raw", {"text": "hello\n" + json.dumps({"spec": SPEC}) + "\n"}, AppRejected,
     "printed 2 lines, not one line of JSON"),
    ("a second answer", "raw", {"text": json.dumps({"spec": SPEC}) + "\n", "times": 2}, AppRejected,
     "printed 2 lines"),
    ("no answer", "raw", {"text": ""}, AppRejected, "printed 0 lines"),
    ("not JSON", "raw", {"text": "{'spec': 1}\n"}, AppRejected, "printed something other than JSON"),
    ("NaN in JSON", "raw", {"text": '{"spec": {"n": NaN}}\n'}, AppRejected, "NaN is not a number JSON allows"),
    ("JSON nested thirty thousand deep", "raw", {"text": "[", "times": 30_000, "end": "\n"}, AppRejected,
     "printed something other than JSON"),
    ("huge output", "raw", {"text": "x" * 1000, "times": 20_000}, AppRejected, "printed more than 256 KiB"),
    ("a crash", "segfault", {}, AppRejected, "crashed the interpreter (SIGSEGV)"),
    ("a non-zero exit", "exit_status", {"status": 3}, AppRejected, "exited with status 3"),
    ("SQL text as a condition", "answer", {"answer": {"spec": {**SPEC, "aggregates": [
        {"name": "n", "kind": "CountIf", "condition": "`value` > 1) OR (1 = 1"}]}}}, AppRejected, "not a spec"),
    ("a tenant in the spec", "answer", {"answer": {"spec": {**SPEC, "tenants": ["globex"]}}}, AppRejected,
     "Additional properties are not allowed ('tenants' was unexpected)"),
    ("an aggregate kind of its own", "answer", {"answer": {"spec": {**SPEC, "aggregates": [
        {"name": "n", "kind": "Raw"}]}}}, AppRejected, "not a spec"),
    ("a topic as a key", "answer", {"answer": {"spec": {**SPEC, "keys": ["globex.sensors.alarms"]}}},
     AppRejected, "at spec/keys/0"),
    ("a boolean as a number", "answer", {"answer": {"spec": {**SPEC, "aggregates": [
        {"name": "n", "kind": "CountIf", "condition": {"cmp": ">", "left": {"column": "value"},
                                                       "right": {"number": True}}}]}}}, AppRejected, "not a spec"),
    ("a number beyond the range", "answer", {"answer": {"spec": {**SPEC, "aggregates": [
        {"name": "n", "kind": "CountIf", "condition": {"cmp": ">", "left": {"column": "value"},
                                                       "right": {"number": 1e300}}}]}}}, AppError,
     "is not a finite number within"),
    ("a number of 400 digits", "answer", {"answer": {"spec": {**SPEC, "aggregates": [
        {"name": "n", "kind": "Share", "condition": {"cmp": "=", "left": {"number": 10**400},
                                                     "right": {"column": "value"}}}]}}}, AppError,
     "is not a finite number within"),
    ("a window size with a fraction point", "answer", {"answer": {"spec": {**SPEC, "window": {"size_ms": 60000.0}}}},
     AppError, "the window's size 60000.0 is not a whole number of milliseconds"),
    ("a line number with a fraction point", "answer", {"answer": {"error": {"line": 3.0, "message": "odd"}}},
     AppError, "app.py:3: odd"),
    ("another stream", "answer", {"answer": {"spec": {**SPEC, "stream": "heartbeats"}}}, AppError,
     "the spec is for stream 'heartbeats', not the tenant's 'alarms'"),
    ("a message of many lines", "answer", {"answer": {"error": {"line": 1, "message": "a\nb"}}}, AppRejected,
     "not a spec"),
    ("a message ending in a newline", "answer", {"answer": {"error": {"line": 1, "message": "a\n"}}}, AppRejected,
     "not a spec"),
    ("a name ending in a newline", "answer", {"answer": {"spec": {**SPEC, "aggregates": [
        {"name": "n\n", "kind": "Count"}]}}}, AppRejected, "at spec/aggregates/0/name"),
]


@pytest.mark.parametrize(("entry", "payload", "error", "message"), [case[1:] for case in ODD_CHILDREN],
                         ids=[case[0] for case in ODD_CHILDREN])
def test_a_child_that_answers_with_anything_but_one_spec_is_rejected(entry, payload, error, message):
    started = time.monotonic()
    with pytest.raises((AppRejected, AppError)) as failed:
        load(json.dumps(payload), "app.py", "acme", stream(), LIMITS, entry=f"tests.unit.sandbox_entries:{entry}")
    assert type(failed.value) is error and message in str(failed.value), str(failed.value)
    assert_one_line_each(failed.value, "app.py")
    assert time.monotonic() - started < LIMITS.wall_s + SLACK_S


def test_a_child_that_hangs_is_killed_at_the_wall_clock_limit():
    started = time.monotonic()
    with pytest.raises(AppRejected, match=r"^app\.py: the app ran longer than 2 s and was stopped$"):
        load("def app(stream):\n    return stream\n", "app.py", "acme", stream(), sandbox.Limits(wall_s=2),
             entry="tests.unit.sandbox_entries:sleep")
    assert time.monotonic() - started < 2 + SLACK_S


def test_the_child_is_confined():
    report = json.loads(sandbox.run("tests.unit.sandbox_entries:probe", {}))
    assert report["uid"] == report["euid"] != 0 and report["gid"] != 0 and report["groups"] == []
    assert report["interfaces"] == ["lo"]  # its own network namespace: loopback only, and it is down
    assert report["connect_kafka"] == "blocked: OSError" and report["resolve_name"].startswith("blocked:")
    # chroot into the empty working folder: nothing of the file system is there, not even world-readable files
    assert report["cwd"] == "/" and report["root_entries"] == report["cwd_entries"] == []
    assert report["read_root_home"] == report["read_shadow"] == report["read_passwd"] == "blocked: FileNotFoundError"
    assert report["write_cwd"] == "blocked: PermissionError"
    assert report["fork"] == report["subprocess"] == "blocked: BlockingIOError"
    assert report["signal_parent"] == "blocked: PermissionError"
    assert report["stdin_is_dev_null"] and report["no_new_privs"] == 1
    assert report["heavy_modules"] == []  # the child is light: no Flink, Kafka or database client in it
    assert set(report["environment"]) <= {"LC_CTYPE"}  # set by Python itself (C locale coercion)
    assert report["open_fds"] == [0, 1, 2]
    limits = report["limits"]
    assert limits["RLIMIT_CPU"] == [sandbox.LIMITS.cpu_s, sandbox.LIMITS.cpu_s + 1]
    assert limits["RLIMIT_AS"] == [sandbox.LIMITS.memory_mib * 2**20] * 2
    assert limits["RLIMIT_FSIZE"] == limits["RLIMIT_NPROC"] == limits["RLIMIT_CORE"] == [0, 0]
    assert limits["RLIMIT_NOFILE"] == [sandbox.LIMITS.open_files] * 2


def test_without_root_the_child_runs_in_a_user_namespace_of_its_own(monkeypatch):
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    sandbox._isolation.cache_clear()
    try:
        report = json.loads(sandbox.run("tests.unit.sandbox_entries:probe", {}))
    finally:
        sandbox._isolation.cache_clear()
    assert report["uid"] == 65534 and report["interfaces"] == ["lo"]  # unmapped, so the overflow user
    assert report["no_new_privs"] == 1 and report["root_entries"] != []  # no chroot without root
    assert report["connect_kafka"] == "blocked: OSError"
    # (RLIMIT_NPROC stops the fork of a real non-root user; this test's process is root outside the namespace)


def test_where_no_sandbox_can_be_made_no_app_is_run(monkeypatch):
    def unavailable():
        raise sandbox.SandboxUnavailableError("cannot confine tenant apps on this machine")

    monkeypatch.setattr(sandbox, "_isolation", unavailable)
    with pytest.raises(AppError, match=r"^app\.py: cannot confine tenant apps on this machine$"):
        load("def app(stream):\n    return stream\n", "app.py", "acme", stream())


@pytest.mark.parametrize("case", [c for c in CASES if c.name in (
    "a subclass of an aggregate", "allocating at once", "crashing the interpreter", "a huge multi-line exception",
    "another tenant's topic as a literal", "a window of 10**12 minutes")], ids=lambda c: c.name)
def test_tenant_upload_refuses_hostile_apps_in_one_line_each_with_exit_2(case, tmp_path, capsys):
    app = tmp_path / "peaks.py"
    app.write_text(case.source)
    code = main(["tenant", "upload", str(app), "--tenant", "acme", "--registry", str(tmp_path / "registry")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and case.message in err
    assert all(line.isprintable() and len(line) < 700 for line in err.splitlines())
    assert not (tmp_path / "registry" / "acme" / "peaks").exists()


def test_tenant_submit_refuses_an_app_changed_in_the_registry_after_upload(tmp_path, capsys):
    registry = tmp_path / "registry"
    app = tmp_path / "peaks.py"
    app.write_text(aggregating("Count()"))
    version = upload(app, "acme", base=registry, limits=LIMITS)
    version.app_file.write_text(CASES[0].source)  # tampered with behind the registry's back
    code = main(["tenant", "submit", "peaks", "--tenant", "acme", "--registry", str(registry),
                 "--cluster", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "Mine is not one of the aggregates" in err
    assert len(err.splitlines()) == 1
