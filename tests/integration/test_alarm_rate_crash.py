"""Kill the alarm-rate job with signal 9 mid-stream, restart it from its latest checkpoint:
the committed results and Cassandra rows still equal the oracle, nothing lost, nothing doubled.

Both runs are unbounded (a bounded Kafka source restored from a checkpoint never ends: FLINK-31006),
so the comparison covers the windows the final watermark has closed, and the restored job is stopped
with Ctrl-C once they are all committed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from connectors.kafka import ensure_topics, read_all
from jobs.alarm_rate import alarm_rate_job
from submit.local import latest_checkpoint
from submit.simulate import SimulationSpec, alarm_events, produce
from tests.integration.alarm_rate_checks import cassandra_windows, committed_windows, diverted
from tests.oracle import alarm_rate, invalid_reason, readings_from

ROOT = Path(__file__).parents[2]


def _run_cli(tenant: str, checkpoints: Path, *extra: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "submit.cli", "run", "--tenants", tenant, "--checkpoint-dir", str(checkpoints),
         *extra], cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def _closed_windows(windows: dict, readings: list, tenant: str) -> dict:
    """The windows that the last watermark (newest valid event time - 5 s) has closed."""
    final_watermark = max(r.event_time for r in readings if invalid_reason(r, tenant) is None) - 5_000
    return {key: value for key, value in windows.items() if key[3] - 1 <= final_watermark}


def _wait_for(condition, timeout: float, what: str, job: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert job.poll() is None, f"the job exited ({job.returncode}) while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_job_killed_mid_stream_and_restored_from_checkpoint_equals_the_oracle(stack, unique, tmp_path):
    tenant = f"crash{unique}"
    spec = SimulationSpec(tenants=(tenant,), events=30_000, stations=8, datapoints=3, malformed=0.01, late=0.0,
                          seed=9)
    job = alarm_rate_job([tenant])
    topics = job.topics(tenant)
    ensure_topics(stack.kafka.bootstrap, [topics.source, topics.results, topics.deadletter, topics.late], 1)
    records = list(alarm_events(spec))
    readings = readings_from(records)
    everything = alarm_rate(readings, tenant, 60_000, 5_000)
    expected = _closed_windows(everything.windows, readings, tenant)
    checkpoints, log = tmp_path / "checkpoints", tmp_path / "job.log"

    first = _run_cli(tenant, checkpoints, log=log)
    _wait_for(lambda: latest_checkpoint(checkpoints) is not None, 180, f"a first checkpoint (log {log})", first)
    producer = threading.Thread(target=produce, args=(iter(records), stack.kafka.bootstrap, len(records), 3000.0),
                                kwargs={"progress": None})
    producer.start()
    _wait_for(lambda: len(read_all(stack.kafka.bootstrap, [topics.results], f"peek-{unique}-{time.time()}",
                                   idle_seconds=0.5, timeout=5)) > len(expected) // 4,
              120, "a quarter of the results committed", first)
    os.killpg(first.pid, signal.SIGKILL)
    assert first.wait(30) == -signal.SIGKILL
    committed_before_restart = len(committed_windows(stack.kafka.bootstrap, topics.results, f"mid-{unique}"))
    assert 0 < committed_before_restart < len(expected), "the kill was not mid-stream"
    producer.join(120)

    restored = _run_cli(tenant, checkpoints, "--restore", "latest", log=log)
    _wait_for(lambda: len(committed_windows(stack.kafka.bootstrap, topics.results, f"w-{unique}-{time.time()}"))
              >= len(expected), 240, f"the restored job to commit every closed window (log {log})", restored)
    os.kill(restored.pid, signal.SIGINT)  # Ctrl-C: cancel the job, let the writer finish
    assert restored.wait(120) == 0, log.read_text()[-3000:]
    assert "restored from" in log.read_text()

    results = committed_windows(stack.kafka.bootstrap, topics.results, f"check-{unique}")
    assert len(results) == len(dict(results)), "a window was committed twice"
    assert dict(results) == expected
    assert cassandra_windows(stack.cassandra.port, "tenantstream", tenant) == expected
    dead = diverted(stack.kafka.bootstrap, topics.deadletter, f"check-{unique}")
    assert sorted(d["offset"] for d in dead) == sorted(everything.invalid)
