"""On the stack's Flink cluster: a tenant whose event time stands still does not hold back the windows of the
other tenant of its job by more than the job's bound on how far behind its append time an event time may be."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

from connectors.kafka import committed_consumer, ensure_topics
from jobs.alarm_rate import alarm_rate_job
from operators.windows import tumbling
from pipeline.job import RunSettings
from schemas import codec
from submit.cluster import FlinkRest, submit_job
from submit.simulate import SimRecord, as_appended, produce
from tests.integration.alarm_rate_checks import committed_windows, diverted
from tests.oracle import alarm_rate, readings_from

WINDOW = tumbling(seconds=10)
OUT_OF_ORDERNESS_S = 5
MAX_BEHIND_S = 20
CHECKPOINT_S = 2  # the cluster's checkpoint interval: results become visible when one completes
SLACK_S = 5  # reading the source, firing, the consumer's polls
SENDING_S = 75  # the frozen tenant keeps sending for this long: well over the bound
HOUR_MS = 3_600_000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def alarm(tenant: str, station: str, event_ms: int, n: int, rng: random.Random) -> SimRecord:
    fields = {"tenant": tenant, "station_id": station, "datapoint_id": "dp-0", "alarm_id": f"al-{n}",
              "event_time": datetime.fromtimestamp(event_ms / 1000, UTC), "value": float(rng.randint(0, 100)),
              "valueThreshold": 50.0, "isActive": True}
    return SimRecord(tenant, f"{tenant}.sensors.alarms", station.encode(), codec.encode("alarm_event.v2", fields),
                     event_ms, "on time", fields)


def live(tenant: str, seconds: float) -> Iterator[SimRecord]:
    """Records whose event time is the wall clock when each is made, for `seconds`."""
    rng, end = random.Random(f"{tenant}:live"), time.monotonic() + seconds
    for n in itertools.count():
        if time.monotonic() > end:
            return
        yield alarm(tenant, f"bts-{n % 3}", _now_ms(), n, rng)


def frozen(tenant: str, seconds: float, event_ms: int) -> Iterator[SimRecord]:
    """Valid records, all with the event time `event_ms`, for `seconds`."""
    rng, end = random.Random(f"{tenant}:frozen"), time.monotonic() + seconds
    for n in itertools.count():
        if time.monotonic() > end:
            return
        yield alarm(tenant, "bts-9", event_ms, n, rng)


class CommitTimes:
    """When each window of a results topic first became visible to a read_committed consumer (wall clock, ms)."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.seen: dict[int, int] = {}  # window end -> first seen
        self._stop = threading.Event()
        self._consumer = committed_consumer(bootstrap, group)
        self._consumer.subscribe([topic])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            end = int(codec.decode(msg.value(), "alarm_rate_result.v1")["window_end"].replace(tzinfo=UTC)
                      .timestamp() * 1000)
            self.seen.setdefault(end, _now_ms())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._consumer.close()


def test_a_tenant_whose_event_time_stands_still_delays_the_other_by_at_most_the_bound(stack, unique):
    a, b = f"ck{unique}a", f"ck{unique}b"
    bootstrap = stack.kafka.bootstrap
    job = alarm_rate_job([a, b], window=WINDOW)
    # One partition each: no partition of the job stays idle (an idle one holds the watermark for 60 s).
    ensure_topics(bootstrap, [name for t in job.tenants for name in job.topics(t).all()], partitions=1)
    settings = RunSettings(bootstrap, out_of_orderness_s=OUT_OF_ORDERNESS_S, max_behind_s=MAX_BEHIND_S,
                           watermark_emit="on-event")
    rest = FlinkRest(stack.flink.rest_url)
    job_id = submit_job(job, settings, rest, partitions=1)
    commits = CommitTimes(bootstrap, job.topics(a).results, f"commits-{unique}")
    try:
        sent_a, sent_b, made_a, made_b = {}, {}, [], []

        def send(tenant: str, records: Iterator[SimRecord], made: list, rate: float, sent: dict) -> None:
            def kept() -> Iterator[SimRecord]:
                for r in records:
                    made.append(r)
                    yield r
            sent["counts"] = produce(kept(), bootstrap, 0, rate=rate, progress=None)

        frozen_at = _now_ms()
        threads = [threading.Thread(target=send, args=(a, live(a, SENDING_S), made_a, 20.0, sent_a)),
                   threading.Thread(target=send, args=(b, frozen(b, SENDING_S, frozen_at), made_b, 2.0, sent_b))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        b_stopped = _now_ms()
        # Both tenants' clocks jump an hour ahead: every window before closes.
        flush = [alarm(a, "bts-0", b_stopped + HOUR_MS, -1, random.Random(1)),
                 alarm(b, "bts-9", b_stopped + HOUR_MS, -1, random.Random(1))]
        produce(iter(flush), bootstrap, len(flush), progress=None)

        records_a, records_b = as_appended(made_a, sent_a["counts"]), as_appended(made_b, sent_b["counts"])
        expected_a = alarm_rate(readings_from(records_a), a, WINDOW.size_ms, OUT_OF_ORDERNESS_S * 1000,
                                MAX_BEHIND_S * 1000)
        expected_b = alarm_rate(readings_from(records_b), b, WINDOW.size_ms, OUT_OF_ORDERNESS_S * 1000,
                                MAX_BEHIND_S * 1000)
        deadline = time.monotonic() + 60
        while len(commits.seen) < len({k[3] for k in expected_a.windows}) and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        commits.close()
        rest.cancel(job_id)

    # While B stood still, each of A's windows was committed within the bound of its end.
    bound_ms = (MAX_BEHIND_S + OUT_OF_ORDERNESS_S + CHECKPOINT_S + SLACK_S) * 1000
    while_frozen = {end: seen - end for end, seen in commits.seen.items() if seen < b_stopped}
    print(f"\nA's windows committed while B was frozen: {len(while_frozen)}, delay after the window's end "
          f"{min(while_frozen.values()) / 1000:.1f}-{max(while_frozen.values()) / 1000:.1f} s "
          f"(bound {bound_ms / 1000:.0f} s)")
    assert len(while_frozen) >= (SENDING_S - MAX_BEHIND_S - OUT_OF_ORDERNESS_S) // 10 - 2
    assert max(while_frozen.values()) <= bound_ms
    # Every window of A that ended a bound before B stopped was committed while B stood still.
    ends = {k[3] for k in expected_a.windows}
    assert {e for e in ends if e + bound_ms < b_stopped} <= set(while_frozen)

    # A's committed results are its oracle's, and so are B's; B's records behind the bound are dead letters.
    assert dict(committed_windows(bootstrap, job.topics(a).results, f"check-{unique}")) == expected_a.windows
    assert dict(committed_windows(bootstrap, job.topics(b).results, f"check-{unique}")) == expected_b.windows
    dead = diverted(bootstrap, job.topics(b).deadletter, f"check-{unique}")
    assert sorted(d["offset"] for d in dead) == sorted(expected_b.invalid)
    assert len(dead) > len(records_b) // 2
    assert all(d["reason"].startswith("event time too far behind: event_time ") for d in dead)
    assert diverted(bootstrap, job.topics(a).deadletter, f"check-{unique}") == []
    assert expected_a.late == [] and diverted(bootstrap, job.topics(a).late, f"check-{unique}") == []
