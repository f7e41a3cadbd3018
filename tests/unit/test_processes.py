"""Process records: a started process is found by its id and start time, stopped with its group."""

from __future__ import annotations

import dataclasses
import sys

from stack import processes


def test_start_record_and_stop_a_real_process(tmp_path):
    record = processes.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
                             tmp_path / "run", tmp_path / "sleeper.log")
    assert record.alive() and record.rss_bytes() > 0
    assert processes.load_record(tmp_path / "run", "sleeper") == record
    assert processes.stop(record, tmp_path / "run", grace=5) is True
    assert not record.alive()
    assert processes.load_record(tmp_path / "run", "sleeper") is None


def test_a_reused_pid_is_not_taken_for_the_recorded_process(tmp_path):
    record = processes.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
                             tmp_path / "run", tmp_path / "sleeper.log")
    impostor = dataclasses.replace(record, started=record.started - 1)
    assert not impostor.alive()
    assert processes.stop(impostor, tmp_path / "run") is False
    assert record.alive()
    processes.stop(record, tmp_path / "run", grace=5)
