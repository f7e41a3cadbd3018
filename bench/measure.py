"""Run one contender in a subprocess and measure it: its JSON report, peak resident memory of its
whole process tree (a PyFlink process includes its JVM child), and the CPU seconds that tree, each
of the stack's servers and nothing (idle) took while it was measured; optionally drive a live load
against it while it runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
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


def _process_table() -> tuple[dict[int, list[int]], dict[int, list[str]]]:
    """Children of each pid, and the /proc stat fields after "pid (comm) " of each process."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
            fields = raw[raw.rindex(")") + 2:].split()
            pid = int(stat.parent.name)
            children.setdefault(int(fields[1]), []).append(pid)
            stats[pid] = fields
        except (OSError, ValueError, IndexError):
            continue
    return children, stats


def _tree(root_pid: int, children: dict[int, list[int]]) -> list[int]:
    pids, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu(fields: list[str] | None) -> float:
    """CPU seconds of a process, user and system. Not those of its children that ended: the meter counts each
    process of a tree as it last saw it (a child that lived less than a sample's 0.25 s may be missed)."""
    return sum(int(f) for f in fields[11:13]) / _TICK if fields else 0.0


def _idle() -> float:
    """Seconds the machine's cores have been idle (or waiting for I/O) since boot, summed over cores."""
    with open("/proc/stat") as f:
        return sum(int(v) for v in f.readline().split()[4:6]) / _TICK


class Meter:
    """The process tree of a contender as sampled: its peak resident memory, and CPU seconds between marks.

    CPU is counted per process as last seen, so a process of the tree that ends keeps what it used; the
    servers' CPU (by name, their pids given) and the machine's idle time are read at each mark.
    """

    def __init__(self, root_pid: int, servers: Mapping[str, int]) -> None:
        self.root_pid, self.servers = root_pid, dict(servers)
        self.peak_rss_bytes = 0
        self._seen: dict[int, float] = {}
        self._marks: dict[str, tuple[dict[int, float], dict[str, float]]] = {}
        self._lock = threading.Lock()

    def sample(self) -> dict[int, list[str]]:
        children, stats = _process_table()
        tree = [pid for pid in _tree(self.root_pid, children) if pid in stats]
        with self._lock:
            self.peak_rss_bytes = max(self.peak_rss_bytes, sum(int(stats[pid][21]) * 4096 for pid in tree))
            self._seen.update((pid, _cpu(stats[pid])) for pid in tree)
        return stats

    def mark(self, name: str) -> None:
        stats = self.sample()
        others = {server: _cpu(stats.get(pid)) for server, pid in self.servers.items()}
        with self._lock:
            self._marks[name] = (dict(self._seen), {**others, "idle": _idle(), "seconds": time.monotonic()})

    def cpu_seconds(self, since: str, until: str) -> dict[str, float]:
        """CPU seconds from mark `since` to mark `until`: "contender" (its tree), each server, "idle"; and
        "seconds", the time between the marks."""
        (tree0, others0), (tree1, others1) = self._marks[since], self._marks[until]
        used = {"contender": sum(cpu - tree0.get(pid, 0.0) for pid, cpu in tree1.items())}
        return {name: round(v, 2) for name, v in {**used, **{k: others1[k] - others0[k] for k in others1}}.items()}


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


@dataclass(frozen=True)
class Outcome:
    """What run_measured saw of one contender."""

    report: dict  # the JSON object of its last stdout line
    peak_rss_bytes: int  # of its whole process tree
    wall_seconds: float  # the whole subprocess, start-up included
    # While it was measured: from the READY line a Flink contender prints once its job is RUNNING (from
    # its start for the others) to its report. Keys: "contender" (its process tree), each server, "idle",
    # and "seconds" between the two.
    cpu_seconds: dict[str, float]


def run_measured(argv: list[str], env: dict[str, str] | None = None, timeout: float = 1800,
                 log: Path | None = None, drive: Callable[[Running], None] | None = None,
                 servers: Mapping[str, int] | None = None) -> Outcome:
    """Run `argv` and measure it; `servers` names the pids (the stack's servers) whose CPU counts beside it.

    `drive`, if given, is called while the contender runs (a live load against it); the contender is
    then awaited. If `drive` fails, the contender is interrupted, and killed if it does not stop.
    """
    started = time.monotonic()
    stderr = log.open("ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    running = Running(proc)
    meter = Meter(proc.pid, servers or {})
    meter.mark("start")
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            meter.sample()
            done.wait(0.25)

    def read() -> None:
        for line in proc.stdout:
            line = line.strip()
            if line == READY and not running.printed(READY):
                meter.mark(READY)
            elif line.startswith("{"):
                meter.mark("report")
            running.lines.append(line)

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
    return Outcome(json.loads(lines[-1]), meter.peak_rss_bytes, time.monotonic() - started,
                   meter.cpu_seconds(READY if running.printed(READY) else "start", "report"))


def _stop(running: Running, grace: float = 60) -> None:
    """Interrupt, then kill: a Flink contender given the chance cancels its job and closes its JVM."""
    if running.proc.poll() is None:
        running.interrupt()
        try:
            running.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            running.proc.kill()
            running.proc.wait()
