"""Heartbeat patterns for the sensor health tests, as the records a topic would hold, in its order.

`scripted` names what each sensor does; `randomized` throws gaps of about N, of exactly N and N +- 1 ms,
duplicates, out-of-order, late and bad records at the job; `half_minute_beats` gives the sensors of the
restore tests their spans of heartbeats. Every record's Kafka time is its arrival
time + 50 ms, and no valid record's event time lies after its arrival, so the watermark after a record
is exactly the largest event time so far - the out-of-orderness.
"""

from __future__ import annotations

import random

from submit.simulate import HEARTBEAT_MALFORMED_KINDS, SimRecord, heartbeat_record, next_hour
from tests import SUITE_LEAD_MS

START = next_hour(lead_ms=SUITE_LEAD_MS)  # a window edge, ahead of the append times (submit.simulate)
SECOND = 1_000
MINUTE = 60_000
PERIOD = 30_000
OUT_OF_ORDERNESS = 5_000
# The sensors of the restore tests: each beats this many seconds after the half minute, so no two beat at once.
OFFSETS = {"steady": 0, "gone": 1, "back": 2, "flaky": 3, "across": 4, "lapse": 5, "newcomer": 6}


def _every(first: int, last: int) -> list[int]:
    return list(range(first, last + 1, PERIOD))


def scripted(minutes: dict[str, int]) -> list[SimRecord]:
    """For each tenant (N = its minutes), sensors that:

    steady: beat every 30 s for 40 minutes; gone: stop at 10 min and never return; back: silent from
    8 min for N + 3 min; twice: silent twice; blip: a gap of N - 30 s (not silent); exact: a gap of
    exactly N (not silent: sessions that touch merge); newcomer: starts at 20 min; dup: its first and
    a later beat sent twice; edge: a gap of exactly N whose closing beat arrives just after another
    sensor's beat moved the watermark to the session's last millisecond (silent, and recovered at once).
    Also: steady's beat at 6 min 3 s out of order, back's beat of 9 min arriving at 20 min (late, and within
    the 15 minutes behind its append time that a job takes), a beat exactly at the watermark at 25 min (late),
    and one record of every bad kind.
    """
    arrivals: list[tuple[float, str, str, int, str]] = []  # (arrival, tenant, sensor, event time, kind)
    for tenant, n_min in minutes.items():
        n = n_min * MINUTE

        def beats(sensor: str, times: list[int], tenant: str = tenant) -> None:
            arrivals.extend((START + t, tenant, sensor, START + t, "on time") for t in times)

        beats("steady", _every(0, 40 * MINUTE))
        beats("gone", _every(1000, 10 * MINUTE))
        beats("back", _every(2000, 8 * MINUTE) + _every(8 * MINUTE + n + 3 * MINUTE, 40 * MINUTE))
        beats("twice", _every(3000, 5 * MINUTE) + _every(5 * MINUTE + n + MINUTE, 20 * MINUTE)
              + _every(20 * MINUTE + n + 2 * MINUTE, 40 * MINUTE))
        beats("blip", _every(4000, 12 * MINUTE + 4000) + _every(12 * MINUTE + 4000 + n - PERIOD, 40 * MINUTE))
        beats("exact", _every(5000, 14 * MINUTE + 5000) + _every(14 * MINUTE + 5000 + n, 40 * MINUTE))
        beats("newcomer", _every(20 * MINUTE, 40 * MINUTE))
        beats("dup", [6000, *_every(6000, 40 * MINUTE), 17 * MINUTE + 6000])
        last = 16 * MINUTE + 7000
        beats("edge", _every(7000, last))
        # edge's next beat closes the gap of exactly N, but a beat moving the watermark to last + n - 1 comes first
        arrivals.append((START + last + n - 0.5, tenant, "pusher", START + last + n - 1 + OUT_OF_ORDERNESS,
                         "on time"))
        beats("edge", _every(last + n, 40 * MINUTE))
        arrivals.append((START + 6 * MINUTE + 3000, tenant, "steady", START + 6 * MINUTE, "on time"))
        arrivals.remove((START + 6 * MINUTE, tenant, "steady", START + 6 * MINUTE, "on time"))
        arrivals.append((START + 20 * MINUTE + 0.5, tenant, "back", START + 9 * MINUTE, "on time"))
        arrivals.append((START + 25 * MINUTE + 0.5, tenant, "steady", -1, "at the watermark"))
        for i, kind in enumerate(HEARTBEAT_MALFORMED_KINDS):
            arrivals.append((START + (11 + 2 * i) * MINUTE + 0.5, tenant, "steady", START + (11 + 2 * i) * MINUTE,
                             kind))
    return _records(arrivals)


def half_minute_beats(tenant: str, sensor: str, *spans: tuple[float, float]) -> list[SimRecord]:
    """A heartbeat of `sensor` (one of OFFSETS) every 30 s over each [first, last] minute span, OFFSETS[sensor]
    seconds after the minute, each arriving 50 ms after its event time."""
    offset = OFFSETS[sensor] * SECOND
    return [heartbeat_record(tenant, sensor, START + t, START + t + 50) for first, last in spans
            for t in range(round(first * MINUTE) + offset, round(last * MINUTE) + offset + 1, PERIOD)]


def sensor_time(minute: float, sensor: str) -> int:
    """`minute` after START plus `sensor`'s offset, in ms since START: when it beats in that half minute."""
    return round(minute * MINUTE) + OFFSETS[sensor] * SECOND


def randomized(minutes: dict[str, int], seed: int, beats_per_tenant: int = 700) -> list[SimRecord]:
    """Random gaps (mostly 30 s; about N, exactly N, N +- 1 ms, long, or forever, when a new sensor
    takes the place of the one gone), duplicates, delays within and beyond the out-of-orderness, beats
    at the watermark and bad records."""
    rng = random.Random(seed)
    arrivals = []
    for tenant, n_min in minutes.items():
        n = n_min * MINUTE
        due = {f"s{i}": START + rng.randrange(PERIOD) for i in range(6)}
        born = len(due)
        for _ in range(beats_per_tenant):
            sensor = min(due, key=due.get)
            event_time = due[sensor]
            roll = rng.random()
            delay = 0 if roll < 0.85 else rng.randrange(OUT_OF_ORDERNESS) if roll < 0.95 else \
                OUT_OF_ORDERNESS + rng.randrange(20_000)
            kind = "at the watermark" if rng.random() < 0.01 else \
                rng.choice(HEARTBEAT_MALFORMED_KINDS) if rng.random() < 0.02 else "on time"
            arrivals.append((event_time + delay + rng.random(), tenant, sensor, event_time, kind))
            gap = rng.choice([PERIOD] * 20 + [0, n - 1, n, n, n + 1, n - PERIOD, 2 * n, 4 * n, None])
            if gap is None:
                del due[sensor]
                due[f"s{born}"] = event_time + rng.randrange(PERIOD, 4 * n)
                born += 1
            else:
                due[sensor] = event_time + gap
    return _records(arrivals)


def _records(arrivals: list[tuple[float, str, str, int, str]]) -> list[SimRecord]:
    """Records in arrival order; a beat "at the watermark" gets the watermark of that moment as its time."""
    records, newest = [], None
    for arrival, tenant, sensor, event_time, kind in sorted(arrivals):
        if kind == "at the watermark":
            event_time, kind = event_time if newest is None else newest - OUT_OF_ORDERNESS, "on time"
        records.append(heartbeat_record(tenant, sensor, event_time, int(arrival) + 50, kind))
        if kind == "on time":
            newest = event_time if newest is None else max(newest, event_time)
    return records
