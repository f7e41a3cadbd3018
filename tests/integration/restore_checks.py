"""What the kill-and-restore tests share: a job run by the CLI in a process of its own, killed with
signal 9 mid-stream and restarted from its latest checkpoint; waiting for a condition; and the part of
an oracle's output that the final watermark of an unbounded run has closed.

Both runs are unbounded (a bounded Kafka source restored from a checkpoint never ends: FLINK-31006),
so a test compares the results the final watermark has closed, and the restored job is stopped with
Ctrl-C once they are all committed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from connectors.kafka import read_all
from submit.local import latest_checkpoint
from tests.oracle import routed

ROOT = Path(__file__).parents[2]


def wait_for(condition: Callable[[], object], timeout: float, what: str,
             job: subprocess.Popen | None = None) -> None:
    """Return once `condition()` holds; fail after `timeout` seconds, or as soon as `job` exits."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert job is None or job.poll() is None, f"the job exited ({job.returncode}) while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def committed_now(bootstrap: str, topics: list[str]) -> list:
    """The committed records `topics` hold now, read quickly by a consumer group of its own."""
    return read_all(bootstrap, topics, f"peek-{uuid.uuid4().hex}", idle_seconds=0.5, timeout=5)


def committed_count(bootstrap: str, topics: list[str]) -> int:
    return len(committed_now(bootstrap, topics))


def final_watermark(readings: Sequence, reason_of: Callable, out_of_orderness_ms: int) -> int:
    """The watermark after the last of `readings`, emitted after every record (`--watermarks on-event`).

    Records that are invalid for a reason other than their time move it too, as in the job.
    """
    *_, (_, _, _, watermark) = routed(readings, reason_of, out_of_orderness_ms)
    return watermark


def closed(outcome: dict, watermark: int, fires_at: Callable[[object], int]) -> dict:
    """The entries of `outcome` an unbounded job has emitted once its watermark is `watermark`: those
    whose event-time timer (`fires_at(key)`, e.g. a window's end - 1 ms) it has reached."""
    return {key: value for key, value in outcome.items() if fires_at(key) <= watermark}


def window_closed_at(end: int) -> int:
    """When a window ending at `end` (exclusive) fires: at its last millisecond."""
    return end - 1


class CliJob:
    """`tenantstream run JOB ...` in a session of its own (signal 9 to the group ends the JVM as well), its
    output appended to one log across runs, its checkpoints in one folder."""

    def __init__(self, args: Iterable[str], tmp_path: Path) -> None:
        self.args = list(args)
        self.checkpoints, self.log = tmp_path / "checkpoints", tmp_path / "job.log"

    def start(self, *extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "submit.cli", "run", *self.args, "--checkpoint-dir", str(self.checkpoints),
             *extra], cwd=ROOT, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def crash_and_restore(self, feed: Callable[[threading.Event], object], committed: Callable[[], int],
                          expected: int, kill_when: Callable[[], bool] | None = None) -> int:
        """Run the job, feed it from a thread once a first checkpoint exists, kill it with signal 9 when
        `kill_when()` holds (default: a quarter of the `expected` results committed), let `feed` finish,
        restart the job from its latest checkpoint and stop it with Ctrl-C once `committed()` reaches
        `expected`. `feed` gets an event that is set once the job is dead. Returns how many results were
        committed when the job was killed (more than none, fewer than `expected`: mid-stream)."""
        kill_when = kill_when or (lambda: committed() > expected // 4)
        killed = threading.Event()
        failures: list[BaseException] = []

        def feeding() -> None:
            try:
                feed(killed)
            except BaseException as err:  # reported by the test's thread below
                failures.append(err)

        first = self.start()
        try:
            wait_for(lambda: latest_checkpoint(self.checkpoints) is not None, 180,
                     f"a first checkpoint (log {self.log})", first)
            feeder = threading.Thread(target=feeding, name="feed", daemon=True)
            feeder.start()
            wait_for(kill_when, 120, f"the moment to kill the job (log {self.log})", first)
        finally:
            _kill(first)
            killed.set()
        assert first.returncode == -signal.SIGKILL, self.tail()
        before = committed()
        assert 0 < before < expected, f"the kill was not mid-stream: {before} of {expected} results committed"
        feeder.join(120)
        assert not feeder.is_alive() and not failures, f"feeding the job failed: {failures}"

        restored = self.start("--restore", "latest")
        try:
            wait_for(lambda: committed() >= expected, 240,
                     f"the restored job to commit all {expected} results (log {self.log})", restored)
        finally:
            _interrupt(restored)
        assert restored.returncode == 0, self.tail()
        assert "restored from" in self.log.read_text(errors="replace")
        return before


def _kill(job: subprocess.Popen) -> None:
    """Signal 9 to the job's process group (Python and its JVM)."""
    with contextlib.suppress(ProcessLookupError):  # nothing of it left
        os.killpg(job.pid, signal.SIGKILL)
    job.wait(30)


def _interrupt(job: subprocess.Popen) -> None:
    """Ctrl-C: the job is cancelled and its writers finish; signal 9 if it has not ended within two minutes."""
    if job.poll() is None:
        os.kill(job.pid, signal.SIGINT)
    try:
        job.wait(120)
    except subprocess.TimeoutExpired:
        _kill(job)
        raise
