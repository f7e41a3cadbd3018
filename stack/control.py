"""`stack up | down | status | logs`: the local servers' life cycle, for the CLI and tests."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from stack import processes
from stack.config import StackConfig
from stack.servers import SERVERS, NotReadyError, Server


class StackError(RuntimeError):
    """A server failed to come up; the message names it and its log file."""


@dataclass(frozen=True)
class ServerStatus:
    name: str
    address: str
    pid: int | None
    state: str  # up, down, or "not answering" (running, but its probe fails)
    rss_bytes: int | None


def log_file(cfg: StackConfig, name: str) -> Path:
    return cfg.log_dir / f"{name}.log"


def _running(cfg: StackConfig, server: Server) -> processes.ProcessRecord | None:
    record = processes.load_record(cfg.run_dir, server.name)
    return record if record is not None and record.alive() else None


def server_pids(cfg: StackConfig) -> dict[str, int]:
    """The pid of each server of the stack that is running, by name."""
    return {server.name: record.pid for server in SERVERS if (record := _running(cfg, server)) is not None}


def _log_tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log written)"


def _wait_ready(cfg: StackConfig, server: Server, record: processes.ProcessRecord) -> None:
    deadline = time.monotonic() + cfg.start_timeout
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if not record.alive():
            log = log_file(cfg, server.name)
            raise StackError(f"{server.name} exited while starting; its log {log} ends with:\n"
                             f"{_log_tail(log)}")
        try:
            server.probe(cfg)
            return
        except NotReadyError as err:
            last_error = str(err)
        time.sleep(0.5)
    raise StackError(f"{server.name} did not answer within {cfg.start_timeout:.0f} s ({last_error}); "
                     f"see its log {log_file(cfg, server.name)}")


def up(cfg: StackConfig, out: TextIO = sys.stderr) -> list[str]:
    """Start every server not yet running and wait until each answers; return the names started."""
    launched: list[tuple[Server, processes.ProcessRecord, float]] = []
    for server in SERVERS:
        if _running(cfg, server):
            continue
        t0 = time.monotonic()
        out.write(f"{server.name:<18} installing and starting ...\n")
        launch = server.launch(cfg)
        record = processes.start(server.name, launch.argv, cfg.run_dir, log_file(cfg, server.name),
                                 env=launch.env, cwd=cfg.state_dir)
        launched.append((server, record, t0))
    for server in SERVERS:
        started = next(((r, t0) for s, r, t0 in launched if s is server), None)
        record, t0 = started if started else (_running(cfg, server), time.monotonic())
        _wait_ready(cfg, server, record)
        how = f"up in {time.monotonic() - t0:.1f} s" if started else "already running"
        out.write(f"{server.name:<18} {how} at {server.address(cfg)} (pid {record.pid})\n")
    return [s.name for s, _, _ in launched]


def down(cfg: StackConfig, purge: bool = False, out: TextIO = sys.stderr) -> list[str]:
    """Stop the servers that `up` started (by their records), newest first; return those stopped."""
    stopped = []
    for server in reversed(SERVERS):
        record = processes.load_record(cfg.run_dir, server.name)
        if record is None:
            continue
        if processes.stop(record, cfg.run_dir):
            stopped.append(server.name)
            out.write(f"{server.name:<18} stopped (pid {record.pid})\n")
    if purge:
        shutil.rmtree(cfg.state_dir / "data", ignore_errors=True)
        shutil.rmtree(cfg.log_dir, ignore_errors=True)
        out.write(f"purged data and logs under {cfg.state_dir}\n")
    return stopped


def status(cfg: StackConfig) -> list[ServerStatus]:
    rows = []
    for server in SERVERS:
        record = _running(cfg, server)
        if record is None:
            rows.append(ServerStatus(server.name, server.address(cfg), None, "down", None))
            continue
        try:
            server.probe(cfg)
            state = "up"
        except NotReadyError:
            state = "not answering"
        rows.append(ServerStatus(server.name, server.address(cfg), record.pid, state, record.rss_bytes()))
    return rows


def format_status(rows: list[ServerStatus]) -> str:
    lines = [f"{'SERVER':<18} {'ADDRESS':<30} {'PID':>8}  {'STATE':<14} {'MEMORY':>9}"]
    for r in rows:
        memory = f"{r.rss_bytes / 2**20:.0f} MiB" if r.rss_bytes else "-"
        lines.append(f"{r.name:<18} {r.address:<30} {r.pid or '-':>8}  {r.state:<14} {memory:>9}")
    return "\n".join(lines)
