"""A live contender stops on the bench's SIGINT even when started with SIGINT ignored (nohup, `&`)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("handled", [True, False])
def test_sigint_stops_a_contender_started_with_it_ignored_once_it_asks_to_stop_on_it(handled):
    call = "stop_on_sigint(); " if handled else ""
    child = subprocess.Popen(
        [sys.executable, "-c", f"import time; from bench.flink_job import stop_on_sigint; {call}"
                               "print('ready', flush=True); time.sleep(20)"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGINT)
        if handled:
            assert child.wait(timeout=10) != 0
            assert "KeyboardInterrupt" in child.stderr.read()
        else:  # the behaviour the bench ran into: the signal is lost
            with pytest.raises(subprocess.TimeoutExpired):
                child.wait(timeout=3)
    finally:
        child.kill()
        child.wait()
