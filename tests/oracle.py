"""An independent, plain-Python computation of the alarm-rate job's output.

It shares nothing with the job's SQL: it decides validity, lateness and windows
itself, record by record, in the order of one topic partition, as Flink does
with a watermark emitted after every record (`on-event`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

EARLIEST_MS = 946_684_800_000  # 2000-01-01 UTC
MAX_AHEAD_MS = 24 * 3600 * 1000
NO_THRESHOLD = 999999


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


@dataclass(frozen=True)
class Outcome:
    windows: dict[tuple[str, str, int, int], tuple[int, int, float]]  # (station, dp, start, end) -> fires, events, rate
    late: list[int]  # offsets
    invalid: dict[int, str]  # offset -> first words of the reason


def bad_time(r: Reading) -> bool:
    """Outside [2000, Kafka append time + 24 h], or missing: `r` is any record with event_time and kafka_ts."""
    return r.event_time is None or r.event_time < EARLIEST_MS or r.event_time > r.kafka_ts + MAX_AHEAD_MS


def invalid_reason(r: Reading, tenant: str) -> str | None:
    if r.decode_error is not None:
        return r.decode_error
    if not r.station_id:
        return "missing station_id"
    if not r.datapoint_id:
        return "missing datapoint_id"
    if bad_time(r):
        return "bad timestamp"
    if r.tenant and r.tenant != tenant:
        return "unknown tenant"
    return None


def alarm_rate(readings: list[Reading], tenant: str, window_ms: int, out_of_orderness_ms: int) -> Outcome:
    watermark: int | None = None
    late, invalid = [], {}
    counts: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    for r in readings:
        reason = invalid_reason(r, tenant)
        # Only a record whose time cannot be trusted is kept from moving the watermark.
        rowtime = 0 if r.decode_error is not None or bad_time(r) else r.event_time
        if reason:
            invalid[r.offset] = reason
        elif watermark is not None and rowtime <= watermark:
            late.append(r.offset)
        else:
            start = rowtime - rowtime % window_ms
            c = counts[(r.station_id, r.datapoint_id, start)]
            c[0] += r.value > r.threshold and r.threshold != NO_THRESHOLD
            c[1] += 1
        candidate = rowtime - out_of_orderness_ms
        watermark = candidate if watermark is None else max(watermark, candidate)
    windows = {(s, d, start, start + window_ms): (f, n, f / n) for (s, d, start), (f, n) in counts.items()}
    return Outcome(windows, late, invalid)


def readings_from(records: list, first_offset: int = 0) -> list[Reading]:
    """Readings of simulated records as produced, in order, into one single-partition topic.

    Decoding uses the Python codec (fastavro), not the job's JVM format.
    """
    from schemas import codec

    readings = []
    for offset, r in enumerate(records, first_offset):
        try:
            e = codec.decode(r.value, "alarm_event.v2")
        except codec.DecodeError as err:
            readings.append(Reading(offset, r.kafka_ts, decode_error=str(err).split(" (")[0].split(":")[0]))
            continue
        readings.append(Reading(offset, r.kafka_ts, None, e["tenant"], e["station_id"], e["datapoint_id"],
                                int(e["event_time"].timestamp() * 1000), e["value"], e["valueThreshold"]))
    return readings
