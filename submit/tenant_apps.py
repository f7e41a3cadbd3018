"""Tenant stream apps: checked without running them, loaded with restricted builtins, kept as versions.

A tenant uploads a Python file that defines `app(stream)`: a transformation written against this
library's operators. The platform binds the tenant's own source and sinks around it, so the app has
no business reaching anything else. `validate` checks that on the syntax tree without executing the
code: only the operators and `math` may be imported, no builtins that reach files, code or Python's
internals, no names starting with `_`, no topic names of other tenants or Cassandra tables, and no
work at import time. `load` runs an accepted app with a small set of builtins and checks that what
it returns is still the tenant's job. The registry keeps each accepted app as a numbered version
with its status, on disk.

These checks are an allow-list on syntax, not an operating-system sandbox: an accepted app can
still loop forever or allocate without bound, so whoever calls `load` for real should do it in a
process with time and memory limits.
"""

from __future__ import annotations

import ast
import builtins
import copy
import dataclasses
import hashlib
import importlib
import json
import os
import re
import tempfile
import traceback
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, SimpleNamespace

from connectors.results import DEFAULT_KEYSPACE
from jobs.pipeline import Job
from operators.aggregates import Count, CountIf, Max, Mean, Min, Share, Sum
from operators.conditions import Condition, unsafe_parts
from operators.windows import Tumbling
from schemas import names
from schemas.sql import field_names

MAX_BYTES = 64 * 1024
ALLOWED_MODULES = frozenset({"__future__", "operators.aggregates", "operators.conditions", "operators.windows",
                             "operators.alarms", "math"})
FORBIDDEN_BUILTINS = frozenset({
    "open", "eval", "exec", "compile", "__import__", "getattr", "setattr", "delattr", "hasattr", "globals",
    "locals", "vars", "dir", "breakpoint", "input", "help", "exit", "quit", "type", "super", "memoryview"})
# Attributes without a leading `_` that still reach frames, code or other attributes by name:
# `(g for g in x).gi_frame.f_back.f_globals` is the caller's globals, `"{0.x}".format(obj)` reads `obj.x`.
INTROSPECTION = re.compile(r"(gi|cr|ag|tb|f|co)_\w+|mro|format|format_map|with_traceback")
SAFE_BUILTINS = ("len", "range", "min", "max", "abs", "round", "sum", "dict", "list", "tuple", "str", "int",
                 "float", "bool", "sorted", "enumerate", "zip", "isinstance", "ValueError")
AGGREGATES = (Count, CountIf, Share, Sum, Mean, Min, Max)
STATUSES = ("accepted", "submitted", "running", "failed", "cancelled")
DEFAULT_BASE = "~/.local/state/tenantstream/apps"

_COLUMN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_COMPUTED = "\0"  # stands for an f-string's {expression} in the text that is checked for topic names
_PART = r"[\w\0-]+"
_TOPIC = re.compile(rf"(?<![\w\0-])(?P<tenant>{_PART})\.(?:sensors\.{_PART}|results\.{_PART}|deadletter|late|alerts)"
                    rf"(?![\w\0-])")
_TABLE = re.compile(rf"(?<![\w\0-]){re.escape(DEFAULT_KEYSPACE)}\.{_PART}")
# Expressions made of these only are evaluated at import time without doing work (no calls).
_STATIC = (ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Set, ast.Dict,
           ast.UnaryOp, ast.expr_context, ast.unaryop, ast.BitOr)
_UNSUPPORTED = {ast.Global: "`global`", ast.Nonlocal: "`nonlocal`", ast.AsyncFunctionDef: "`async def`",
                ast.Await: "`await`", ast.AsyncFor: "`async for`", ast.AsyncWith: "`async with`",
                ast.Yield: "`yield`", ast.YieldFrom: "`yield from`"}


@dataclass(frozen=True)
class Violation:
    """One reason an app is rejected, at the place in the file that causes it (line and column from 1)."""

    filename: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.col}: {self.message}"


class AppRejected(Exception):  # noqa: N818 (the name the platform's contract uses)
    """The app broke the contract; each violation says where and why, one per line."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = list(violations)
        super().__init__("\n".join(str(v) for v in self.violations))


class AppError(Exception):
    """An accepted app failed while loading, or returned something the platform cannot run."""

    def __init__(self, filename: str, message: str, line: int | None = None) -> None:
        self.filename, self.line, self.message = filename, line, message
        super().__init__(f"{filename}:{line}: {message}" if line else f"{filename}: {message}")


def check_name(value: str, what: str) -> str:
    """`value` if it is a tenant or app name (it becomes a folder and part of topic names)."""
    return names.check_name(value, what)


def validate(source: str, filename: str, tenant: str) -> list[Violation]:
    """Every way `source` breaks the tenant app contract, found without executing it; empty if none."""
    check_name(tenant, "tenant")
    if len(source.encode("utf-8")) > MAX_BYTES:
        return [Violation(filename, 1, 1, f"the file is larger than {MAX_BYTES // 1024} KiB")]
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as err:
        return [Violation(filename, err.lineno or 1, err.offset or 1, f"syntax error: {err.msg}")]
    except (ValueError, RecursionError, MemoryError) as err:  # null bytes (Python 3.10), too deep
        return [Violation(filename, 1, 1, f"cannot be parsed: {str(err) or 'nested too deeply'}")]
    checker = _Checker(filename, tenant)
    checker.run(tree)
    return sorted(checker.violations, key=lambda v: (v.line, v.col))


class _Checker:
    """Collects the violations of one syntax tree."""

    def __init__(self, filename: str, tenant: str) -> None:
        self.filename, self.tenant = filename, tenant
        self.violations: list[Violation] = []

    def report(self, node: ast.AST, message: str) -> None:
        self.violations.append(Violation(self.filename, getattr(node, "lineno", 1),
                                         getattr(node, "col_offset", 0) + 1, message))

    def run(self, tree: ast.Module) -> None:
        self.check_body(tree.body, module=True)
        self.check_entry_point(tree)
        checks = {ast.Import: self.check_import, ast.ImportFrom: self.check_import_from, ast.Name: self.check_name,
                  ast.Attribute: self.check_attribute_node,
                  ast.MatchClass: self.check_match_class,  # `case C(attr=x)` reads C.attr
                  ast.Constant: self.check_constant, ast.JoinedStr: self.check_fstring}
        fstring_parts = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                         for part in node.values if isinstance(part, ast.Constant)}
        for node in ast.walk(tree):  # iterative: a deeply nested file cannot exhaust the stack here
            if id(node) in fstring_parts:
                continue  # checked as part of its f-string
            if type(node) in _UNSUPPORTED:
                self.report(node, f"{_UNSUPPORTED[type(node)]} is not supported in tenant apps")
            for name in _bound_names(node):
                if name.startswith("_") and name not in FORBIDDEN_BUILTINS:
                    self.report(node, f"`{name}`: names starting with '_' reach Python's internals "
                                      "(attribute tricks) and are not allowed")
            if type(node) in checks:
                checks[type(node)](node)

    def check_body(self, body: list[ast.stmt], module: bool) -> None:
        """Module and class bodies run at import time: they may only define things, never do work."""
        for stmt in body:
            if (module and isinstance(stmt, ast.Import | ast.ImportFrom)) or isinstance(stmt, ast.Pass) or (
                    isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)):
                continue
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                self.check_import_time(stmt, stmt.decorator_list, [
                    *stmt.args.defaults, *stmt.args.kw_defaults, stmt.returns,
                    *(a.annotation for a in (*stmt.args.posonlyargs, *stmt.args.args, *stmt.args.kwonlyargs,
                                             stmt.args.vararg, stmt.args.kwarg) if a)])
            elif isinstance(stmt, ast.ClassDef):
                self.check_import_time(stmt, stmt.decorator_list, stmt.bases)
                if stmt.keywords:
                    self.report(stmt, f"class {stmt.name}: class keywords (such as metaclass=) are not allowed")
                self.check_body(stmt.body, module=False)
            elif not _is_constant_assignment(stmt):
                self.report(stmt, "top-level code runs at import time: only imports, function and class "
                                  "definitions, docstrings and constant assignments may stand here; "
                                  "do the work inside app(stream)")

    def check_import_time(self, stmt: ast.stmt, decorators: list[ast.expr], expressions: list[ast.expr]) -> None:
        if decorators:
            self.report(decorators[0], f"{stmt.name}: decorators run at import time and are not allowed")
        for expr in expressions:
            if not _is_static(expr):
                self.report(expr, f"{stmt.name}: this is computed at import time; use a constant")

    def check_entry_point(self, tree: ast.Module) -> None:
        entries = [s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "app"]
        if not entries:
            self.report(tree, "no entry point: define `def app(stream):` at module level")
            return
        args = entries[-1].args
        given = len(args.posonlyargs) + len(args.args)
        if given != 1 or args.vararg or args.kwonlyargs or args.kwarg:
            self.report(entries[-1], "app must take exactly one parameter, the stream: `def app(stream):`")

    def check_import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.check_module(node, alias.name)

    def check_import_from(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.report(node, "relative imports are not allowed: tenant apps may import only "
                              + ", ".join(sorted(ALLOWED_MODULES)))
            return
        self.check_module(node, node.module or "")
        if any(alias.name == "*" for alias in node.names):
            self.report(node, f"`from {node.module} import *`: name what you import")

    def check_module(self, node: ast.stmt, module: str) -> None:
        if module not in ALLOWED_MODULES:
            self.report(node, f"import of {module} is not allowed: tenant apps may import only "
                              + ", ".join(sorted(ALLOWED_MODULES)))

    def check_name(self, node: ast.Name) -> None:
        if node.id in FORBIDDEN_BUILTINS:
            self.report(node, f"`{node.id}` is not allowed in tenant apps: it reaches outside the app "
                              "or into Python's internals")

    def check_attribute_node(self, node: ast.Attribute) -> None:
        self.check_attribute(node, node.attr)
        if not isinstance(node.ctx, ast.Load):
            self.report(node, f"`.{node.attr}`: assigning or deleting attributes is not allowed (it could change "
                              "the library's classes for every job in the process)")

    def check_match_class(self, node: ast.MatchClass) -> None:
        for attr in node.kwd_attrs:
            self.check_attribute(node, attr)

    def check_attribute(self, node: ast.AST, attr: str) -> None:
        if attr.startswith("_"):
            self.report(node, f"`.{attr}`: attributes starting with '_' reach Python's internals "
                              "(attribute tricks) and are not allowed")
        elif INTROSPECTION.fullmatch(attr):
            self.report(node, f"`.{attr}` reaches the interpreter's frames, code or attributes by name "
                              "and is not allowed")

    def check_constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str | bytes):
            text = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
            self.check_text(node, text)

    def check_fstring(self, node: ast.JoinedStr) -> None:
        self.check_text(node, "".join(p.value if isinstance(p, ast.Constant) else _COMPUTED for p in node.values))

    def check_text(self, node: ast.AST, text: str) -> None:
        """String literals must not name another tenant's topic or a Cassandra table."""
        for match in _TOPIC.finditer(text):
            owner, shown = match["tenant"], match[0].replace(_COMPUTED, "{...}")
            if _COMPUTED in owner:
                self.report(node, f"'{shown}' builds a topic name for a computed tenant: the platform wires in "
                                  "the tenant's own topics")
            elif owner != self.tenant:
                self.report(node, f"'{shown}' names a topic of tenant {owner}: an app reads and writes only "
                                  f"its own tenant's streams, which the platform wires in")
        for match in _TABLE.finditer(text):
            self.report(node, f"'{match[0].replace(_COMPUTED, '{...}')}' names a Cassandra table: results "
                              "reach Cassandra through the platform, not through the app")


def _bound_names(node: ast.AST) -> Iterator[str]:
    """The identifiers a node reads or binds (attributes are checked on their own)."""
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.arg):
        yield node.arg
    elif isinstance(node, ast.alias):
        yield from (n for n in (node.asname, node.name if node.name != "*" else None) if n and "." not in n)
    else:
        for field in ("name", "arg", "rest"):  # defs, classes, keywords, except handlers, match patterns
            value = getattr(node, field, None)
            if isinstance(value, str):
                yield value


def _is_static(expr: ast.expr | None) -> bool:
    return expr is None or all(isinstance(n, _STATIC) or (isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr))
                               for n in ast.walk(expr))


def _is_constant_assignment(stmt: ast.stmt) -> bool:
    """`NAME = <literal or other constants>`: binds names, calls nothing."""
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, ast.AnnAssign):
        targets = [stmt.target]
    else:
        return False
    simple = all(isinstance(n, ast.Name | ast.Tuple | ast.List | ast.expr_context) for t in targets
                 for n in ast.walk(t))
    return simple and _is_static(stmt.value) and _is_static(getattr(stmt, "annotation", None))


def bound_stream(tenant: str, app: str) -> Job:
    """What an app's `app(stream)` receives: a job over the tenant's own alarm events only."""
    return Job(f"app_{check_name(app, 'app')}", tenants=(tenant,)).source(
        "alarms", schema="alarm_event.v2", time="event_time", required=("station_id", "datapoint_id"))


def load(source: str, filename: str, tenant: str, stream_job: Job) -> Job:
    """The job that the tenant's app makes of `stream_job` (the tenant's bound source), checked.

    Raises AppRejected if the source breaks the contract, AppError if the app fails or returns a job
    that the platform cannot run as the tenant's own.
    """
    if stream_job.tenants != (tenant,):
        raise ValueError(f"the stream given to {tenant}'s app must be bound to {tenant} alone, "
                         f"not {stream_job.tenants}")
    violations = validate(source, filename, tenant)
    if violations:
        raise AppRejected(violations)
    namespace = {"__builtins__": _restricted_builtins(), "__name__": f"tenant_app.{tenant}"}
    try:
        exec(compile(source, filename, "exec", dont_inherit=True), namespace)
        entry = namespace.get("app")
        if not callable(entry):
            raise AppError(filename, "`app` is not a function after the module ran")
        result = entry(stream_job)
    except AppError:
        raise
    except Exception as err:
        lines = [frame.lineno for frame in traceback.extract_tb(err.__traceback__) if frame.filename == filename]
        raise AppError(filename, f"app raised {type(err).__name__}: {err}", lines[-1] if lines else None) from err
    _check_result(result, stream_job, filename)
    return result


def _restricted_builtins() -> dict[str, object]:
    """The builtins an app sees: plain values and functions, an import that knows only the allow-list."""
    allowed: dict[str, object] = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    allowed["__build_class__"] = builtins.__build_class__  # what a `class` statement calls
    packages: dict[str, SimpleNamespace] = {}

    def guarded_import(name: str, globals_: object = None, locals_: object = None,
                       fromlist: Sequence[str] | None = (), level: int = 0) -> SimpleNamespace:
        if level or name not in ALLOWED_MODULES:
            raise ImportError(f"tenant apps may not import {name}")
        exports = _exports(importlib.import_module(name))
        if fromlist or "." not in name:
            return exports
        # `import operators.windows` binds `operators`: one namespace per package, so imports add up
        package, _, module = name.partition(".")
        setattr(packages.setdefault(package, SimpleNamespace()), module, exports)
        return packages[package]

    allowed["__import__"] = guarded_import
    return allowed


def _exports(module: ModuleType) -> SimpleNamespace:
    """What an app may take from an allowed module: its own public functions and classes, copies of its values.

    Never a module object, and never a function the module itself imported, so nothing an allowed
    module imports (now or later) reaches the app through it; values are copies, so an app that
    changes one (a dict of aggregates) changes only its own.
    """
    return SimpleNamespace(**{
        name: value if callable(value) else copy.deepcopy(value) for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
        and (not callable(value) or getattr(value, "__module__", None) == module.__name__)})


def _check_result(result: object, stream_job: Job, filename: str) -> None:
    """The app may only add keys, a window and aggregates of the source's columns to the given job."""
    if type(result) is not Job:
        raise AppError(filename, f"app(stream) returned {type(result).__name__}, not the stream it was given: "
                                 "return stream.key_by(...).window(...).aggregate(...)")
    for field in ("name", "tenants", "stream", "event_schema", "time_column", "required", "result_schema"):
        before, after = getattr(stream_job, field), getattr(result, field)
        if before != after:
            raise AppError(filename, f"app changed the job's {field} from {before!r} to {after!r}: the platform "
                                     "binds the tenant's source and sinks, the app only transforms the stream")
    missing = [part for part, present in (("key_by(...)", result.keys), ("window(...)", result.tumbling),
                                          ("aggregate(...)", result.aggregates)) if not present]
    if missing:
        raise AppError(filename, f"app returned a job without {', '.join(missing)}: apply .key_by(...), "
                                 ".window(...) and .aggregate(...) to the stream")
    columns = field_names(result.event_schema)
    problems = [f"key {k!r} is not a column of {result.event_schema}" for k in result.keys if k not in columns]
    if type(result.tumbling) is not Tumbling:
        problems.append("the window must come from operators.windows")
    for name, aggregate in result.aggregates:
        problems += [f"aggregate {name!r}: {p}" for p in _aggregate_problems(name, aggregate, columns)]
    if problems:
        raise AppError(filename, "; ".join(problems))


def _aggregate_problems(name: str, aggregate: object, columns: list[str]) -> Iterator[str]:
    """Names, columns and aggregate types go into the job's SQL: only known ones are let through."""
    if not _COLUMN.fullmatch(name):
        yield "a result name is a letter followed by letters, digits or '_'"
    if type(aggregate) not in AGGREGATES:
        yield f"{type(aggregate).__name__} is not one of the aggregates of operators.aggregates"
    elif hasattr(aggregate, "column") and aggregate.column not in columns:
        yield f"{aggregate.column!r} is not a column of the stream"
    elif hasattr(aggregate, "condition"):
        if type(aggregate.condition) is not Condition:
            yield "its condition must be an operators.conditions.Condition"
        else:
            yield from unsafe_parts(aggregate.condition, columns)


# The registry: <base>/<tenant>/<name>/v<N>/{app.py, meta.json}, one folder per accepted content.

@dataclass(frozen=True)
class AppVersion:
    """One accepted version of a tenant's app and where it stands."""

    tenant: str
    name: str
    version: int
    sha256: str
    uploaded_at: str
    status: str
    detail: str
    directory: Path

    @property
    def app_file(self) -> Path:
        return self.directory / "app.py"

    def meta(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "directory"}


def upload(path: Path | str, tenant: str, name: str | None = None, *, base: Path | str | None = None) -> AppVersion:
    """Validate the app file and keep it as the tenant's next version; the same content is the same version.

    The name defaults to the file name without `.py`. Raises AppRejected with the violations.
    """
    path = Path(path)
    check_name(tenant, "tenant")
    name = check_name(name or path.stem, "app name")
    data = path.read_bytes()
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise AppRejected([Violation(str(path), line, 1, "the file is not UTF-8 text")]) from None
    violations = validate(source, str(path), tenant)
    if violations:
        raise AppRejected(violations)
    digest = hashlib.sha256(data).hexdigest()
    app_dir = _base(base) / tenant / name
    for existing in _versions(app_dir):
        if existing.sha256 == digest:
            return existing
    return _store(app_dir, tenant, name, data, digest)


def _store(app_dir: Path, tenant: str, name: str, data: bytes, digest: str) -> AppVersion:
    """Write the version in a staging folder, then rename it into place: a version is whole or absent."""
    app_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=app_dir))
    (staging / "app.py").write_bytes(data)
    while True:
        number = max((v.version for v in _versions(app_dir)), default=0) + 1
        uploaded_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        version = AppVersion(tenant, name, number, digest, uploaded_at, "accepted", "", app_dir / f"v{number}")
        _write_meta(staging, version)
        try:
            staging.rename(version.directory)
            return version
        except OSError:
            if not version.directory.exists():
                raise
            # a concurrent upload took this number: take the next one


def apps(tenant: str | None = None, *, base: Path | str | None = None) -> list[AppVersion]:
    """Every stored version, of one tenant or of all, ordered by tenant, app and version."""
    root = _base(base)
    tenant_dirs = [root / check_name(tenant, "tenant")] if tenant else _subdirs(root)
    return [v for tenant_dir in tenant_dirs for app_dir in _subdirs(tenant_dir) for v in _versions(app_dir)]


def set_status(tenant: str, name: str, version: int, status: str, detail: str = "", *,
               base: Path | str | None = None) -> AppVersion:
    """Record where a version stands (submitted, running, failed with why, ...)."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    directory = _base(base) / check_name(tenant, "tenant") / check_name(name, "app name") / f"v{version}"
    if not (directory / "meta.json").is_file():
        raise ValueError(f"no app {tenant}/{name} v{version} under {directory.parent.parent.parent}")
    updated = dataclasses.replace(_read_version(directory), status=status, detail=detail)
    _write_meta(directory, updated)
    return updated


def package(app_version: AppVersion) -> Path:
    """A zip of the app and its metadata for submission, refused if the file changed since it was accepted."""
    data = app_version.app_file.read_bytes()
    if hashlib.sha256(data).hexdigest() != app_version.sha256:
        raise ValueError(f"{app_version.app_file} changed since it was accepted (sha256 differs); upload it again")
    target = app_version.directory / f"{app_version.tenant}-{app_version.name}-v{app_version.version}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", data)
        archive.writestr("meta.json", json.dumps(app_version.meta(), indent=2))
    return target


def _base(base: Path | str | None) -> Path:
    return Path(base or DEFAULT_BASE).expanduser()


def _subdirs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and names.NAME.fullmatch(p.name)) \
        if directory.is_dir() else []


def _versions(app_dir: Path) -> list[AppVersion]:
    found = [_read_version(d) for d in _subdirs(app_dir) if re.fullmatch(r"v\d+", d.name)]
    return sorted(found, key=lambda v: v.version)


def _read_version(directory: Path) -> AppVersion:
    return AppVersion(**json.loads((directory / "meta.json").read_text()), directory=directory)


def _write_meta(directory: Path, version: AppVersion) -> None:
    """Replace meta.json whole, so a reader never sees half of it."""
    temporary = directory / "meta.json.tmp"
    temporary.write_text(json.dumps(version.meta(), indent=2) + "\n")
    os.replace(temporary, directory / "meta.json")

