"""An independent, plain-Python computation of the alarm-rate job's output: what the tests and the `faults`
command (faults/check.py) compare the job's committed output with.

It shares nothing with the job's SQL (nor with the rest of operators/, which renders it): it decides
validity, lateness and windows itself, record by record, in the order of one topic partition, as Flink does
with a watermark emitted after every record (`on-event`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

EARLIEST_MS = 946_684_800_000  # 2000-01-01 UTC
MAX_AHEAD_MS = 24 * 3600 * 1000
MAX_BEHIND_MS = 15 * 60 * 1000  # how far behind its append time an event time may be, by default
NO_THRESHOLD = 999999
MAX_TEXT_CHARS = 200  # characters (code points) a text field may have
MAX_RECORD_BYTES = 64 * 1024  # the largest record value that is decoded at all


@dataclass(frozen=True)
class Reading:
    """One record of a tenant's alarm topic as the job sees it after decoding."""

    offset: int
    kafka_ts: int
    decode_error: str | None = None
    tenant: str = ""
    station_id: str = ""
    datapoint_id: str = ""
    event_time: int | None = None
    value: float = 0.0
    threshold: float = 0.0
    alarm_id: str = ""


R = TypeVar("R")  # a reading of one stream or another: offset, kafka_ts, decode_error, event_time


@dataclass(frozen=True)
class Outcome:
    windows: dict[tuple, tuple]  # alarm rate: (station, dp, start, end) -> (fires, events, rate)
    late: list[int]  # offsets
    invalid: dict[int, str]  # offset -> first words of the reason


def bad_time(r: Reading) -> bool:
    return r.event_time is None or r.event_time < EARLIEST_MS or r.event_time > r.kafka_ts + MAX_AHEAD_MS


def too_far_behind(r: Reading, max_behind_ms: int = MAX_BEHIND_MS) -> bool:
    return r.event_time is not None and r.event_time < r.kafka_ts - max_behind_ms


def text_problem(fields: list[tuple[str, str]]) -> str | None:
    """The first text field that is too long or holds a control character (Unicode Cc), as its reason starts."""
    for name, text in fields:
        if len(text) > MAX_TEXT_CHARS:
            return f"{name} is too long"
        if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text):
            return f"{name} has a control character"
    return None


def number_problem(fields: list[tuple[str, float | None]]) -> str | None:
    """The first number field that is NaN or infinite (None is no number, and no problem here)."""
    for name, number in fields:
        if number is not None and not math.isfinite(number):
            return f"{name} is not a finite number"
    return None


def invalid_reason(r: Reading, tenant: str, max_behind_ms: int = MAX_BEHIND_MS) -> str | None:
    if r.decode_error is not None:
        return r.decode_error
    if not r.station_id:
        return "missing station_id"
    if not r.datapoint_id:
        return "missing datapoint_id"
    problem = text_problem([("tenant", r.tenant), ("station_id", r.station_id), ("datapoint_id", r.datapoint_id),
                            ("alarm_id", r.alarm_id)]) or number_problem([("value", r.value),
                                                                           ("valueThreshold", r.threshold)])
    if problem:
        return problem
    if bad_time(r):
        return "bad timestamp"
    if too_far_behind(r, max_behind_ms):
        return "event time too far behind"
    if r.tenant and r.tenant != tenant:
        return "unknown tenant"
    return None


def route(readings: list[R], reason_of: Callable[[R], str | None],
          out_of_orderness_ms: int, max_behind_ms: int = MAX_BEHIND_MS) -> tuple[list[R], list[int], dict[int, str]]:
    """(on-time readings, late offsets, invalid offset -> reason), with a watermark after every reading."""
    on_time, late, invalid = [], [], {}
    for r, reason, is_late, _ in routed(readings, reason_of, out_of_orderness_ms, max_behind_ms):
        if reason:
            invalid[r.offset] = reason
        elif is_late:
            late.append(r.offset)
        else:
            on_time.append(r)
    return on_time, late, invalid


def routed(readings: list[R], reason_of: Callable[[R], str | None],
           out_of_orderness_ms: int, max_behind_ms: int = MAX_BEHIND_MS) -> Iterator[tuple[R, str | None, bool, int]]:
    """(reading, why it is invalid or None, whether it is late, the watermark after it) of each reading.

    A reading is late at or behind the watermark; only one whose time cannot be trusted is kept from
    moving it by its event time. Every reading, valid or not, moves it to at least its append time -
    `max_behind_ms` - `out_of_orderness_ms`.
    """
    watermark: int | None = None
    for r in readings:
        reason = reason_of(r)
        rowtime = 0 if r.decode_error is not None or bad_time(r) else r.event_time
        late = not reason and watermark is not None and rowtime <= watermark
        candidate = max(rowtime, r.kafka_ts - max_behind_ms) - out_of_orderness_ms
        watermark = candidate if watermark is None else max(watermark, candidate)
        yield r, reason, late, watermark


def alarm_rate(readings: list[Reading], tenant: str, window_ms: int, out_of_orderness_ms: int,
               max_behind_ms: int = MAX_BEHIND_MS) -> Outcome:
    on_time, late, invalid = route(readings, lambda r: invalid_reason(r, tenant, max_behind_ms), out_of_orderness_ms,
                                   max_behind_ms)
    counts: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    for r in on_time:
        start = r.event_time - r.event_time % window_ms
        c = counts[(r.station_id, r.datapoint_id, start)]
        c[0] += r.value > r.threshold and r.threshold != NO_THRESHOLD
        c[1] += 1
    windows = {(s, d, start, start + window_ms): (f, n, f / n) for (s, d, start), (f, n) in counts.items()}
    return Outcome(windows, late, invalid)


def decoded(records: list, schema: str, first_offset: int = 0) -> Iterator[tuple[int, Any, dict | None, str | None]]:
    """(offset, record, its fields or None, None or why it does not decode) of simulated records as produced,
    in order, into one single-partition topic. Decoding uses the Python codec (fastavro), not the job's JVM
    format, with times as the epoch milliseconds on the wire (any long, not only those a datetime holds); a
    null value (a tombstone) and a value over MAX_RECORD_BYTES are not decoded. The reason is cut to the
    words the JVM format's reason starts with too (for a record of another schema, Python says
    "corrupt Avro body" where the JVM names the writer schema)."""
    from schemas import codec

    for offset, r in enumerate(records, first_offset):
        if r.value is None:
            yield offset, r, None, "null value"
        elif len(r.value) > MAX_RECORD_BYTES:
            yield offset, r, None, "oversized record"
        else:
            try:
                yield offset, r, codec.decode(r.value, schema, logical_types=False), None
            except codec.DecodeError as err:
                yield offset, r, None, str(err).split(" (")[0].split(":")[0]


def readings_from(records: list, first_offset: int = 0) -> list[Reading]:
    """Readings of simulated alarm records as produced, in order, into one single-partition topic."""
    return [Reading(offset, r.kafka_ts, decode_error=error) if e is None else
            Reading(offset, r.kafka_ts, None, e["tenant"], e["station_id"], e["datapoint_id"], e["event_time"],
                    e["value"], e["valueThreshold"], e["alarm_id"])
            for offset, r, e, error in decoded(records, "alarm_event.v2", first_offset)]
