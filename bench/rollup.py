"""`tenantstream bench --rollup`: the alarm-rate rollup over a month of 1-minute windows of 100 keys and over a
tenth of that, so the README can say how its time grows.

For each size a fresh tenant's `<tenant>.results.alarm_rate` is filled with that many alarm-rate windows
(100 keys: 10 stations x 10 datapoints, one window a minute from 2024-03-01 in Europe/Amsterdam, a month with
its 23-hour day); then the day rollup runs as `tenantstream rollup` does (submit.rollup.run_rollups: a Flink
batch job on a local mini-cluster, exactly once to the rollup topic, then the results writer into Cassandra).
Printed per size: windows, seconds end to end and of the Flink job alone, windows/s, rollup rows.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TextIO

from bench.run import RESULTS_DIR, remove_run_data
from connectors.kafka import delete_groups, ensure_topics
from connectors.kafka_access import acl_principals, delete_principal
from jobs.rollup import ROLLUPS, Rollup
from operators.periods import DAY
from pipeline.job import RunSettings
from schemas import codec
from stack.config import StackConfig
from submit.rollup import run_rollups
from submit.simulate import SimRecord, produce

KIND = ROLLUPS["alarm_rate"]
ZONE = "Europe/Amsterdam"
FIRST_WINDOW_MS = int(datetime.fromisoformat("2024-03-01T00:00+01:00").timestamp() * 1000)
KEYS = 100
FULL = 4_320_000  # a 30-day month of 1-minute windows of 100 keys, as the issue counts it
SIZES = (FULL // 10, FULL)


def windows(tenant: str, count: int, keys: int = KEYS) -> Iterator[SimRecord]:
    """`count` alarm-rate windows of `keys` keys, a minute apart, each key once a minute (Avro records)."""
    topic, stations = KIND.source_topic(tenant), max(1, keys // 10)
    now = int(time.time() * 1000)
    for n in range(count):
        minute, key = divmod(n, keys)
        start = FIRST_WINDOW_MS + minute * 60_000
        station = f"S{key % stations}"
        events = 20 + n % 17
        fires = n % 5
        record = {"tenant": tenant, "station_id": station, "datapoint_id": f"D{key // stations}",
                  "window_start": start, "window_end": start + 60_000, "fires": fires, "events": events,
                  "rate": fires / events}
        yield SimRecord(tenant, topic, station.encode(), codec.encode(KIND.windows.schema, record), now, "on time")


def run_rollup_bench(cfg: StackConfig, sizes: Sequence[int] = SIZES, out: TextIO = sys.stdout,
                     keep_data: bool = False) -> dict:
    """Fill a results topic per size, run the day rollup over it, print and return the figures."""
    run_id = uuid.uuid4().hex[:6]
    bootstrap = cfg.kafka.bootstrap
    rows = []
    try:
        for i, size in enumerate(sizes):
            tenant = f"b{run_id}t{i}"
            ensure_topics(bootstrap, [KIND.source_topic(tenant)], cfg.kafka.partitions)
            out.write(f"rollup bench {run_id}: producing {size:,} windows of {KEYS} keys ({size // KEYS:,} minutes) "
                      f"into {KIND.source_topic(tenant)} ...\n")
            out.flush()
            produce(windows(tenant, size), bootstrap, size, progress=None)
            report = run_rollups([Rollup(KIND, tenant, DAY, ZONE)], cfg, RunSettings(bootstrap),
                                 keyspace=f"bench_{run_id}_rollup")
            row = {"windows": size, "keys": KEYS, "period": "day", "time_zone": ZONE,
                   "seconds": round(report.seconds, 1), "job_seconds": round(report.job_seconds, 1),
                   "windows_per_second": round(size / report.seconds), "rows": report.rows_written}
            rows.append(row)
            out.write(f"  {size:>9,} windows: {row['seconds']:6.1f} s end to end ({row['windows_per_second']:,} "
                      f"windows/s), Flink job {row['job_seconds']:.1f} s ({size / report.job_seconds:,.0f}/s), "
                      f"{row['rows']:,} day rows\n")
            out.flush()
    finally:
        if not keep_data:
            out.write(remove_run_data(cfg, run_id) + "\n")
            groups = delete_groups(bootstrap, lambda group: f"b{run_id}t" in group)
            principals = acl_principals(bootstrap, f"b{run_id}t")  # the rollups' own principals
            for principal in principals:
                delete_principal(bootstrap, principal)
            out.write(f"and its rollups' {len(groups)} consumer groups and {len(principals)} principals\n")
    report = {"run": run_id, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rollup": rows}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"rollup-{run_id}.json"
    path.write_text(json.dumps(report, indent=2))
    out.write(f"report: {path}\n")
    return report
