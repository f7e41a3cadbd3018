"""The short fault scenarios on the multi-node stack (stack/cluster.toml): a broker killed, a TaskManager lost for
good, Cassandra stopped under the results writer; each run's output must equal the oracle, nothing lost or doubled.

Needs root (network namespaces); starts the cluster profile if it is not up, and stops it again if this run
started it. Select or deselect them with `-m faults` / `-m "not faults"`.
"""

from __future__ import annotations

import os

import pytest

from stack import control
from stack.config import CONFIG_ENV, use_profile
from submit.faults import SHORT

pytestmark = [pytest.mark.faults, pytest.mark.skipif(
    os.geteuid() != 0, reason="the cluster profile makes network namespaces and a bridge: run as root")]


@pytest.fixture(scope="module")
def cluster():
    """The cluster profile as this process's stack config while the module runs; the configured one after."""
    before = os.environ.get(CONFIG_ENV)
    cfg = use_profile("cluster")
    try:
        started = control.up(cfg)
        yield cfg
    finally:  # the configured profile comes back first: a failed `down` must not leave later tests on this one
        if before is None:
            os.environ.pop(CONFIG_ENV, None)
        else:
            os.environ[CONFIG_ENV] = before
    if started and not os.environ.get("TENANTSTREAM_KEEP_STACK"):
        control.down(cfg)


@pytest.mark.parametrize("scenario", ["broker-kill", "taskmanager-loss", "cassandra-stop"])
def test_short_fault_run_equals_the_oracle(cluster, scenario):
    from faults.run import SCENARIOS, run

    report = run(cluster, SCENARIOS[scenario], SHORT, 0)
    assert report.results_committed > 0, report
    assert (report.lost, report.doubled) == (0, 0), report.notes
    assert report.equal, report.notes
    assert report.recovered_s is not None, f"{scenario}: the results never flowed again after the fault"
