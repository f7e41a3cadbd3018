"""The trusted half of planning a tenant app from data: read the sandbox's answer, check it, build the Job.

The sandboxed child (submit/app_child.py) answers with one line of JSON. It is parsed with a size cap
and no NaN or Infinity, held to SCHEMA (jsonschema), and its names are checked against allow-lists:
the columns of the stream's Avro schema, the aggregate kinds of operators.aggregates, finite numbers
within a range, bounded conditions. The Job is then built here, from the tenant's bound stream and the
library's own objects, with a condition's SQL rendered here from its tree: nothing the tenant made,
no object, no SQL text and no callable, reaches the planner.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from operators.aggregates import Count, CountIf, Max, Mean, Min, Share, Sum
from operators.conditions import Condition
from operators.windows import Tumbling
from pipeline.job import RESULT_COLUMNS, Job
from pipeline.sql import quote
from schemas.sql import flink_columns
from submit.app_stream import COMPARISONS, MAX_AGGREGATES, MAX_DEPTH, MAX_KEYS, MAX_NAME, OF_COLUMN, WITH_CONDITION

AGGREGATES = {cls.__name__: cls for cls in (Count, CountIf, Share, Sum, Mean, Min, Max)}
NUMERIC_TYPES = ("DOUBLE", "FLOAT", "INT", "BIGINT", "SMALLINT", "TINYINT")
MAX_NUMBER = 1e15  # larger or smaller numbers in a condition are refused (a double is exact to 2**53)
MAX_WINDOW_MS = 99 * 86_400_000  # pipeline.sql.interval_sql goes up to 99 days
MAX_CONDITION_NODES = 400  # objects and lists of one condition's tree (app_stream allows 200 tokens)

# Patterns end in \\Z, not $: jsonschema matches them with Python's re.search, where $ also matches before a
# final newline.
_NAME = {"type": "string", "pattern": f"^[A-Za-z][A-Za-z0-9_]{{0,{MAX_NAME - 1}}}\\Z"}
_LINE = {"type": ["integer", "null"], "minimum": 1}
_MESSAGE = {"type": "string", "minLength": 1, "maxLength": 300, "pattern": "^[ -~]+\\Z"}
_OPERAND = {"oneOf": [
    {"type": "object", "properties": {"column": _NAME}, "required": ["column"], "additionalProperties": False},
    {"type": "object", "properties": {"number": {"type": "number"}}, "required": ["number"],
     "additionalProperties": False}]}
_CONDITION = {"oneOf": [
    {"type": "object", "properties": {"cmp": {"enum": list(COMPARISONS)}, "left": _OPERAND, "right": _OPERAND},
     "required": ["cmp", "left", "right"], "additionalProperties": False},
    *({"type": "object", "properties": {word: {"type": "array", "minItems": 2, "maxItems": 64,
                                               "items": {"$ref": "#/$defs/condition"}}},
       "required": [word], "additionalProperties": False} for word in ("and", "or")),
    {"type": "object", "properties": {"not": {"$ref": "#/$defs/condition"}}, "required": ["not"],
     "additionalProperties": False}]}
_AGGREGATE = {"type": "object", "required": ["name", "kind"], "additionalProperties": False,
              "properties": {"name": _NAME, "kind": {"enum": list(AGGREGATES)}, "column": _NAME,
                             "condition": {"$ref": "#/$defs/condition"}, "where": {"$ref": "#/$defs/condition"}},
              "allOf": [
                  {"if": {"properties": {"kind": {"enum": list(WITH_CONDITION)}}},
                   "then": {"required": ["condition"], "not": {"anyOf": [{"required": ["column"]},
                                                                         {"required": ["where"]}]}}},
                  {"if": {"properties": {"kind": {"enum": list(OF_COLUMN)}}},
                   "then": {"required": ["column"], "not": {"required": ["condition"]}}},
                  {"if": {"properties": {"kind": {"const": "Count"}}},
                   "then": {"maxProperties": 2}}]}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {"condition": _CONDITION},
    "type": "object", "minProperties": 1, "maxProperties": 1,
    "properties": {
        "spec": {"type": "object", "required": ["stream", "keys", "window", "aggregates"],
                 "additionalProperties": False,
                 "properties": {
                     "stream": _NAME,
                     "keys": {"type": "array", "minItems": 1, "maxItems": MAX_KEYS, "uniqueItems": True,
                              "items": _NAME},
                     "window": {"type": "object", "required": ["size_ms"], "additionalProperties": False,
                                "properties": {"size_ms": {"type": "integer", "minimum": 1000,
                                                           "maximum": MAX_WINDOW_MS, "multipleOf": 1000}}},
                     "aggregates": {"type": "array", "minItems": 1, "maxItems": MAX_AGGREGATES,
                                    "items": _AGGREGATE}}},
        "rejected": {"type": "array", "minItems": 1, "maxItems": 20, "items": {
            "type": "object", "required": ["line", "col", "message"], "additionalProperties": False,
            "properties": {"line": _LINE, "col": _LINE, "message": _MESSAGE}}},
        "error": {"type": "object", "required": ["line", "message"], "additionalProperties": False,
                  "properties": {"line": _LINE, "message": _MESSAGE}}},
    "additionalProperties": False}
_VALIDATOR = Draft202012Validator(SCHEMA)
_FLOAT = re.compile(r"-?\d+(\.\d+)?")


class OutputError(Exception):
    """The child's answer is not one line of JSON that SCHEMA allows; the message says why, in one line."""


class SpecProblemsError(Exception):
    """The spec is well formed but names what the tenant's stream does not have."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def read_output(stdout: bytes) -> dict:
    """The child's one answer, checked against SCHEMA. Raises OutputError."""
    lines = stdout.count(b"\n") + bool(stdout and not stdout.endswith(b"\n"))
    if lines != 1:
        raise OutputError(f"the app's sandbox printed {lines} lines, not one line of JSON")
    try:
        answer = json.loads(stdout.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise OutputError(f"the app's sandbox printed something other than JSON ({_short(err)})") from None
    depth = _depth(answer)
    if depth > 2 * MAX_DEPTH + 10:  # a level of a condition is at most an object and a list
        raise OutputError(f"the app's sandbox printed JSON nested {depth} deep")
    error = best_match(_VALIDATOR.iter_errors(answer))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "the top"
        raise OutputError(f"the app's sandbox printed an answer that is not a spec: at {where}: "
                          f"{_short(error.message)}")
    return answer


def build(spec: dict, stream_job: Job) -> Job:
    """The tenant's job: its bound stream, keyed, windowed and aggregated as the spec says.

    Raises SpecProblemsError."""
    schema = stream_job.event_schema
    types = {c.split(" ", 1)[0].strip("`"): c.split(" ", 1)[1] for c in flink_columns(schema)}
    numeric = [name for name, sql_type in types.items() if sql_type in NUMERIC_TYPES]
    problems = []
    size_ms = spec["window"]["size_ms"]
    if type(size_ms) is not int:  # JSON Schema's integers include 60000.0
        problems.append(f"the window's size {size_ms!r} is not a whole number of milliseconds")
    if spec["stream"] != stream_job.stream:
        problems.append(f"the spec is for stream {spec['stream']!r}, not the tenant's {stream_job.stream!r}")
    problems += [f"key {k!r} is not a column of {schema}" for k in spec["keys"] if k not in types]
    problems += [f"key {k!r} is a column the results have already" for k in spec["keys"] if k in RESULT_COLUMNS]
    names = [a["name"] for a in spec["aggregates"]]
    taken = {*spec["keys"], *RESULT_COLUMNS}
    problems += [f"aggregate {n!r}: the name is a key, a result column or another aggregate's" for i, n in
                 enumerate(names) if n in taken or n in names[:i]]
    aggregates = {}
    for item in spec["aggregates"]:
        found, aggregate = _aggregate(item, numeric)
        problems += [f"aggregate {item['name']!r}: {p}" for p in found]
        aggregates[item["name"]] = aggregate
    if problems:
        raise SpecProblemsError(problems)
    return stream_job.key_by(*spec["keys"]).window(Tumbling(size_ms)).aggregate(**aggregates)


def _aggregate(item: dict, numeric: list[str]) -> tuple[list[str], object]:
    kind, name = AGGREGATES[item["kind"]], item["name"]
    problems: list[str] = []
    condition = item.get("condition") or item.get("where")
    sql = condition_sql(condition, numeric, problems) if condition else ""
    if "column" in item and item["column"] not in numeric:
        problems.append(f"{item['column']!r} is not a numeric column of the stream ({', '.join(numeric)})")
    if problems:
        return problems, None
    rebuilt = Condition(f"condition of {name}", sql) if sql else None
    if kind is Count:
        return [], Count()
    if kind in (CountIf, Share):
        return [], kind(rebuilt)
    return [], kind(item["column"], rebuilt)


def condition_sql(tree: dict, columns: list[str], problems: list[str]) -> str:
    """A condition's Flink SQL, written here from its tree (columns of `columns`, finite numbers within
    ±MAX_NUMBER); what is wrong is added to `problems`."""
    if _nodes(tree) > MAX_CONDITION_NODES:
        problems.append(f"the condition has more than {MAX_CONDITION_NODES} parts")
        return ""
    return _render(tree, columns, problems)


def _render(tree: dict, columns: list[str], problems: list[str]) -> str:
    if "cmp" in tree:
        return f"{_operand(tree['left'], columns, problems)} {tree['cmp']} {_operand(tree['right'], columns, problems)}"
    if "not" in tree:
        return f"NOT ({_render(tree['not'], columns, problems)})"
    word = "and" if "and" in tree else "or"
    parts = [_render(part, columns, problems) for part in tree[word]]
    return f" {word.upper()} ".join(f"({part})" if ("and" in p or "or" in p) else part
                                    for part, p in zip(parts, tree[word], strict=True))


def _operand(operand: dict, columns: list[str], problems: list[str]) -> str:
    if "column" in operand:
        if operand["column"] not in columns:
            problems.append(f"`{operand['column']}` is not a numeric column of the stream ({', '.join(columns)})")
        return quote(operand["column"])
    number = operand["number"]
    finite = type(number) is int or (type(number) is float and math.isfinite(number))  # abs() of any int is fine
    if not finite or abs(number) > MAX_NUMBER:
        problems.append(f"{number!r} is not a finite number within ±{MAX_NUMBER:g}")
        return "0"
    text = str(number) if type(number) is int else format(Decimal(repr(number)), "f")
    if not _FLOAT.fullmatch(text):
        problems.append(f"{number!r} cannot be written as a plain decimal number")
    return text


def _nodes(tree: object) -> int:
    """How many objects and lists a JSON value holds (iteratively: the value may be deep)."""
    count, stack = 0, [tree]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            count += 1
            stack.extend(value.values())
        elif isinstance(value, list):
            count += 1
            stack.extend(value)
    return count


def _depth(value: object) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _short(error: object) -> str:
    text = " ".join(str(error).split())
    return "".join(c if " " <= c <= "~" else "?" for c in (text if len(text) <= 160 else text[:157] + "..."))
