"""The exact check of a fault run: what the alarm-rate job committed and the writer put in Cassandra, against the
oracle (operators/oracle.py) over the records as the broker appended them. Pure: no client, no server.

Every on-time record must be counted once, in its window; every late record once, on the late topic or in its
window (after a restart the job's watermark starts again from nothing, so a late record read first after the
restore may still be windowed: it must then be counted in its window, and only there); every bad record must be
on the dead-letter topic once. Only windows the final watermark has closed are compared (the stream is
unbounded: its newest window is still open).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from operators.oracle import NO_THRESHOLD, Reading, alarm_rate, invalid_reason, readings_from, routed

Window = tuple[str, str, int, int]  # station, datapoint, start, end (epoch ms)
Counts = tuple[int, int, float]  # fires, events, rate


@dataclass(frozen=True)
class Expected:
    windows: dict[Window, Counts]  # those the final watermark closed
    late: dict[int, Reading]  # offset -> reading
    invalid: set[int]  # offsets of the records that must become dead letters


@dataclass(frozen=True)
class Verdict:
    equal: bool
    lost: int  # records the oracle counts that the results topic, Cassandra (the worse of the two) or the diverted
    # topics lack
    doubled: int  # records counted more than once there
    notes: tuple[str, ...]  # the first few differences (and late records found in their windows), in words


def expected(records: Sequence, tenant: str, window_ms: int, out_of_orderness_ms: int) -> Expected:
    """What the job must output for `records` (as appended, in their one partition's order)."""
    readings = readings_from(list(records))
    outcome = alarm_rate(readings, tenant, window_ms, out_of_orderness_ms)
    *_, (_, _, _, watermark) = routed(readings, lambda r: invalid_reason(r, tenant), out_of_orderness_ms)
    closed = {w: c for w, c in outcome.windows.items() if w[3] - 1 <= watermark}
    by_offset = {r.offset: r for r in readings}
    return Expected(closed, {o: by_offset[o] for o in outcome.late}, set(outcome.invalid))


def _with_windowed_late(exp: Expected, windowed: Iterable[int], window_ms: int) -> dict[Window, Counts]:
    """The expected windows once the late records `windowed` are counted in their windows instead."""
    counts: dict[Window, list[int]] = defaultdict(lambda: [0, 0])
    for w, (fires, events, _) in exp.windows.items():
        counts[w] = [fires, events]
    for offset in windowed:
        r = exp.late[offset]
        start = r.event_time - r.event_time % window_ms
        c = counts[(r.station_id, r.datapoint_id, start, start + window_ms)]
        c[0] += r.value > r.threshold and r.threshold != NO_THRESHOLD
        c[1] += 1
    return {w: (f, n, f / n) for w, (f, n) in counts.items()}


def judge(exp: Expected, results: Sequence[tuple[Window, Counts]], cassandra: dict[Window, Counts],
          dead_offsets: Sequence[int], late_offsets: Sequence[int], window_ms: int) -> Verdict:
    """Compare the committed results (every record, duplicates included), the Cassandra rows and the source
    offsets of the dead letters and late records with `exp`."""
    notes: list[str] = []
    late_seen = Counter(late_offsets)
    windowed_late = [o for o in exp.late if o not in late_seen]
    windows = _with_windowed_late(exp, windowed_late, window_ms)
    if windowed_late:
        notes.append(f"{len(windowed_late)} late records were not on the late topic (checked in their windows)")

    per_key: dict[Window, list[Counts]] = defaultdict(list)
    for key, counts in results:
        per_key[key].append(counts)
    strangers = sorted(set(per_key) - set(windows))
    if strangers:
        notes.append(f"{len(strangers)} windows committed that the oracle does not close, first {strangers[0]}")
    topic_lost = topic_doubled = 0
    for key, want in windows.items():
        got = per_key.get(key, [])
        events = sum(c[1] for c in got)
        topic_lost += max(0, want[1] - events)
        topic_doubled += max(0, events - want[1])
        if len(got) != 1 or got[0] != want:
            notes.append(f"window {key}: committed {got or 'nothing'}, expected {want}")
    cassandra_lost = sum(max(0, want[1] - cassandra.get(key, (0, 0, 0.0))[1]) for key, want in windows.items())
    cassandra_equal = cassandra == windows
    if not cassandra_equal:
        notes.append(f"Cassandra: {sum(1 for k in windows if cassandra.get(k) != windows[k])} of {len(windows)} "
                     f"windows differ, {len(set(cassandra) - set(windows))} rows not expected")

    dead_seen = Counter(dead_offsets)
    dead_missing = len(exp.invalid - set(dead_seen))
    dead_doubled = sum(n - 1 for n in dead_seen.values() if n > 1)
    dead_strangers = len(set(dead_seen) - exp.invalid)
    late_doubled = sum(n - 1 for n in late_seen.values() if n > 1)
    late_strangers = len(set(late_seen) - set(exp.late))
    if dead_missing or dead_doubled or dead_strangers:
        notes.append(f"dead letters: {dead_missing} missing, {dead_doubled} doubled, {dead_strangers} not bad")
    if late_doubled or late_strangers:
        notes.append(f"late topic: {late_doubled} doubled, {late_strangers} not late")

    lost = max(topic_lost, cassandra_lost) + dead_missing
    doubled = topic_doubled + dead_doubled + late_doubled
    equal = (not lost and not doubled and cassandra_equal and not dead_strangers and not late_strangers
             and not strangers and all(per_key.get(k) == [v] for k, v in windows.items()))
    return Verdict(equal, lost, doubled, tuple(notes[:8]))
