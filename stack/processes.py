"""Start, find and stop the stack's server processes by the ids recorded at start.

Each server runs in a session of its own, its output in a log file. Its record
holds the pid and the kernel's start time of that pid, so a reused pid is never
mistaken for our server and `down` stops exactly what `up` started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    started: int  # /proc/<pid>/stat start time, in clock ticks since boot
    argv: list[str]

    def alive(self) -> bool:
        return _start_time(self.pid) == self.started and not _is_zombie(self.pid)

    def stopped(self) -> bool:
        """Whether it is stopped by a signal (SIGSTOP): alive, but running nothing until SIGCONT."""
        fields = _stat_fields(self.pid)
        return self.alive() and fields is not None and fields[0] == "T"

    def rss_bytes(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()  # fields after "pid (comm) "


def _start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] == "Z"


def record_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.json"


def load_record(run_dir: Path, name: str) -> ProcessRecord | None:
    try:
        return ProcessRecord(**json.loads(record_path(run_dir, name).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def start(name: str, argv: list[str], run_dir: Path, log_file: Path,
          env: dict[str, str] | None = None, cwd: Path | None = None) -> ProcessRecord:
    """Start `argv` detached in its own session, output to `log_file`, and record it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cwd, env={**os.environ, **(env or {})}, start_new_session=True)
    record = ProcessRecord(name=name, pid=proc.pid, started=_start_time(proc.pid) or 0, argv=argv)
    record_path(run_dir, name).write_text(json.dumps(record.__dict__))
    return record


def stop(record: ProcessRecord, run_dir: Path, grace: float = 30.0) -> bool:
    """Stop the process group of `record` (TERM, then KILL after `grace` s); True if it was running."""
    was_alive = record.alive()
    if was_alive:
        _signal_group(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while record.alive() and time.monotonic() < deadline:
            _reap(record.pid)
            time.sleep(0.2)
        if record.alive():
            _signal_group(record.pid, signal.SIGKILL)
            while record.alive():
                _reap(record.pid)
                time.sleep(0.1)
    record_path(run_dir, record.name).unlink(missing_ok=True)
    return was_alive


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal the server's process group: the server and any helper it forked."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
