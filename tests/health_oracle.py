"""An independent, plain-Python computation of the sensor health job's output.

It shares nothing with the job's SQL. It takes the records in the order the job reads them, with a
watermark after every record (`on-event`), and keeps each sensor's open sessions itself: a heartbeat h
opens [h, h + N) and merges every open session it touches; a session closes (the sensor is silent at
its end) once the watermark reaches its end - 1 ms, as an event-time timer would fire. Everything else
follows from walking each sensor's heartbeats and silences in event-time order.

A job stopped with a savepoint and resubmitted with other silence minutes (`replanned`) is modelled as the
one run it continues: a heartbeat read after the resubmit opens a session of the new N, one read before it
a session of the old N, and merged sessions end at the latest end; what the job emits after the resubmit
(silence events, health windows) carries the new N in its `silence_minutes`. (The resubmitted job's
watermark starts again from its first record; beats behind the savepoint's watermark are not modelled.)
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import count

from tests.oracle import bad_time, decoded, routed, text_problem, too_far_behind

MINUTE_MS = 60_000


@dataclass(frozen=True)
class Beat:
    """One record of a heartbeat topic as the job sees it after decoding."""

    topic_tenant: str  # whose topic it was read from
    offset: int
    kafka_ts: int
    decode_error: str | None = None
    tenant: str = ""  # what the record says
    sensor_id: str = ""
    event_time: int | None = None


@dataclass(frozen=True)
class Silence:
    tenant: str
    sensor_id: str
    state: str  # silent | recovered
    at: int
    last_heartbeat: int


@dataclass
class Outcome:
    silences: list[Silence]  # each sensor's in event-time order, sensors one after another
    health: dict[tuple[str, int, int], dict]  # (tenant, window start, end) -> health_result.v1 fields
    late: list[tuple[str, int]]  # (tenant, offset)
    invalid: dict[tuple[str, int], str]  # (tenant, offset) -> first words of the reason
    silence_minutes: dict[Silence, int]  # the `silence_minutes` each silence event carries


def emitted_at(s: Silence) -> int:
    """When the job emits a silence event, as the watermark it takes: a `silent` row sits at its session's
    last millisecond, a `recovered` at its heartbeat."""
    return s.at - 1 if s.state == "silent" else s.at


def invalid_reason(b: Beat) -> str | None:
    if b.decode_error is not None:
        return b.decode_error
    if not b.sensor_id:
        return "missing sensor_id"
    problem = text_problem([("tenant", b.tenant), ("sensor_id", b.sensor_id)])
    if problem:
        return problem
    if bad_time(b):
        return "bad timestamp"
    if too_far_behind(b):
        return "event time too far behind"
    if b.tenant and b.tenant != b.topic_tenant:
        return "unknown tenant"
    return None


@dataclass(order=True)
class _Row:
    """A heartbeat, or a silent session end, of one sensor's timeline."""

    t: int  # heartbeat time, or session end - 1 ms
    seq: int  # arrival order, to order rows of equal time
    kind: str = field(compare=False)
    at: int = field(compare=False)


def sensor_health(beats: list[Beat], minutes: dict[str, int], window_ms: int, out_of_orderness_ms: int,
                  replanned: Sequence[tuple[int, dict[str, int]]] = ()) -> Outcome:
    """What the job emits for `beats` read in this order; `minutes` is each tenant's N. `replanned` lists
    (i, minutes) for each resubmit with other minutes from a savepoint taken after the first i beats."""
    plans = [(0, minutes), *replanned]

    def plan_of(i: int) -> dict[str, int]:
        """The minutes of the plan that reads the i-th beat."""
        return next(m for first, m in reversed(plans) if first <= i)

    watermarks: list[int] = []  # after each beat: never falling
    late, invalid = [], {}
    sessions: dict[tuple[str, str], list[list[int]]] = defaultdict(list)  # open [start, end) per sensor
    rows: dict[tuple[str, str], list[_Row]] = defaultdict(list)
    seq = count()

    def close(until: float) -> None:
        for key, open_ in sessions.items():
            for start, end in [s for s in open_ if s[1] - 1 <= until]:
                open_.remove([start, end])
                rows[key].append(_Row(end - 1, next(seq), "silent", end))

    for i, (b, reason, is_late, watermark) in enumerate(routed(beats, invalid_reason, out_of_orderness_ms)):
        if reason:
            invalid[(b.topic_tenant, b.offset)] = reason
        elif is_late:
            late.append((b.topic_tenant, b.offset))
        else:
            key = (b.topic_tenant, b.sensor_id)
            rows[key].append(_Row(b.event_time, next(seq), "heartbeat", b.event_time))
            merged = [b.event_time, b.event_time + plan_of(i)[b.topic_tenant] * MINUTE_MS]
            for s in [s for s in sessions[key] if s[0] <= merged[1] and s[1] >= merged[0]]:
                sessions[key].remove(s)
                merged = [min(merged[0], s[0]), max(merged[1], s[1])]
            sessions[key].append(merged)
        watermarks.append(watermark)
        close(watermark)
    close(math.inf)  # the end of a bounded input: the final watermark

    def minutes_when(t: int) -> dict[str, int]:
        """The minutes of the plan that ran when the watermark reached `t` (the last plan's at the end)."""
        return plan_of(bisect_left(watermarks, t))

    silences, marks = [], []  # marks: (tenant, row time, sensor, what the row means)
    for (tenant, sensor), timeline in sorted(rows.items()):
        previous_kind, previous_heartbeat, first = None, None, None
        for row in sorted(timeline):
            if row.kind == "silent":
                silences.append(Silence(tenant, sensor, "silent", row.at, previous_heartbeat))
                marks.append((tenant, row.t, sensor, {"went_silent": 1}))
            else:
                mark = {"heartbeat": 1}
                if previous_kind is None:
                    first = row.t
                    mark["new_sensor"] = 1
                else:
                    mark["interval"] = row.t - previous_heartbeat
                if previous_kind == "silent":
                    silences.append(Silence(tenant, sensor, "recovered", row.at, previous_heartbeat))
                    mark["recovered"] = 1
                mark["lifespan"] = row.t - first
                marks.append((tenant, row.t, sensor, mark))
                previous_heartbeat = row.t
            previous_kind = row.kind
    return Outcome(silences, _health(marks, minutes_when, window_ms), late, invalid,
                   {s: minutes_when(emitted_at(s))[s.tenant] for s in silences})


def _health(marks: list[tuple[str, int, str, dict]], minutes_when: Callable[[int], dict[str, int]],
            window_ms: int) -> dict:
    windows: dict[tuple[str, int], list[tuple[str, dict]]] = defaultdict(list)
    for tenant, t, sensor, mark in marks:
        windows[(tenant, t - t % window_ms)].append((sensor, mark))
    out = {}
    known = silent = lifespan_sum = 0
    max_lifespan, tenant_now = 0, None
    for (tenant, start), window in sorted(windows.items()):
        if tenant != tenant_now:
            known = silent = lifespan_sum = max_lifespan = 0
            tenant_now = tenant
        beats = [m for _, m in window if "heartbeat" in m]
        intervals = [m["interval"] for m in beats if "interval" in m]
        went_silent = sum(m.get("went_silent", 0) for _, m in window)
        recovered = sum(m.get("recovered", 0) for m in beats)
        known += sum(m.get("new_sensor", 0) for m in beats)
        silent += went_silent - recovered
        lifespan_sum += sum(intervals)  # a sensor's intervals add up to its last - first heartbeat
        max_lifespan = max([max_lifespan, *(m["lifespan"] for m in beats)])
        out[(tenant, start, start + window_ms)] = {
            "silence_minutes": minutes_when(start + window_ms - 1)[tenant], "heartbeats": len(beats),
            "reporting_sensors": len({s for s, m in window if "heartbeat" in m}),
            "known_sensors": known, "silent_sensors": silent, "silent_share": silent / known,
            "went_silent": went_silent, "recovered": recovered,
            "mean_interval_ms": sum(intervals) / len(intervals) if intervals else None,
            "mean_lifespan_ms": lifespan_sum / known, "max_lifespan_ms": max_lifespan}
    return out


def beats_from(records: list, first_offset: int = 0) -> list[Beat]:
    """Beats of simulated records as produced, in order, into one single-partition topic per tenant."""
    beats, offsets = [], defaultdict(lambda: first_offset)
    for _, r, e, error in decoded(records, "heartbeat.v1"):
        offset = offsets[r.tenant]
        offsets[r.tenant] += 1
        beats.append(Beat(r.tenant, offset, r.kafka_ts, decode_error=error) if e is None else
                     Beat(r.tenant, offset, r.kafka_ts, None, e["tenant"], e["sensor_id"], e["event_time"]))
    return beats
