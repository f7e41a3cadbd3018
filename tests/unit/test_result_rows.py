"""The rows the results writer binds: a record decoded without logical types, in column order, nulls unset."""

from __future__ import annotations

from datetime import UTC, datetime

from cassandra.cqltypes import DateType
from cassandra.query import UNSET_VALUE

from connectors.results import cql_row
from jobs.alarm_rate import ALARM_RATE_TABLE
from jobs.flow_aggregates import FLOW_TABLE
from schemas import codec

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
END = datetime(2026, 3, 1, 12, 15, tzinfo=UTC)


def _columns(table) -> list[str]:
    return [name for name, _ in table.columns()]


def test_an_alarm_rate_row_is_its_values_in_column_order_with_timestamps_in_milliseconds():
    record = {"tenant": "acme", "station_id": "bts-1", "datapoint_id": "dp-1", "window_start": START,
              "window_end": END, "fires": 3, "events": 8, "rate": 0.375}
    decoded = codec.decode(codec.encode("alarm_rate_result.v1", record), "alarm_rate_result.v1", logical_types=False)
    assert cql_row(_columns(ALARM_RATE_TABLE))(decoded) == (
        "acme", "bts-1", "dp-1", 1772366400000, 1772367300000, 3, 8, 0.375)


def test_the_driver_binds_a_timestamp_in_milliseconds_as_it_bound_the_datetime():
    assert DateType.serialize(1772366400000, 5) == DateType.serialize(START, 5)


def test_a_null_aggregate_is_left_unset_not_written_as_a_tombstone():
    record = {"tenant": "acme", "sensor_id": "ft-1", "element_id": "pipe-1", "kind": "additive",
              "window_start": START, "window_end": END, "readings": 2, "breaches": 0, "sum": 4.5, "mean": None,
              "min": None, "max": None, "increase": None, "energy_kwh": None}
    decoded = codec.decode(codec.encode("flow_result.v1", record), "flow_result.v1", logical_types=False)
    row = cql_row(_columns(FLOW_TABLE))(decoded)
    assert row == ("acme", "ft-1", "pipe-1", "additive", 1772366400000, 1772367300000, 2, 0, 4.5,
                   UNSET_VALUE, UNSET_VALUE, UNSET_VALUE, UNSET_VALUE, UNSET_VALUE)
