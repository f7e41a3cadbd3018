"""Run one contender in a subprocess and measure it: its JSON report, and peak resident memory
of its whole process tree (a PyFlink process includes its JVM child)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).parents[1]


@dataclass
class Measurement:
    name: str
    events: int
    seconds: float  # processing time as the contender reports it (start-up excluded where it can tell)
    peak_rss_bytes: int
    parallelism: int = 1
    wall_seconds: float = 0.0  # the whole subprocess, start-up included
    p50_latency_ms: float | None = None
    p99_latency_ms: float | None = None
    details: dict = field(default_factory=dict)

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


def run_measured(argv: list[str], env: dict[str, str] | None = None, timeout: float = 1800,
                 log: Path | None = None) -> tuple[dict, int, float]:
    """Run `argv`; return (the JSON object of its last stdout line, peak tree RSS, wall seconds)."""
    started = time.monotonic()
    stderr = log.open("ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            done.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        done.set()
        sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} exited {proc.returncode}" + (f"; see {log}" if log else ""))
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{argv[:4]} printed no JSON report")
    return json.loads(lines[-1]), peak[0], time.monotonic() - started
