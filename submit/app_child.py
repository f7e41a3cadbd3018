"""The confined child of submit/sandbox.py, and the entry that plans a tenant's app there.

`main` reads its request (as root, before anything else), limits itself, imports what the entry and
the apps may use, sets no_new_privs, makes its empty working folder its root (chroot), drops to the
unprivileged user, calls the entry and prints its answer as one line of JSON. `build` is the entry
for tenant apps: the static check of submit/app_check.py, then the app with restricted builtins on
a recording stream (submit/app_stream.py); its answer is the spec, the violations, or the app's
error. Standard library and operators only: nothing here may pull in pyflink or the Kafka client.
"""

from __future__ import annotations

import builtins
import copy
import ctypes
import importlib
import json
import os
import resource
import sys
from collections.abc import Sequence
from types import ModuleType, SimpleNamespace, TracebackType

from submit.app_check import ALLOWED_MODULES, validate
from submit.app_stream import SpecError, Stream, to_spec

APP_FILE = "<tenant app>"  # the file name the app is compiled under: its frames are found by it
SAFE_BUILTINS = ("len", "range", "min", "max", "abs", "round", "sum", "dict", "list", "tuple", "str", "int",
                 "float", "bool", "sorted", "enumerate", "zip", "isinstance", "ValueError")
MAX_MESSAGE = 300
MAX_VIOLATIONS = 20
PR_SET_NO_NEW_PRIVS = 38  # prctl(2)


def main(request_path: str) -> None:
    """Run the request's entry confined, print its answer; any failure of ours is a non-zero exit."""
    with open(request_path) as file:
        request = json.load(file)
    limits = request["limits"]
    cpu = limits["cpu_s"]
    memory = limits["memory_mib"] * 1024 * 1024
    for limit, value in ((resource.RLIMIT_CPU, (cpu, cpu + 1)), (resource.RLIMIT_AS, (memory, memory)),
                         (resource.RLIMIT_FSIZE, (0, 0)), (resource.RLIMIT_CORE, (0, 0)),
                         (resource.RLIMIT_NPROC, (0, 0)),
                         (resource.RLIMIT_NOFILE, (limits["open_files"], limits["open_files"]))):
        resource.setrlimit(limit, value)
    module, _, function = request["entry"].partition(":")
    entry = getattr(importlib.import_module(module), function)
    for name in ALLOWED_MODULES:
        importlib.import_module(name)  # before the drop: nobody cannot read the interpreter's files
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        sys.exit("could not set no_new_privs")  # without it, exec of a setuid program could regain privileges
    if request["uid"] is not None:
        os.chroot(".")  # the empty working folder becomes the whole file system: no files, no Unix sockets
        os.chdir("/")
        os.setgroups([])
        os.setresgid(request["gid"], request["gid"], request["gid"])
        os.setresuid(request["uid"], request["uid"], request["uid"])
        if 0 in (*os.getresuid(), *os.getresgid()):
            sys.exit("could not drop root")
    answer = entry(request["payload"])
    sys.stdout.buffer.write((json.dumps(answer, allow_nan=False, separators=(",", ":")) + "\n").encode())
    sys.stdout.buffer.flush()


def build(payload: dict) -> dict:
    """The entry for tenant apps: {"spec": ...}, {"rejected": [violation, ...]} or {"error": ...}."""
    violations = validate(payload["source"], APP_FILE, payload["tenant"])
    if violations:
        return {"rejected": [{"line": v.line, "col": v.col, "message": one_line(v.message)}
                             for v in violations[:MAX_VIOLATIONS]]}
    return run_app(payload["source"], payload["stream"])


def run_app(source: str, stream: str) -> dict:
    """The app's answer, with restricted builtins, on a recording stream: {"spec": ...}, {"error": ...} or
    {"rejected": [...]} for a limit it hit."""
    namespace = {"__builtins__": restricted_builtins(), "__name__": "tenant_app"}
    try:
        exec(compile(source, APP_FILE, "exec", dont_inherit=True), namespace)
        entry = namespace.get("app")
        if not callable(entry):
            raise SpecError("`app` is not a function after the module ran")
        return {"spec": to_spec(entry(Stream(stream)))}
    except MemoryError:
        return _limit("the app went over its memory limit")
    except RecursionError as err:
        return _limit("the app recursed too deeply (RecursionError)", _app_line(err.__traceback__))
    except SpecError as err:
        return {"error": {"line": _app_line(err.__traceback__), "message": one_line(str(err))}}
    except BaseException as err:  # whatever the app raises is its error, in one line
        return {"error": {"line": _app_line(err.__traceback__), "message": one_line(f"app raised {describe(err)}")}}


def _limit(message: str, line: int | None = None) -> dict:
    return {"rejected": [{"line": line, "col": None, "message": message}]}


def describe(err: BaseException) -> str:
    """`Type: text` of an exception of the app's, in one line, even if its str() fails or is huge."""
    try:
        text = str(err)
    except BaseException:  # its __str__ may raise anything
        text = "(its message could not be read)"
    return one_line(f"{type(err).__name__}: {text}" if type(text) is str else type(err).__name__)


def one_line(text: str) -> str:
    """Printable ASCII only, one line, at most MAX_MESSAGE characters."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text[:MAX_MESSAGE + 1])
    return cleaned if len(cleaned) <= MAX_MESSAGE else cleaned[:MAX_MESSAGE - 3] + "..."


def _app_line(tb: TracebackType | None) -> int | None:
    """The line of the app's own code nearest to where the exception was raised."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == APP_FILE:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def restricted_builtins() -> dict[str, object]:
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
