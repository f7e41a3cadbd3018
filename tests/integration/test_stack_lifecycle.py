"""`tenantstream stack`: a killed server shows as down and comes back; `down` leaves nothing behind.

These run last (see tests/integration/conftest.py) because they stop the stack.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectors import kafka_access
from stack import control, processes
from stack.servers import SERVERS
from tests.integration.test_credentials import login_error

CLI = [sys.executable, "-m", "submit.cli"]
pytestmark = pytest.mark.stack_lifecycle


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).parents[2])


def _state_of(status_output: str, server: str) -> str:
    row = next(line for line in status_output.splitlines() if line.startswith(server + " "))
    return "down" if " down " in row else ("up" if " up " in row else row)


def _stack_processes(cfg) -> list[str]:
    """Command lines of live processes that run from the stack's state or cache folders."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(proc.name) != os.getpid() and (str(cfg.state_dir) in cmdline or str(cfg.cache_dir) in cmdline):
            found.append(f"{proc.name}: {cmdline[:160]}")
    return found


def test_server_killed_by_signal_9_shows_down_and_up_brings_it_back(stack):
    record = processes.load_record(stack.run_dir, "ferretdb")
    os.kill(record.pid, signal.SIGKILL)
    time.sleep(0.5)

    status = _cli("stack", "status")
    assert status.returncode == 3
    assert _state_of(status.stdout, "ferretdb") == "down"
    assert _state_of(status.stdout, "kafka") == "up"

    up = _cli("stack", "up")
    assert up.returncode == 0, up.stderr
    assert "ferretdb" in up.stderr and "up in" in up.stderr
    assert "kafka              already running" in up.stderr
    status = _cli("stack", "status")
    assert status.returncode == 0, status.stdout
    assert processes.load_record(stack.run_dir, "ferretdb").pid != record.pid


def test_tenant_credentials_survive_a_broker_restart_after_a_tenant_was_deleted(stack, unique):
    bootstrap = stack.kafka.bootstrap
    kept = kafka_access.create_tenant(bootstrap, f"keep{unique}")
    deleted = kafka_access.create_tenant(bootstrap, f"gone{unique}")
    kafka_access.delete_principal(bootstrap, deleted.username)
    record = processes.load_record(stack.run_dir, "kafka")
    os.kill(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while record.alive() and time.monotonic() < deadline:
        time.sleep(0.5)

    up = _cli("stack", "up")
    assert up.returncode == 0, up.stderr
    assert processes.load_record(stack.run_dir, "kafka").pid != record.pid
    assert login_error(bootstrap, kept) is None  # the restarted broker still knows the kept tenant's password
    assert login_error(bootstrap, deleted) is not None
    kafka_access.delete_principal(bootstrap, kept.username)


def test_down_stops_every_server_and_leaves_no_process(stack):
    records = [processes.load_record(stack.run_dir, s.name) for s in SERVERS]
    assert all(r is not None and r.alive() for r in records)

    down = _cli("stack", "down")
    assert down.returncode == 0, down.stderr
    assert all(not r.alive() for r in records)
    assert [s.name for s in SERVERS if processes.load_record(stack.run_dir, s.name)] == []
    assert _stack_processes(stack) == []
    assert {r.state for r in control.status(stack)} == {"down"}
