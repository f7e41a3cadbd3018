"""A tenant's silence minutes (N) changed the documented way, on the stack's Flink cluster: the sensor health
job is stopped with a savepoint, N goes from 2 to 3 in the metadata store, and the job is submitted again
from the savepoint. The committed silent/recovered events and health windows equal the health oracle with
N = 2 for the heartbeats read before the savepoint and N = 3 for those read after it.

The new plan differs from the old one only in the session gap, so its operators keep their ids and restore
their state: a sensor silent at the savepoint is `recovered` by its next heartbeat, the health windows carry
their running figures over. A session open at the savepoint keeps the end the old N gave it: it closes
there (`silent` 2 minutes after its last heartbeat) unless a heartbeat comes before that end, which extends
it by the new N. Everything emitted after the resubmit carries silence_minutes 3, that `silent` too.

A job of several tenants has one session window per distinct N, placed by N, and Flink gives each window of
the new plan the state of the window in its place: a change of N that moves tenants to other windows is
refused before the job is submitted, naming the tenant and both N.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from connectors.kafka import ensure_topics
from connectors.metadata import MetadataStore
from jobs.catalog import BUILT_IN_JOBS, METADATA_REFRESH_S
from jobs.sensor_health import HEALTH_TABLE, SILENCE_TABLE
from operators.windows import tumbling
from pipeline.job import Job, RunSettings
from schemas.assets import Assets, parse_assets
from submit.cluster import ClusterError, FlinkRest, submit_job
from submit.simulate import produce
from tests.health_oracle import beats_from, emitted_at, invalid_reason, sensor_health
from tests.health_patterns import MINUTE, OUT_OF_ORDERNESS, SECOND, START, half_minute_beats, sensor_time
from tests.integration.restore_checks import closed, committed_count, final_watermark, wait_for, window_closed_at
from tests.integration.test_sensor_health import as_health, as_silence, assert_health_equal, by_sensor, committed

OLD_MINUTES, NEW_MINUTES = 2, 3
WINDOW = tumbling(minutes=5)
# The heartbeats that arrive before it are read by the first job, the rest by the resubmitted one. The last
# of the first is lapse's at 20 min 5 s: it alone moves the watermark to the end of the window [15, 20).
SAVEPOINT_AT = 20 * MINUTE + 6 * SECOND

# (first minute, last minute) spans of each sensor's heartbeats, every 30 s; flaky and newcomer pause for
# 2.5 minutes after the resubmit (not silent with N = 3), flaky and across before it or across it.
SPANS = {
    "steady": [(0, 40)],
    "gone": [(0, 6)],
    "back": [(0, 10), (24, 40)],  # silent at the savepoint, back after it
    "flaky": [(0, 8), (10.5, 27), (29.5, 40)],
    "across": [(0, 19.5), (22, 40)],  # its session open at the savepoint, its pause spans it
    "lapse": [(0, 30), (34, 40)],  # its session open at the savepoint, extended after it
    "newcomer": [(25, 30), (32.5, 40)],  # starts after the resubmit
}

# (state, at - START) of each sensor that falls silent, by hand: steady, newcomer and flaky's second pause
# are never silent; across is, by the old N, as its session's end was set before the savepoint.
SEQUENCES = {
    "gone": [("silent", sensor_time(6 + 2, "gone"))],
    "back": [("silent", sensor_time(10 + 2, "back")), ("recovered", sensor_time(24, "back"))],
    "flaky": [("silent", sensor_time(8 + 2, "flaky")), ("recovered", sensor_time(10.5, "flaky"))],
    "across": [("silent", sensor_time(19.5 + 2, "across")), ("recovered", sensor_time(22, "across"))],
    "lapse": [("silent", sensor_time(30 + 3, "lapse")), ("recovered", sensor_time(34, "lapse"))],
}


def tenants_with(silence_minutes: dict[str, int]) -> Assets:
    return parse_assets({"tenants": [{"id": tenant, "name": tenant, "alarm_rate_threshold": 0.5,
                                      "flow_breach_threshold": 0.5, "silence_minutes": minutes}
                                     for tenant, minutes in silence_minutes.items()]}, "test")


def planned(store: MetadataStore, silence_minutes: dict[str, int]) -> Job:
    """The health job as `submit sensor_health` plans it, after these silence minutes were stored."""
    store.load(tenants_with(silence_minutes))
    job = BUILT_IN_JOBS["sensor_health"].build(list(silence_minutes), WINDOW, store, METADATA_REFRESH_S)
    assert job.stage.silence_minutes == tuple(silence_minutes.items())
    return job


@contextlib.contextmanager
def cancelled_if_running(rest: FlinkRest, job_id: str) -> Iterator[str]:
    """The job, cancelled on leaving if it still runs: the cluster is shared, so a failed test leaves none."""
    try:
        yield job_id
    finally:
        if rest.state(job_id) == "RUNNING":
            rest.cancel(job_id)


def on_event(stack) -> RunSettings:
    return RunSettings(stack.kafka.bootstrap, out_of_orderness_s=OUT_OF_ORDERNESS // 1000, watermark_emit="on-event")


def test_silence_minutes_changed_across_a_savepoint_apply_to_the_heartbeats_after_it(stack, unique, store):
    tenant, bootstrap = f"hbn{unique}", stack.kafka.bootstrap
    records = sorted((r for sensor, spans in SPANS.items() for r in half_minute_beats(tenant, sensor, *spans)),
                     key=lambda r: r.kafka_ts)
    first = [r for r in records if r.kafka_ts < START + SAVEPOINT_AT]
    beats = beats_from(records)
    expected = sensor_health(beats, {tenant: OLD_MINUTES}, WINDOW.size_ms, OUT_OF_ORDERNESS,
                             replanned=[(len(first), {tenant: NEW_MINUTES})])

    def closed_after(read: int) -> tuple[dict, dict]:
        """The silence events (with the silence_minutes each carries) and health windows emitted once the
        first `read` beats are read."""
        watermark = final_watermark(beats[:read], invalid_reason, OUT_OF_ORDERNESS)
        return (closed(expected.silence_minutes, watermark, emitted_at),
                closed(expected.health, watermark, lambda key: window_closed_at(key[2])))

    silences, health = closed_after(len(beats))
    before = sum(map(len, closed_after(len(first))))
    assert sum(map(len, closed_after(len(first) - 1))) < before, "the first job's last heartbeat closes nothing"

    rest = FlinkRest(stack.flink.rest_url)
    job = planned(store, {tenant: OLD_MINUTES})
    topics = job.topics(tenant)
    outputs = [topics.output(SILENCE_TABLE.topic), topics.output(HEALTH_TABLE.topic)]
    ensure_topics(bootstrap, topics.all(), partitions=1)  # one partition: the order is known
    produce(iter(first), bootstrap, len(first), progress=None)
    with cancelled_if_running(rest, submit_job(job, on_event(stack), rest)) as first_job:
        wait_for(lambda: committed_count(bootstrap, outputs) >= before, 120, "the results before the savepoint")
        location = rest.stop_with_savepoint(first_job)
    assert committed_count(bootstrap, outputs) == before
    # what the resubmit checks the new plan against
    assert rest.savepoint_job(location) == first_job
    assert rest.parameters(first_job) == {f"silence_minutes.{tenant}": str(OLD_MINUTES)}

    with cancelled_if_running(rest, submit_job(planned(store, {tenant: NEW_MINUTES}), on_event(stack), rest,
                                               from_savepoint=location)):
        second = records[len(first):]
        produce(iter(second), bootstrap, len(second), progress=None)
        wait_for(lambda: committed_count(bootstrap, outputs) >= len(silences) + len(health), 120,
                 "the results after the resubmit")

    events = committed(bootstrap, outputs[0], f"check-{unique}", SILENCE_TABLE.schema)
    assert len(events) == len(silences), "a silence event was committed twice"
    assert by_sensor([as_silence(r) for _, r in events]) == by_sensor(list(silences))
    assert {as_silence(r): r["silence_minutes"] for _, r in events} == silences
    windows = [as_health(r) for _, r in committed(bootstrap, outputs[1], f"check-{unique}", HEALTH_TABLE.schema)]
    assert len(windows) == len(dict(windows)), "a window was committed twice"
    assert_health_equal(dict(windows), health)
    # the oracle agrees with what the script was written for
    assert {sensor: [(s.state, s.at - START) for s in of_sensor] for sensor, of_sensor
            in by_sensor(list(silences)).items()} == SEQUENCES
    assert [h["silence_minutes"] for _, h in sorted(health.items())] == [OLD_MINUTES] * 4 + [NEW_MINUTES] * 4
    assert {s.sensor_id for s, minutes in silences.items() if minutes == OLD_MINUTES} == {"gone", "back", "flaky"}


def test_a_change_of_n_that_moves_tenants_to_other_session_windows_is_refused(stack, unique, store):
    """N 2 and 3, then 4 and 3: the new plan has the same shape, so Flink would give the second tenant's
    window the first tenant's sessions and the other way round (tried on the stack: each sensor of both whose
    session was open at the savepoint was silent at that session's old end and recovered at its next heartbeat,
    while its heartbeats went on). It is not submitted."""
    first, second = f"hbna{unique}", f"hbnb{unique}"
    rest = FlinkRest(stack.flink.rest_url)
    job = planned(store, {first: 2, second: 3})
    for tenant in job.tenants:
        ensure_topics(stack.kafka.bootstrap, job.topics(tenant).all(), partitions=1)
    beats = [r for tenant in job.tenants for r in half_minute_beats(tenant, "steady", (0, 6))]
    produce(iter(beats), stack.kafka.bootstrap, len(beats), progress=None)
    health = [job.topics(tenant).output(HEALTH_TABLE.topic) for tenant in job.tenants]
    with cancelled_if_running(rest, submit_job(job, on_event(stack), rest)) as job_id:
        wait_for(lambda: committed_count(stack.kafka.bootstrap, health) == 2, 120, "each tenant's first window")
        location = rest.stop_with_savepoint(job_id)  # steady's sessions open
    jobs = len(rest.jobs())

    with pytest.raises(ClusterError) as refused:
        submit_job(planned(store, {first: 4, second: 3}), on_event(stack), rest, from_savepoint=location)
    assert f"not submitted from savepoint {location}" in str(refused.value)
    assert f"(tenant {first}: 2 -> 4)" in str(refused.value) and "false silences" in str(refused.value)
    assert len(rest.jobs()) == jobs
