"""Bad records for a running job's source topic: one poison record with every field of the alarm event hostile at
once, and a burst of many bad records of several kinds, produced as fast as the producer sends them.

None of them may stop the job: each must end on the dead-letter topic, once. The check learns which records are
bad from the oracle (operators.oracle.invalid_reason) over the topic as read back, not from this module's word.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from connectors.kafka import producer
from operators.oracle import MAX_TEXT_CHARS
from schemas import codec

SCHEMA = "alarm_event.v2"


def poison(tenant: str) -> bytes:
    """An alarm event that decodes, with every field wrong at once: another tenant's name with a NUL, too long; a
    station id with an escape sequence, too long; a datapoint id with a C1 control; an alarm id with DEL; the
    smallest event time a long holds; a NaN value, an infinite threshold."""
    return codec.encode(SCHEMA, {
        "tenant": f"{tenant}x\0" + "t" * MAX_TEXT_CHARS, "station_id": "bts\x1b[2J" + "s" * MAX_TEXT_CHARS,
        "datapoint_id": "dp\x85", "alarm_id": "al\x7f", "event_time": -(2 ** 63), "value": math.nan,
        "valueThreshold": -math.inf, "isActive": False})


def bad_records(tenant: str, count: int, event_time: int) -> Iterator[bytes]:
    """`count` bad records, kinds in turn: bytes that are no Avro, a truncated body, another tenant's event, an
    event without a station, a NaN value, an event time in 2100; the events' other fields are valid, their time
    `event_time` (that of the stream's events: only the field meant is wrong)."""
    def event(n: int, **change: object) -> bytes:
        return codec.encode(SCHEMA, {"tenant": tenant, "station_id": "bts-0000", "datapoint_id": "dp-0",
                                     "alarm_id": f"burst-{n}", "event_time": event_time, "value": 1.0,
                                     "valueThreshold": 50.0, "isActive": True, **change})

    kinds = (lambda n: f"not avro {n}".encode(),
             lambda n: event(n)[:-3],
             lambda n: event(n, tenant=f"{tenant}-other"),
             lambda n: event(n, station_id=""),
             lambda n: event(n, value=math.nan),
             lambda n: event(n, event_time=4_102_444_800_000))  # 2100: ahead of any append time
    for n in range(count):
        yield kinds[n % len(kinds)](n)


def produce_fast(bootstrap: str, topic: str, values: Iterator[bytes]) -> int:
    """Send `values` to partition 0 of `topic` as fast as the producer batches them; return how many the broker
    acknowledged (RuntimeError naming the first failure if any was not)."""
    p = producer(bootstrap, **{"linger.ms": 20, "batch.size": 1_000_000, "compression.type": "lz4"})
    failures: list[str] = []
    sent = 0

    def delivered(err: object, msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for value in values:
        while True:
            try:
                p.produce(topic, value=value, partition=0, on_delivery=delivered)
                break
            except BufferError:
                p.poll(0.05)
        sent += 1
    if p.flush(120) or failures:
        raise RuntimeError(f"bad records to {topic}: {len(failures)} not delivered, first: "
                           f"{failures[0] if failures else 'flush timed out'}")
    return sent
