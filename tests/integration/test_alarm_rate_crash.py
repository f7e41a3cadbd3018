"""Kill the alarm-rate job with signal 9 mid-stream, restart it from its latest checkpoint:
the committed results and Cassandra rows still equal the oracle, nothing lost, nothing doubled.

Both runs are unbounded (see restore_checks), so the comparison covers the windows the final watermark
has closed.
"""

from __future__ import annotations

from connectors.kafka import ensure_topics
from jobs.alarm_rate import alarm_rate_job
from submit.simulate import SimulationSpec, alarm_events, produce
from tests.integration.alarm_rate_checks import cassandra_windows, committed_windows, diverted
from tests.integration.restore_checks import CliJob, closed, committed_count, final_watermark, window_closed_at
from tests.oracle import alarm_rate, invalid_reason, readings_from


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
    watermark = final_watermark(readings, lambda r: invalid_reason(r, tenant), 5_000)
    expected = closed(everything.windows, watermark, lambda key: window_closed_at(key[3]))

    CliJob(["alarm_rate", "--tenants", tenant], tmp_path).crash_and_restore(
        lambda _killed: produce(iter(records), stack.kafka.bootstrap, len(records), 3000.0, progress=None),
        lambda: committed_count(stack.kafka.bootstrap, [topics.results]), len(expected))

    results = committed_windows(stack.kafka.bootstrap, topics.results, f"check-{unique}")
    assert len(results) == len(dict(results)), "a window was committed twice"
    assert dict(results) == expected
    assert cassandra_windows(stack.cassandra.port, "tenantstream", tenant) == expected
    dead = diverted(stack.kafka.bootstrap, topics.deadletter, f"check-{unique}")
    assert sorted(d["offset"] for d in dead) == sorted(everything.invalid)
