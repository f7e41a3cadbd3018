"""Run one contender in a subprocess and measure it: its JSON report, and peak resident memory
of its whole process tree (a PyFlink process includes its JVM child); optionally drive a live
load against it while it runs."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).parents[1]
READY = "ready"  # the line an unbounded contender prints once Flink reports its job RUNNING


@dataclass
class Measurement:
    name: str
    events: int
    seconds: float  # processing time as the contender reports it (start-up excluded where it can tell)
    peak_rss_bytes: int
    parallelism: int = 1
    wall_seconds: float = 0.0  # the whole subprocess, start-up included
    details: dict = field(default_factory=dict)
    workload: str = "alarms"  # what it read: the alarm events ("alarms") or the plant's flow readings ("flow")

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "events_per_second": round(self.events_per_second)}


def _tree_rss(root_pid: int) -> int:
    """Resident bytes of `root_pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
            fields = raw[raw.rindex(")") + 2:].split()
            pid = int(stat.parent.name)
            children.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21]) * 4096
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


class Running:
    """A contender while it runs, as `drive` sees it: its process and the lines it has printed."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: list[str] = []

    def printed(self, line: str) -> bool:
        return line in self.lines

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 300) -> float:
        """Poll `condition` until it holds; return the seconds that took. Raise if the contender exits first."""
        started = time.monotonic()
        while not condition():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the contender exited ({self.proc.returncode}) before {what}")
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"no {what} in {timeout:.0f} s")
            time.sleep(0.25)
        return time.monotonic() - started

    def interrupt(self) -> None:
        """Ctrl-C: an unbounded Flink contender cancels its job, finishes and prints its report."""
        self.proc.send_signal(signal.SIGINT)


def run_measured(argv: list[str], env: dict[str, str] | None = None, timeout: float = 1800,
                 log: Path | None = None, drive: Callable[[Running], None] | None = None) -> tuple[dict, int, float]:
    """Run `argv`; return (the JSON object of its last stdout line, peak tree RSS, wall seconds).

    `drive`, if given, is called while the contender runs (a live load against it); the contender is
    then awaited. If `drive` fails, the contender is interrupted, and killed if it does not stop.
    """
    started = time.monotonic()
    stderr = log.open("ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    running = Running(proc)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            done.wait(0.25)

    def read() -> None:
        for line in proc.stdout:
            running.lines.append(line.strip())

    threads = [threading.Thread(target=sample, daemon=True), threading.Thread(target=read, daemon=True)]
    for thread in threads:
        thread.start()
    try:
        if drive is not None:
            try:
                drive(running)
            except BaseException:
                _stop(running)
                raise
        try:
            proc.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            _stop(running)
            raise
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=10)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} exited {proc.returncode}" + (f"; see {log}" if log else ""))
    lines = [line for line in running.lines if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{argv[:4]} printed no JSON report")
    return json.loads(lines[-1]), peak[0], time.monotonic() - started


def _stop(running: Running, grace: float = 60) -> None:
    """Interrupt, then kill: a Flink contender given the chance cancels its job and closes its JVM."""
    if running.proc.poll() is None:
        running.interrupt()
        try:
            running.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            running.proc.kill()
            running.proc.wait()
