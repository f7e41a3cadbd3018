"""An independent, plain-Python computation of the flow aggregates job's output.

It shares nothing with the job's SQL: it decides validity, lateness, counter steps, windows and the
rows of windows without data itself, record by record, in the order of one topic partition (the
records of several tenants' topics interleaved as the job read them), as Flink does with a watermark
emitted after every record (`on-event`). Counter steps are taken from the previous accepted reading,
as documented, not from a running maximum as the SQL does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from operators.flow import PlannedMetadata
from tests.oracle import Outcome, bad_time, decoded, number_problem, route, text_problem, too_far_behind

COUNTER, POWER = "energy_counter", "power"
# an Outcome's windows: Key -> Row
Key = tuple[str, str, str, str, int, int]  # tenant, sensor, element, kind, window start, window end
# readings, breaches, sum, mean, min, max, increase, energy_kwh
Row = tuple[int, int, float | None, float | None, float | None, float | None, float | None, float | None]


@dataclass(frozen=True)
class FlowReading:
    """One record of a tenant's flow topic as the job sees it after decoding."""

    offset: int
    kafka_ts: int
    topic_tenant: str
    decode_error: str | None = None
    tenant: str = ""
    sensor_id: str = ""
    element_id: str = ""
    kind: str = ""
    event_time: int | None = None
    value: float | None = None
    unit: str = ""
    reset: bool = False


def invalid_reason(r: FlowReading) -> str | None:
    """Why the record is bad whatever its sensor, or None."""
    if r.decode_error is not None:
        return r.decode_error
    for name in ("sensor_id", "element_id", "kind", "unit"):
        if not getattr(r, name):
            return f"missing {name}"
    problem = text_problem([(name, getattr(r, name)) for name in ("tenant", "sensor_id", "element_id", "kind",
                                                                   "unit")]) or number_problem([("value", r.value)])
    if problem:
        return problem
    if bad_time(r):
        return "bad timestamp"
    if too_far_behind(r):
        return "event time too far behind"
    if r.tenant and r.tenant != r.topic_tenant:
        return "unknown tenant"
    if r.value is None:
        return "missing value"
    if r.kind in (POWER, COUNTER) and r.value < 0:
        return "negative power" if r.kind == POWER else "negative energy"
    return None


def sensor_mismatch(r: FlowReading, metadata: PlannedMetadata) -> str | None:
    """Why an on-time record's sensor is not one the metadata knows as the record describes it, or None."""
    sensor = _sensors(metadata).get((r.topic_tenant, r.sensor_id))
    if sensor is None:
        return "unknown sensor"
    if (sensor["element"], sensor["kind"], sensor["unit"]) != (r.element_id, r.kind, r.unit):
        return f"sensor {r.sensor_id} is {sensor['element']} {sensor['kind']} {sensor['unit']} in the metadata"
    return None


def _sensors(metadata: PlannedMetadata) -> dict[tuple[str, str], dict]:
    return {(d["tenant"], d["id"]): d for d in metadata.documents["sensors"]}


def flow_aggregates(readings: list[FlowReading], metadata: PlannedMetadata, window_ms: int,
                    out_of_orderness_ms: int) -> Outcome:
    routed_on_time, late, invalid = route(readings, invalid_reason, out_of_orderness_ms)
    on_time = []
    for r in routed_on_time:
        reason = sensor_mismatch(r, metadata)
        if reason:
            invalid[r.offset] = reason
        else:
            on_time.append(r)
    steps = _counter_steps([r for r in on_time if r.kind == COUNTER], invalid)
    groups: dict[Key, list[FlowReading]] = defaultdict(list)
    for r in on_time:
        if r.kind != COUNTER or r.offset in steps:
            start = r.event_time - r.event_time % window_ms
            groups[(r.topic_tenant, r.sensor_id, r.element_id, r.kind, start, start + window_ms)].append(r)
    windows = {key: _row(rs, key, metadata, steps, window_ms) for key, rs in groups.items()}
    windows.update(_empty_power_windows(windows, metadata))
    return Outcome(windows, late, invalid)


def _counter_steps(counters: list[FlowReading], invalid: dict[int, str]) -> dict[int, float]:
    """offset -> step of each accepted counter reading; rejected ones are added to `invalid`."""
    steps = {}
    by_sensor: dict[tuple[str, str], list[FlowReading]] = defaultdict(list)
    for r in counters:
        by_sensor[(r.topic_tenant, r.sensor_id)].append(r)
    for readings in by_sensor.values():
        previous = None  # the previous accepted value
        for r in sorted(readings, key=lambda r: r.event_time):  # stable: ties stay in arrival order
            if r.reset:
                steps[r.offset] = r.value
            elif previous is None:
                steps[r.offset] = 0.0
            elif r.value < previous:
                invalid[r.offset] = "counter went backwards without reset"
                continue
            else:
                steps[r.offset] = r.value - previous
            previous = r.value
    return steps


def _row(readings: list[FlowReading], key: Key, metadata: PlannedMetadata, steps: dict[int, float],
         window_ms: int) -> Row:
    tenant, _, element, kind, _, _ = key
    limits = {(d["tenant"], d["id"]): d["limits"] or {} for d in metadata.documents["elements"]}
    low, high = limits.get((tenant, element), {}).get("min"), limits.get((tenant, element), {}).get("max")
    breaches = sum((low is not None and r.value < low) or (high is not None and r.value > high) for r in readings)
    values = [r.value for r in readings]
    total, n = sum(values), len(values)
    if kind == "additive":
        return n, breaches, total, None, None, None, None, None
    if kind == "non_additive":
        return n, breaches, None, total / n, min(values), max(values), None, None
    if kind == COUNTER:
        return n, breaches, None, None, None, None, sum(steps[r.offset] for r in readings), None
    return n, breaches, None, total / n, None, None, None, total / n * (window_ms / 3_600_000)


def _empty_power_windows(windows: dict[Key, Row], metadata: PlannedMetadata) -> dict[Key, Row]:
    """A zero-energy row for each power sensor without readings in a window its tenant has rows in."""
    clock = {(k[0], k[4], k[5]) for k in windows}
    seen = {(k[0], k[1], k[4]) for k in windows}
    return {(tenant, s["id"], s["element"], POWER, start, end): (0, 0, None, None, None, None, None, 0.0)
            for tenant, start, end in clock for s in metadata.documents["sensors"]
            if s["tenant"] == tenant and s["kind"] == POWER and (tenant, s["id"], start) not in seen}


def rows_match(actual: dict[Key, Row], expected: dict[Key, Row], rel: float = 1e-9) -> list[str]:
    """The differences between two results: keys exactly, counts exactly, floats to `rel` relative
    (1e-12 absolute near zero, where a difference of values can leave rounding dust)."""
    problems = [f"missing {k}" for k in expected.keys() - actual.keys()]
    problems += [f"unexpected {k}: {actual[k]}" for k in actual.keys() - expected.keys()]
    for key in expected.keys() & actual.keys():
        for got, want in zip(actual[key], expected[key], strict=True):
            same = got == want if got is None or want is None or isinstance(want, int) else \
                math.isclose(got, want, rel_tol=rel, abs_tol=1e-12)
            if not same:
                problems.append(f"{key}: {actual[key]} != {want} expected in {expected[key]}")
                break
    return problems


def flow_readings_from(records: list, first_offset: int = 0) -> list[FlowReading]:
    """Readings of simulated flow records as produced, in order, into one single-partition topic."""
    return [FlowReading(offset, r.kafka_ts, r.tenant, decode_error=error) if e is None else
            FlowReading(offset, r.kafka_ts, r.tenant, None, e["tenant"], e["sensor_id"], e["element_id"], e["kind"],
                        e["event_time"], e["value"], e["unit"], e["reset"])
            for offset, r, e, error in decoded(records, "flow_reading.v1", first_offset)]
