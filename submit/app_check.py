"""The static half of the tenant app contract: checked on the syntax tree, without running the app.

Only the operators and `math` may be imported, no builtins that reach files, code or Python's internals,
no names starting with `_`, no topic names of other tenants or Cassandra tables, and no work at import
time. This module is light (standard library only), so the sandboxed child (submit/app_child.py) runs
the same check before it runs the app; submit/tenant_apps.py re-exports it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pipeline.errors import SubmitError
from schemas import names

MAX_BYTES = 64 * 1024
ALLOWED_MODULES = frozenset({"__future__", "operators.aggregates", "operators.conditions", "operators.windows",
                             "operators.alarms", "math"})
FORBIDDEN_BUILTINS = frozenset({
    "open", "eval", "exec", "compile", "__import__", "getattr", "setattr", "delattr", "hasattr", "globals",
    "locals", "vars", "dir", "breakpoint", "input", "help", "exit", "quit", "type", "super", "memoryview"})
# Attributes without a leading `_` that still reach frames, code or other attributes by name:
# `(g for g in x).gi_frame.f_back.f_globals` is the caller's globals, `"{0.x}".format(obj)` reads `obj.x`.
INTROSPECTION = re.compile(r"(gi|cr|ag|tb|f|co)_\w+|mro|format|format_map|with_traceback")
KEYSPACE = "tenantstream"  # connectors.results.DEFAULT_KEYSPACE, which this light module cannot import

_COMPUTED = "\0"  # stands for an f-string's {expression} in the text that is checked for topic names
_PART = r"[\w\0-]+"
_TOPIC = re.compile(rf"(?<![\w\0-])(?P<tenant>{_PART})\.(?:sensors\.{_PART}|results\.{_PART}|deadletter|late|alerts)"
                    rf"(?![\w\0-])")
_TABLE = re.compile(rf"(?<![\w\0-]){re.escape(KEYSPACE)}\.{_PART}")
# Expressions made of these only are evaluated at import time without doing work (no calls).
_STATIC = (ast.Constant, ast.Name, ast.Attribute, ast.Subscript, ast.Tuple, ast.List, ast.Set, ast.Dict,
           ast.UnaryOp, ast.expr_context, ast.unaryop, ast.BitOr)
_UNSUPPORTED = {ast.Global: "`global`", ast.Nonlocal: "`nonlocal`", ast.AsyncFunctionDef: "`async def`",
                ast.Await: "`await`", ast.AsyncFor: "`async for`", ast.AsyncWith: "`async with`",
                ast.Yield: "`yield`", ast.YieldFrom: "`yield from`"}


@dataclass(frozen=True)
class Violation:
    """One reason an app is rejected, at the place in the file that causes it (line and column from 1, or
    None where no place is known, e.g. the app ran out of time)."""

    filename: str
    line: int | None
    col: int | None
    message: str

    def __str__(self) -> str:
        place = f"{self.line}:{self.col}:" if self.line and self.col else f"{self.line}:" if self.line else ""
        return f"{self.filename}:{place} {self.message}"


class AppRejected(SubmitError):  # noqa: N818 (the name the platform's contract uses)
    """The app broke the contract; each violation says where and why, one per line."""

    exit_code = 2

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = list(violations)
        super().__init__("\n".join(str(v) for v in self.violations))


class AppError(SubmitError):
    """An accepted app failed while loading, or returned something the platform cannot run."""

    exit_code = 2

    def __init__(self, filename: str, message: str, line: int | None = None) -> None:
        self.filename, self.line, self.message = filename, line, message
        super().__init__(f"{filename}:{line}: {message}" if line else f"{filename}: {message}")


def check_name(value: str, what: str) -> str:
    """`value` if it is a tenant or app name (it becomes a folder and part of topic names)."""
    return names.check_name(value, what)


def validate(source: str, filename: str, tenant: str) -> list[Violation]:
    """Every way `source` breaks the tenant app contract, found without executing it; empty if none."""
    check_name(tenant, "tenant")
    try:
        size = len(source.encode("utf-8"))
    except UnicodeEncodeError as err:  # a lone surrogate: no file's text decodes to one
        return [Violation(filename, source.count("\n", 0, err.start) + 1, 1, "the text is not Unicode (a lone "
                                                                              "surrogate)")]
    if size > MAX_BYTES:
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
        """String literals must not name another tenant's topic or a Cassandra table, nor carry SQL hints."""
        if "/*" in text:
            self.report(node, "'/*' starts an SQL comment or hint (such as /*+ OPTIONS(...) */): apps "
                              "declare columns, numbers and comparisons, never SQL text")
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
