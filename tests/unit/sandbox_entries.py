"""Entries that tests run in the sandbox (submit/sandbox.py) in place of submit.app_child:build.

Given to tenant_apps.load as its `entry`, they read their instructions as JSON from the app's source.

They stand for what a tenant's code could do if it got past the static check and the restricted
builtins: try the sandbox's walls (`probe`), answer with something other than one spec, crash or
hang. Standard library and submit.app_child only: this runs in the confined child.
"""

from __future__ import annotations

import ctypes
import encodings.idna  # noqa: F401 (imported before the drop: the probe resolves a name)
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

from submit import app_child

PR_GET_NO_NEW_PRIVS = 39  # prctl(2)


def unchecked(payload: dict) -> dict:
    """The app with restricted builtins but without the static check."""
    return app_child.run_app(payload["source"], payload["stream"])


def answer(payload: dict) -> dict:
    """Whatever answer the test gives, as if the child had built it."""
    return json.loads(payload["source"])["answer"]


def raw(payload: dict) -> dict:
    """Print the test's text as it is and exit 0, without the child's own answer."""
    given = json.loads(payload["source"])
    sys.stdout.write(given["text"] * given.get("times", 1) + given.get("end", ""))
    sys.stdout.flush()
    os._exit(0)


def segfault(payload: dict) -> dict:
    os.kill(os.getpid(), signal.SIGSEGV)
    return {}


def exit_status(payload: dict) -> dict:
    os._exit(json.loads(payload["source"])["status"])


def sleep(payload: dict) -> dict:
    time.sleep(3600)
    return {}


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def probe(payload: dict) -> dict:
    """What the child can reach: each attempt's outcome (an exception's name, or what it got)."""
    def attempt(action) -> str:
        try:
            return f"allowed: {action()!r}"
        except Exception as err:  # the outcome is the point
            return f"blocked: {type(err).__name__}"

    def fork() -> int:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        return pid

    return {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "environment": sorted(os.environ),
        "cwd": os.getcwd(),
        "cwd_entries": os.listdir("."),
        "root_entries": os.listdir("/"),
        "heavy_modules": sorted({name.split(".")[0] for name in sys.modules} & {
            "pyflink", "py4j", "confluent_kafka", "cassandra", "pymongo", "jsonschema", "jobs", "connectors"}),
        "no_new_privs": ctypes.CDLL(None).prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
        "stdin_is_dev_null": os.fstat(0).st_rdev == os.makedev(1, 3),
        "open_fds": [fd for fd in range(64) if is_open(fd)],
        "interfaces": [name for _, name in socket.if_nameindex()],
        "limits": {name: list(resource.getrlimit(getattr(resource, name))) for name in (
            "RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE")},
        "connect_kafka": attempt(lambda: socket.socket().connect(("127.0.0.1", 9092))),
        "resolve_name": attempt(lambda: socket.getaddrinfo("example.com", 443)),
        "read_root_home": attempt(lambda: os.listdir("/root")),
        "read_passwd": attempt(lambda: open("/etc/passwd").read(10)),
        "read_shadow": attempt(lambda: open("/etc/shadow").read(10)),
        "write_cwd": attempt(lambda: open("written", "w").write("x")),
        "fork": attempt(fork),
        "subprocess": attempt(lambda: subprocess.run(["/bin/true"], check=False).returncode),
        "signal_parent": attempt(lambda: os.kill(os.getppid(), 0)),
    }
