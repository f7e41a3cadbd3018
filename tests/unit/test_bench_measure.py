"""run_measured counts the CPU a contender and the servers beside it used while it was measured, and no other."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.measure import READY, run_measured

# Burns `s` CPU seconds of its own process: exact enough for a test, unlike wall time on a busy machine.
BURN = "import time\ndef burn(s):\n    end = time.process_time() + s\n    while time.process_time() < end: pass\n"


def _contender(body: str) -> list[str]:
    return [sys.executable, "-c", BURN + body]


@pytest.fixture
def busy_server():
    """A process standing in for a server of the stack: it burns 0.6 s of CPU once it reads a line."""
    proc = subprocess.Popen(_contender("import sys\nsys.stdin.readline()\nburn(0.6)\nprint('done', flush=True)\n"
                                       "sys.stdin.readline()"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    yield proc
    proc.kill()
    proc.wait()


def test_cpu_counts_from_ready_to_the_report_and_includes_the_contenders_children(busy_server, tmp_path):
    # 0.5 s before READY (not counted); then 0.4 s itself and 0.4 s in a child process, and it waits until
    # the server has burnt its 0.6 s; then the report, after which it burns 0.5 s more (not counted).
    server_done = tmp_path / "server-done"
    body = (f"burn(0.5)\nprint({READY!r}, flush=True)\n"
            "import subprocess, sys, os\n"
            f"child = subprocess.Popen([sys.executable, '-c', {BURN + 'burn(0.4)'!r}])\n"
            "burn(0.4)\nchild.wait()\n"
            f"while not os.path.exists({str(server_done)!r}): time.sleep(0.01)\n"
            "import json\nprint(json.dumps({'events': 1}), flush=True)\nburn(0.5)\n")

    def drive(running) -> None:
        running.wait_until(lambda: running.printed(READY), "ready")
        busy_server.stdin.write("go\n")
        busy_server.stdin.flush()
        assert busy_server.stdout.readline().strip() == "done"
        server_done.touch()

    outcome = run_measured(_contender(body), drive=drive, servers={"server": busy_server.pid})
    cpu = outcome.cpu_seconds
    assert outcome.report == {"events": 1}
    # 0.8 s counted, less what the meter cannot see of the child: it counts an ended process as its last
    # 0.25 s sample saw it (bench.measure._cpu), so up to 0.25 s of the child's CPU may be missing.
    assert 0.55 <= cpu["contender"] < 1.2, cpu
    assert 0.55 <= cpu["server"] < 0.8, cpu
    assert cpu["idle"] >= 0 and cpu["seconds"] > 0


def test_a_contender_that_never_says_ready_is_counted_from_its_start():
    outcome = run_measured(_contender("burn(0.5)\nprint('{}', flush=True)\n"))
    assert 0.45 <= outcome.cpu_seconds["contender"] < 1.0, outcome.cpu_seconds
    assert set(outcome.cpu_seconds) == {"contender", "idle", "seconds"}
