"""Hostile Kafka records for a tenant's sensor topic: every kind of bytes, key and headers a tenant can send that
is not a plain valid reading, each with what the job must do with it.

`hostile_records(stream, tenant, valid)` spoils one valid record of the stream (its fields, as the Avro schema
names them) in every way below. A record with a `reason` must become a dead letter whose reason starts with it;
one without (`reason` None) is a valid reading that only looks odd (a null key, strange headers, an id at the
length limit): the job ignores keys and headers, so it must window it like any other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from schemas import codec

STREAM_SCHEMAS = {"alarms": "alarm_event.v2", "flow": "flow_reading.v1", "heartbeats": "heartbeat.v1"}
# a schema of another stream, bundled (so its fingerprint is known) but not readable as this stream's
OTHER_STREAM = {"alarms": "heartbeat.v1", "flow": "alarm_event.v2", "heartbeats": "flow_reading.v1"}
ID_FIELD = {"alarms": "station_id", "flow": "sensor_id", "heartbeats": "sensor_id"}
MAX_TEXT_CHARS = 200  # what the jobs promise (README, pipeline/validation.py), restated here on purpose
MAX_RECORD_BYTES = 64 * 1024
DAY_MS = 24 * 3600 * 1000
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
ODD_HEADERS = [("", b""), ("\u00e9t\u00e9", b"\x00\xff\xfe"), ("none", None), ("dup", b"1"), ("dup", b"2"),
               ("big", b"h" * 20_000), *((f"h{i}", b"x") for i in range(200))]


@dataclass(frozen=True)
class Hostile:
    kind: str
    value: bytes | None
    reason: str | None  # the dead letter's reason starts with this; None: a valid reading like any other
    key: bytes | None = b"hostile"
    headers: tuple[tuple[str, bytes | None], ...] = ()


def _zigzag_varint(n: int) -> bytes:
    """An Avro long as written on the wire."""
    z, out = (n << 1) ^ (n >> 63), bytearray()
    while True:
        byte, z = z & 0x7F, z >> 7
        out.append(byte | (0x80 if z else 0))
        if not z:
            return bytes(out)


def hostile_records(stream: str, tenant: str, valid: dict) -> list[Hostile]:
    """Every hostile kind for `tenant`'s topic of `stream`, made from `valid` (a valid record's fields, with an
    event time that is on time where the records go). Valid-looking kinds keep `valid`'s event time."""
    schema, ident = STREAM_SCHEMAS[stream], ID_FIELD[stream]
    header = codec.MAGIC + codec.schema(schema).fingerprint

    def encoded(**change: object) -> bytes:
        return codec.encode(schema, {**valid, **change})

    def raw_in_id(raw: bytes) -> bytes:
        """The valid record whose id holds these bytes, which are no UTF-8 (put in place of a same-length marker)."""
        marker = "Q" * len(raw)
        data = encoded(**{ident: f"id-{marker}"})
        return data.replace(f"id-{marker}".encode(), b"id-" + raw)

    def spoiled(kind: str, reason: str, **change: object) -> Hostile:
        return Hostile(kind, encoded(**change), reason)

    other = OTHER_STREAM[stream]
    not_readable = f"writer schema {other} cannot be read as {schema}"
    records = [
        Hostile("null value (tombstone)", None, "null value (a Kafka tombstone)"),
        Hostile("tombstone with a null key and odd headers", None, "null value (a Kafka tombstone)", None,
                tuple(ODD_HEADERS)),
        Hostile("empty value", b"", "empty record"),
        Hostile("oversized garbage", b"\xc3\x01" + b"\x00" * 99_998,
                f"oversized record: 100000 bytes, more than {MAX_RECORD_BYTES}"),
        spoiled("oversized valid-looking record", "oversized record: ", **{ident: "i" * 70_000}),
        Hostile("garbage bytes", b"hello, not avro", "not Avro single-object encoding (first bytes 0x68656c6c"),
        Hostile("magic bytes only", codec.MAGIC, "truncated single-object header (2 bytes)"),
        Hostile("header without a body", header, "corrupt Avro body"),
        Hostile("unknown schema fingerprint", codec.MAGIC + b"\x00" * 8 + b"\x02",
                "unknown schema fingerprint 0x0000000000000000"),
        Hostile("another stream's schema", _other_stream_record(other, tenant, valid), not_readable),
        Hostile("a dead letter on a sensor topic", codec.encode("dead_letter.v1", {
            "tenant": tenant, "source_topic": f"{tenant}.sensors.{stream}", "partition": 0, "offset": 1,
            "kafka_timestamp": valid["event_time"], "reason": "x", "payload": b""}),
            f"writer schema dead_letter.v1 cannot be read as {schema}"),
        Hostile("truncated body", encoded()[:-3], "corrupt Avro body"),
        Hostile("trailing bytes", encoded() + b"\x00\x01", "corrupt Avro body: trailing bytes after the record"),
        Hostile("invalid UTF-8 in an id", raw_in_id(b"\xff\xfe"), f"corrupt Avro body: invalid UTF-8 in field {ident}"),
        Hostile("overlong UTF-8 NUL in an id", raw_in_id(b"\xc0\x80"),
                f"corrupt Avro body: invalid UTF-8 in field {ident}"),
        Hostile("UTF-8 surrogate in an id", raw_in_id(b"\xed\xa0\x80"),
                f"corrupt Avro body: invalid UTF-8 in field {ident}"),
        Hostile("negative string length", header + _zigzag_varint(-5) + b"abc", "corrupt Avro body"),
        Hostile("string length of 2 GiB", header + _zigzag_varint(2**31 - 1) + b"abc", "corrupt Avro body"),
        Hostile("over-long varint", header + b"\xff" * 11, "corrupt Avro body"),
        spoiled("missing id", f"missing {ident}", **{ident: ""}),
        spoiled("id one character too long", f"{ident} is too long: {MAX_TEXT_CHARS + 1} characters, at most "
                f"{MAX_TEXT_CHARS}", **{ident: "i" * (MAX_TEXT_CHARS + 1)}),
        spoiled("id of 5000 two-byte characters", f"{ident} is too long: 5000 characters, at most {MAX_TEXT_CHARS}",
                **{ident: "\u00fc" * 5000}),
        spoiled("NUL in an id", f"{ident} has a control character: U+0000 at character 4", **{ident: "bts\x00-1"}),
        spoiled("escape sequence in an id", f"{ident} has a control character: U+001B at character 1",
                **{ident: "\x1b[31mred"}),
        spoiled("newline in an id", f"{ident} has a control character: U+000A at character 6", **{ident: "bts-1\n"}),
        spoiled("C1 control in an id", f"{ident} has a control character: U+0085 at character 4",
                **{ident: "bts\x85"}),
        spoiled("NUL in the tenant", f"tenant has a control character: U+0000 at character {len(tenant) + 1}",
                tenant=f"{tenant}\x00"),
        spoiled("over-long tenant", f"tenant is too long: 300 characters, at most {MAX_TEXT_CHARS}",
                tenant="t" * 300),
        spoiled("another tenant's name", f"unknown tenant: record says intruder on a topic of tenant {tenant}",
                tenant="intruder"),
        *(spoiled(f"event time {label}", "bad timestamp: event_time ", event_time=t) for label, t in (
            ("-2^63", LONG_MIN), ("2^63-1", LONG_MAX), ("-1", -1), ("0", 0), ("in the year 10000", 253_402_300_800_000),
            ("just before 2000", 946_684_799_999))),
        spoiled("event time 3 days behind", "event time too far behind: event_time ",
                event_time=valid["event_time"] - 3 * DAY_MS),
        Hostile("valid with a null key", encoded(), None, None),
        Hostile("valid with odd headers", encoded(), None, b"k", tuple(ODD_HEADERS)),
    ]
    if stream == "alarms":
        records += [spoiled("NaN value", "value is not a finite number: NaN", value=math.nan),
                    spoiled("infinite threshold", "valueThreshold is not a finite number: Infinity",
                            valueThreshold=math.inf),
                    spoiled("value of minus infinity", "value is not a finite number: -Infinity", value=-math.inf)]
    if stream == "flow":
        records += [spoiled("NaN value", "value is not a finite number: NaN", value=math.nan),
                    spoiled("value of minus infinity", "value is not a finite number: -Infinity", value=-math.inf)]
        # the metadata knows no such sensor: a dead letter once on time, like any unknown sensor
        records += [spoiled("id at the length limit", f"unknown sensor: {'i' * MAX_TEXT_CHARS} is not a sensor",
                            **{ident: "i" * MAX_TEXT_CHARS})]
    else:
        records += [Hostile("id at the length limit", encoded(**{ident: "i" * MAX_TEXT_CHARS}), None),
                    Hostile("non-ASCII id", encoded(**{ident: "\u7ad9\u70b9-\u00fc-\U0001f600"}), None)]
    return records


def _other_stream_record(schema: str, tenant: str, valid: dict) -> bytes:
    """A valid record of another stream's schema."""
    fields = {"alarm_event.v2": {"tenant": tenant, "station_id": "bts-1", "datapoint_id": "dp-1", "alarm_id": "a",
                                 "event_time": valid["event_time"], "value": 1.0, "valueThreshold": 2.0,
                                 "isActive": True},
              "heartbeat.v1": {"tenant": tenant, "sensor_id": "s-1", "event_time": valid["event_time"]},
              "flow_reading.v1": {"tenant": tenant, "sensor_id": "s-1", "element_id": "e", "kind": "additive",
                                  "event_time": valid["event_time"], "value": 1.0, "unit": "m3", "reset": False}}
    return codec.encode(schema, fields[schema])
