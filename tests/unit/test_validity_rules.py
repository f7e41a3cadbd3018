"""Every job's validity rules, as Flink runs them (TEXT_FAULT and the other functions of our jar included), give
each record the reason the plain-Python oracle of that job gives: plain bounded text, finite numbers and sane
times, in the same order, at every boundary and for the extreme longs. Local Flink, no server."""

from __future__ import annotations

import math

import pytest

from jobs.alarm_rate import alarm_rate_job
from jobs.flow_aggregates import flow_aggregates_job
from jobs.sensor_health import sensor_health_job
from operators.flow import PlannedMetadata
from pipeline.job import Job
from pipeline.validation import DECODE_ERROR_COLUMN, KAFKA_TIMESTAMP_COLUMN, MAX_TEXT_CHARS, rejection_reason
from schemas.sql import flink_columns
from tests import flow_oracle, health_oracle, oracle
from tests.unit import test_jvm_functions

query = test_jvm_functions.query  # the fixture: SQL in a local Flink with our jar's functions
TENANT = "acme"
APPENDED = 1_767_225_600_000  # 2026-01-01, the Kafka append time of every row
DAY = 24 * 3600 * 1000
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

BASES = {  # a valid record of each job's stream
    "alarm_rate": {"tenant": TENANT, "station_id": "bts-1", "datapoint_id": "dp-1", "alarm_id": "al-1",
                   "event_time": APPENDED, "value": 5.0, "valueThreshold": 9.0, "isActive": True},
    "flow": {"tenant": "", "sensor_id": "pump-1-flow", "element_id": "pump-1", "kind": "non_additive",
             "event_time": APPENDED, "value": 50.0, "unit": "m3/h", "reset": False},
    "sensor_health": {"tenant": TENANT, "sensor_id": "sensor-0001", "event_time": APPENDED},
}
TEXTS = ["x" * MAX_TEXT_CHARS, "x" * (MAX_TEXT_CHARS + 1), "😀" * MAX_TEXT_CHARS, "😀" * (MAX_TEXT_CHARS + 1),
         "ü" * 5000, "a\x00b", "\x1f", "ok\x7f", "\x80", "z\x9f", "\xa0ok", "line\nbreak", "tab\there",
         "\u2028ok", "\u200eok", "站点-ü", "x" * 190 + "\x00"]
NUMBERS = [math.nan, math.inf, -math.inf, 1.7976931348623157e308, -0.0, 5e-324]
# TO_TIMESTAMP_LTZ makes NULL of a time after the year 9999 and of the ends of a long, so here those are missing
# times; tests/integration/test_hostile_records.py has the format read them from Avro as they are.
TIMES = [LONG_MIN, LONG_MAX, -1, 0, oracle.EARLIEST_MS - 1, oracle.EARLIEST_MS, APPENDED + DAY,
         APPENDED + DAY + 1, 253_402_300_800_000, -62_135_596_800_001]


def cases(base: dict) -> list[dict]:
    """The base record with each text, number and time field spoiled in every way above, and some spoiled
    twice (which reason comes first)."""
    out = [base]
    for name, value in base.items():
        if isinstance(value, str):
            out += [{**base, name: text} for text in TEXTS] + [{**base, name: "\x00", "event_time": 0}]
        elif isinstance(value, float):
            out += [{**base, name: number} for number in NUMBERS] + [{**base, name: math.nan, "event_time": -1}]
    out += [{**base, "event_time": t} for t in TIMES]
    texts = [name for name, value in base.items() if isinstance(value, str) and name != "tenant"]
    out.append({**base, texts[-1]: "\x00", texts[0]: "y" * 300})
    return out


def sql_value(value: object, sql_type: str) -> str:
    """`value` as a Flink SQL expression of `sql_type`; control characters through CHR, since a literal holds none."""
    if sql_type == "STRING":
        parts, literal = [], ""
        for c in value:
            if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F:
                parts += [f"'{literal}'", f"CHR({ord(c)})"]
                literal = ""
            else:
                literal += c.replace("'", "''")
        parts.append(f"'{literal}'")
        return f"CAST({' || '.join(parts)} AS STRING)"
    if sql_type == "DOUBLE":
        text = "NaN" if math.isnan(value) else "Infinity" if value == math.inf else \
            "-Infinity" if value == -math.inf else repr(value)
        return f"CAST('{text}' AS DOUBLE)"
    if sql_type.startswith("TIMESTAMP"):
        return f"TO_TIMESTAMP_LTZ(CAST('{value}' AS BIGINT), 3)"
    return "TRUE" if value else "FALSE"


def flink_reasons(query, job: Job, rows: list[dict]) -> list[str | None]:
    """The reason Flink's rules give each row (NULL: valid), with the source's columns as the job declares them."""
    types = {c.split(" ", 1)[0].strip("`"): c.split(" ", 1)[1] for c in flink_columns(job.event_schema)}
    values = ", ".join(
        "(" + ", ".join([str(i), *(sql_value(row[n], t) for n, t in types.items()), "CAST(NULL AS STRING)",
                         f"TO_TIMESTAMP_LTZ({APPENDED}, 3)"]) + ")" for i, row in enumerate(rows))
    names = ", ".join(["i", *(f"`{n}`" for n in types), DECODE_ERROR_COLUMN, KAFKA_TIMESTAMP_COLUMN])
    got = dict(query(f"SELECT i, {rejection_reason(job.rules())} FROM (VALUES {values}) AS t({names})"))
    return [got[i] for i in range(len(rows))]


def oracle_reason(job: str, i: int, row: dict) -> str | None:
    if job == "alarm_rate":
        return oracle.invalid_reason(oracle.Reading(
            i, APPENDED, None, row["tenant"], row["station_id"], row["datapoint_id"], row["event_time"], row["value"],
            row["valueThreshold"], row["alarm_id"]), TENANT)
    if job == "flow":
        return flow_oracle.invalid_reason(flow_oracle.FlowReading(
            i, APPENDED, TENANT, None, row["tenant"], row["sensor_id"], row["element_id"], row["kind"],
            row["event_time"], row["value"], row["unit"], row["reset"]))
    return health_oracle.invalid_reason(health_oracle.Beat(TENANT, i, APPENDED, None, row["tenant"], row["sensor_id"],
                                                           row["event_time"]))


JOBS = {"alarm_rate": alarm_rate_job([TENANT]),
        "flow": flow_aggregates_job([TENANT], PlannedMetadata({"sensors": (), "elements": ()})),
        "sensor_health": sensor_health_job([TENANT])}


@pytest.mark.parametrize("name", list(JOBS))
def test_each_jobs_rules_give_the_reason_its_oracle_gives(query, name):
    rows = cases(BASES[name])
    reasons = flink_reasons(query, JOBS[name], rows)
    for i, (row, reason) in enumerate(zip(rows, reasons, strict=True)):
        expected = oracle_reason(name, i, row)
        assert (reason is None) is (expected is None), (row, reason, expected)
        assert reason is None or reason.startswith(expected), (row, reason, expected)
    assert sum(r is None for r in reasons) >= 8 and sum(r is not None for r in reasons) >= 30  # both kinds seen


def test_the_reasons_say_what_is_wrong_and_where(query):
    base = BASES["alarm_rate"]
    rows = [{**base, "station_id": "😀" * 201}, {**base, "datapoint_id": "ab\x00"}, {**base, "alarm_id": "\x85"},
            {**base, "valueThreshold": math.inf}, {**base, "value": math.nan}, {**base, "event_time": LONG_MIN}]
    reasons = flink_reasons(query, JOBS["alarm_rate"], rows)
    assert reasons[:5] == ["station_id is too long: 201 characters, at most 200",
                           "datapoint_id has a control character: U+0000 at character 3",
                           "alarm_id has a control character: U+0085 at character 1",
                           "valueThreshold is not a finite number: Infinity", "value is not a finite number: NaN"]
    assert reasons[5].startswith("bad timestamp: event_time ")

