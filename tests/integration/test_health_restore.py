"""Kill the sensor health job with signal 9 mid-stream, restart it from its latest checkpoint: the committed
silent/recovered sequence and health windows, and their Cassandra rows, still equal the health oracle.

Scripted so that the job's state is in play across the kill: the job is killed once `back` has been
reported silent, and its next heartbeat is sent only after the kill, so the restored job must still know
that `back` was silent to report it `recovered`; `across` and `lapse` have sessions open at the kill,
which the restored job must extend (`across`, never silent) or close (`lapse`, silent after the kill);
the health windows carry their running figures (known and silent sensors, lifespans) over the kill.
"""

from __future__ import annotations

import threading

from connectors.kafka import ensure_topics
from jobs.sensor_health import HEALTH_TABLE, SILENCE_TABLE, sensor_health_job
from operators.windows import tumbling
from schemas import codec
from submit.simulate import SimRecord, heartbeat_record, produce
from tests.health_oracle import beats_from, emitted_at, invalid_reason, sensor_health
from tests.health_patterns import MINUTE, OUT_OF_ORDERNESS, START, half_minute_beats, sensor_time
from tests.integration.alarm_rate_checks import diverted
from tests.integration.restore_checks import (
    CliJob,
    closed,
    committed_count,
    committed_now,
    final_watermark,
    window_closed_at,
)
from tests.integration.test_sensor_health import (
    as_health,
    as_silence,
    assert_health_equal,
    by_sensor,
    cassandra_rows,
    committed,
)

SILENCE_MINUTES = 2
WINDOW = tumbling(minutes=5)
SPLIT = 20 * MINUTE  # the heartbeats before it are sent before the kill, the rest after it


def scripted(tenant: str) -> tuple[list[SimRecord], list[SimRecord]]:
    """The heartbeats (and a few bad records) of event time before SPLIT, and those from it on, each in
    time order: none out of order or late. What each sensor does, with N = 2 minutes: SEQUENCES."""
    beats = [*half_minute_beats(tenant, "steady", (0, 40)), *half_minute_beats(tenant, "gone", (0, 6)),
             *half_minute_beats(tenant, "back", (0, 8), (24, 40)),
             *half_minute_beats(tenant, "flaky", (0, 12), (16, 28), (33, 40)),
             *half_minute_beats(tenant, "across", (0, 19.5), (21, 40)),
             *half_minute_beats(tenant, "lapse", (0, 19.5), (22, 40)),
             *half_minute_beats(tenant, "newcomer", (25, 40))]
    beats += [heartbeat_record(tenant, "steady", START + minute * MINUTE + 500, START + minute * MINUTE + 550, kind)
              for minute, kind in ((11, "garbage bytes"), (13, "missing sensor_id"), (31, "foreign tenant"),
                                   (32, "truncated body"))]
    beats.sort(key=lambda r: r.kafka_ts)
    return [r for r in beats if r.kafka_ts < START + SPLIT], [r for r in beats if r.kafka_ts >= START + SPLIT]


# (state, at - START) of each sensor that falls silent before the final watermark, by hand: silent N after
# the last heartbeat, recovered at the next. steady and newcomer never pause; across pauses 1.5 minutes.
SEQUENCES = {
    "gone": [("silent", sensor_time(6 + 2, "gone"))],
    "back": [("silent", sensor_time(8 + 2, "back")), ("recovered", sensor_time(24, "back"))],  # across the kill
    "flaky": [("silent", sensor_time(12 + 2, "flaky")), ("recovered", sensor_time(16, "flaky")),
              ("silent", sensor_time(28 + 2, "flaky")), ("recovered", sensor_time(33, "flaky"))],
    # its session open at the kill
    "lapse": [("silent", sensor_time(19.5 + 2, "lapse")), ("recovered", sensor_time(22, "lapse"))],
}


def test_health_job_killed_mid_stream_and_restored_from_checkpoint_equals_the_oracle(stack, unique, tmp_path):
    tenant = f"hbcrash{unique}"
    topics = sensor_health_job([tenant], WINDOW, lambda _: SILENCE_MINUTES).topics(tenant)
    silence_topic, health_topic = topics.output(SILENCE_TABLE.topic), topics.output(HEALTH_TABLE.topic)
    ensure_topics(stack.kafka.bootstrap, topics.all(), partitions=1)
    before_split, after_split = scripted(tenant)
    records = before_split + after_split
    beats = beats_from(records)
    everything = sensor_health(beats, {tenant: SILENCE_MINUTES}, WINDOW.size_ms, OUT_OF_ORDERNESS)
    watermark = final_watermark(beats, invalid_reason, OUT_OF_ORDERNESS)
    silences = list(closed(dict.fromkeys(everything.silences), watermark, emitted_at))
    health = closed(everything.health, watermark, lambda key: window_closed_at(key[2]))

    def feed(killed: threading.Event) -> None:
        produce(iter(before_split), stack.kafka.bootstrap, len(before_split), rate=12.0, progress=None)
        killed.wait(300)
        produce(iter(after_split), stack.kafka.bootstrap, len(after_split), progress=None)

    def back_is_silent() -> bool:
        events = (codec.decode(m.value(), SILENCE_TABLE.schema)
                  for m in committed_now(stack.kafka.bootstrap, [silence_topic]))
        return any(e["sensor_id"] == "back" and e["state"] == "silent" for e in events)

    job = CliJob(["sensor_health", "--tenants", tenant, "--window", str(WINDOW.size_ms // 1000), "--silence",
                  str(SILENCE_MINUTES), "--watermarks", "on-event"], tmp_path)
    job.crash_and_restore(feed, lambda: committed_count(stack.kafka.bootstrap, [silence_topic, health_topic]),
                          len(silences) + len(health), kill_when=back_is_silent)

    events = committed(stack.kafka.bootstrap, silence_topic, f"check-{unique}", SILENCE_TABLE.schema)
    assert len(events) == len(silences), "a silence event was committed twice"
    assert by_sensor([as_silence(r) for _, r in events]) == by_sensor(silences)
    assert all(key == r["sensor_id"].encode() and r["silence_minutes"] == SILENCE_MINUTES for key, r in events)
    assert {as_silence(r) for r in cassandra_rows(stack.cassandra.port, "tenantstream", SILENCE_TABLE.name,
                                                  tenant)} == set(silences)
    windows = [as_health(r) for _, r in committed(stack.kafka.bootstrap, health_topic, f"check-{unique}",
                                                  HEALTH_TABLE.schema)]
    assert len(windows) == len(dict(windows)), "a window was committed twice"
    assert_health_equal(dict(windows), health)
    assert_health_equal(dict(as_health(r) for r in cassandra_rows(stack.cassandra.port, "tenantstream",
                                                                  HEALTH_TABLE.name, tenant)), health)
    # the oracle agrees with what the script was written for
    assert {sensor: [(e.state, e.at - START) for e in events] for sensor, events in by_sensor(silences).items()} \
        == SEQUENCES
    assert len(health) == 8 and health[(tenant, START + 25 * MINUTE, START + 30 * MINUTE)]["known_sensors"] == 7
    dead = diverted(stack.kafka.bootstrap, topics.deadletter, f"check-{unique}")
    assert {(tenant, d["offset"]) for d in dead} == set(everything.invalid) and len(dead) == 4
