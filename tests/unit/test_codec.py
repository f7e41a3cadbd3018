"""Avro single-object encoding: round trips, schema evolution, and clear errors for bad bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas import codec
from schemas.codec import DecodeError

EVENT = {"tenant": "acme", "station_id": "bts-1", "datapoint_id": "dp-1", "alarm_id": "a1",
         "event_time": datetime(2026, 1, 1, 4, 5, tzinfo=UTC), "value": 97.5, "valueThreshold": 90.0,
         "isActive": False}


def test_fingerprint_matches_the_avro_spec_vector_in_little_endian_order():
    # Avro's reference value: parsingFingerprint64("null") == 7195948357588979594.
    assert codec.header_fingerprint("null") == (7195948357588979594).to_bytes(8, "little")


def test_record_round_trips_with_header_naming_its_schema():
    data = codec.encode("alarm_event.v2", EVENT)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == codec.schema("alarm_event.v2").fingerprint
    assert codec.decode(data, "alarm_event.v2") == EVENT


def test_record_of_the_older_schema_decodes_into_the_newer_with_defaults():
    v1 = {k: v for k, v in EVENT.items() if k not in ("tenant", "isActive")}
    decoded = codec.decode(codec.encode("alarm_event.v1", v1), "alarm_event.v2")
    assert decoded == {**v1, "tenant": "", "isActive": True}


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty record"),
    (None, "empty record"),
    (b"hello, not avro", "not Avro single-object encoding (first bytes 0x68656c6c)"),
    (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown schema fingerprint 0x0000000000000000"),
])
def test_bytes_that_are_no_record_get_a_reason(data, reason):
    with pytest.raises(DecodeError) as err:
        codec.decode(data, "alarm_event.v2")
    assert str(err.value) == reason


def test_truncated_and_overlong_bodies_are_corrupt():
    data = codec.encode("alarm_event.v2", EVENT)
    for bad in (data[:-3], data + b"\x00"):
        with pytest.raises(DecodeError, match=r"^corrupt Avro body"):
            codec.decode(bad, "alarm_event.v2")


def test_unknown_schema_name_lists_the_bundled_ones():
    with pytest.raises(KeyError, match=r"alarm_event\.v2"):
        codec.schema("alarm_event.v9")


def test_without_logical_types_timestamps_stay_epoch_milliseconds():
    data = codec.encode("alarm_event.v2", EVENT)
    decoded = codec.decode(data, "alarm_event.v2", logical_types=False)
    assert decoded == {**EVENT, "event_time": int(EVENT["event_time"].timestamp() * 1000)}
    assert codec.decode(data, "alarm_event.v2") == EVENT  # the other reading is still there


def test_without_logical_types_an_older_record_still_resolves_into_the_newer_schema():
    v1 = {k: v for k, v in EVENT.items() if k not in ("tenant", "isActive")}
    decoded = codec.decode(codec.encode("alarm_event.v1", v1), "alarm_event.v2", logical_types=False)
    assert decoded == {**v1, "event_time": 1767240300000, "tenant": "", "isActive": True}
