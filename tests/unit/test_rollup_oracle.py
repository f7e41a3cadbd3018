"""The rollup job's SQL (jobs/rollup.py) in Flink's batch mode over a file of window rows, compared exactly with
the plain-Python oracle (tests/rollup_oracle.py): a month boundary, leap days, both DST changes of
Europe/Amsterdam and America/New_York, and UTC; older copies of a window and another tenant's rows (sharing
station ids) are left out."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest

from connectors.flink import batch_table_env
from jobs.rollup import ROLLUPS, Rollup, newest_windows_query, rollup_query
from operators.periods import parse_period
from pipeline.execute import execute_sql
from pipeline.sql import quote
from schemas.sql import flink_columns
from tests.flink_local import iso
from tests.rollup_oracle import alarm_rate_rollup, flow_rollup

TENANT, OTHER = "acme", "globex"
MINUTE = 60_000
# Four days around each: the leap day and the end of February, the US spring change, the EU spring change and
# the end of March, the EU autumn change, the US autumn change and the end of October; and 2028's leap day.
SPANS = ("2024-02-27T00:00Z", "2024-03-08T00:00Z", "2024-03-29T00:00Z", "2024-10-25T00:00Z", "2024-10-31T00:00Z",
         "2028-02-27T00:00Z")
ZONES = ("Europe/Amsterdam", "America/New_York", "UTC")
PERIODS = ("day", "week", "month", "12h", "1h")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def alarm_windows(seed: int) -> list[dict]:
    """Windows every 10 minutes of two stations of the tenant and of another tenant with the same ids; about one
    in 20 has an older copy (an earlier Kafka timestamp) with other counts, which the rollup must ignore."""
    rng = random.Random(seed)
    rows = []
    for span in SPANS:
        for step in range(4 * 24 * 6):
            start = ms(span) + step * 10 * MINUTE
            for tenant in (TENANT, OTHER):
                for station in ("S1", "S2"):
                    events = rng.randint(1, 40)
                    row = {"tenant": tenant, "station_id": station, "datapoint_id": "D1", "window_start": start,
                           "window_end": start + MINUTE, "fires": rng.randint(0, events), "events": events,
                           "rate": 0.0, "kafka_timestamp": start + 90_000, "kafka_partition": 0,
                           "kafka_offset": len(rows)}
                    if rng.random() < 0.05:
                        rows.append({**row, "fires": 1000, "events": 2000, "kafka_timestamp": start + 70_000,
                                     "kafka_partition": 1})
                    rows.append(row)
    return rows


def flow_windows(seed: int) -> list[dict]:
    """Windows every 15 minutes of a sensor of each kind; values are multiples of 1/4, so sums are exact in any
    order and SQL and Python agree to the bit."""
    rng = random.Random(seed)
    rows = []
    for span in SPANS[:3]:
        for step in range(4 * 24 * 4):
            start = ms(span) + step * 15 * MINUTE
            for sensor, kind in (("P1", "additive"), ("T1", "non_additive"), ("E1", "energy_counter"),
                                 ("W1", "power")):
                readings = 0 if kind == "power" and rng.random() < 0.1 else rng.randint(1, 15)
                value = rng.randint(0, 400) / 4
                fields = {"additive": {"sum": value},
                          "non_additive": {"mean": value, "min": value - 2.5, "max": value + 1.25},
                          "energy_counter": {"increase": value},
                          "power": {"mean": value if readings else None, "energy_kwh": value / 4 if readings else 0.0},
                          }[kind]
                rows.append({"tenant": TENANT, "sensor_id": sensor, "element_id": "e", "kind": kind,
                             "window_start": start, "window_end": start + 15 * MINUTE, "readings": readings,
                             "breaches": rng.randint(0, readings), "sum": None, "mean": None, "min": None,
                             "max": None, "increase": None, "energy_kwh": None, **fields,
                             "kafka_timestamp": start + 20 * MINUTE, "kafka_partition": 0, "kafka_offset": len(rows)})
    return rows


@pytest.fixture(scope="module")
def flink():
    return batch_table_env()


def rolled_up(env, kind: str, rows: list[dict], labels: tuple[str, ...], zone: str, folder) -> dict[str, dict]:
    """The rollups' rows per period, by the job's own SQL over a file of `rows` (one Flink job for all the
    periods): label -> key and bounds (epoch ms) -> aggregates."""
    rollups = [Rollup(ROLLUPS[kind], TENANT, parse_period(label), zone) for label in labels]
    spec = rollups[0].kind
    path = folder / f"{kind}.json"
    path.write_text("".join(json.dumps({k: iso(v) if k in ("window_start", "window_end", "kafka_timestamp")
                                        else v for k, v in row.items()}) + "\n" for row in rows))
    source = f"windows_{kind}_{folder.name}"
    execute_sql(env, f"CREATE TEMPORARY TABLE `{source}` ("
                + ", ".join([*flink_columns(spec.windows.schema), "`kafka_timestamp` TIMESTAMP_LTZ(3)",
                             "`kafka_partition` INT", "`kafka_offset` BIGINT"])
                + f") WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'json', "
                  "'json.timestamp-format.standard' = 'ISO-8601')")
    env.get_config().set("table.local-time-zone", zone)
    epoch = "TO_TIMESTAMP_LTZ(0, 3)"
    keys = ", ".join(quote(k) for k in spec.keys)
    aggregates = ", ".join(quote(a) for a in spec.aggregates)
    query = " UNION ALL ".join(
        f"SELECT `period`, `time_zone`, {keys}, TIMESTAMPDIFF(SECOND, {epoch}, `window_start`), "
        f"TIMESTAMPDIFF(SECOND, {epoch}, `window_end`), {aggregates} "
        f"FROM ({rollup_query(rollup, f'({newest_windows_query(rollup, source)})')})" for rollup in rollups)
    out: dict[str, dict] = {label: {} for label in labels}
    n = len(spec.keys)
    with execute_sql(env, query).collect() as results:
        for row in results:
            assert row[1] == zone
            out[row[0]][(*row[2:2 + n], row[2 + n] * 1000, row[3 + n] * 1000)] = tuple(row[4 + n:])
    return out


def newest_of_tenant(rows: list[dict]) -> list[dict]:
    newest: dict[tuple, dict] = {}
    for row in sorted(rows, key=lambda r: r["kafka_timestamp"]):
        if row["tenant"] == TENANT:
            newest[(row.get("station_id"), row.get("sensor_id"), row["window_start"])] = row
    return list(newest.values())


@pytest.mark.parametrize("zone", ZONES)
def test_alarm_rate_rollups_equal_the_oracle_in_each_zone(flink, zone, tmp_path_factory):
    rows = alarm_windows(seed=25)
    got = rolled_up(flink, "alarm_rate", rows, PERIODS, zone, tmp_path_factory.mktemp(zone.replace("/", "_")))
    for label in PERIODS:
        assert got[label] == alarm_rate_rollup(newest_of_tenant(rows), label, zone), label
    days = {(end - start) // 3_600_000 for _, _, start, end in got["day"]}
    assert days == ({24} if zone == "UTC" else {23, 24, 25})


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "America/New_York"])
def test_flow_rollups_add_what_adds_and_weigh_the_means(flink, zone, tmp_path_factory):
    rows = flow_windows(seed=26)
    labels = ("day", "month", "12h")
    got = rolled_up(flink, "flow_aggregates", rows, labels, zone, tmp_path_factory.mktemp("flow" + zone[:6]))
    for label in labels:
        assert got[label] == flow_rollup(newest_of_tenant(rows), label, zone), label
