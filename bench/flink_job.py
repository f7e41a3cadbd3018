"""Subprocess entry: run the alarm-rate job or the hand-written SQL baseline once, bounded by the
offsets latest at start, and print a JSON report (events, seconds from RUNNING to done)."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.handwritten import handwritten_alarm_rate
from connectors.flink import CheckpointSettings, streaming_table_env
from jobs.alarm_rate import ALARM_RATE_TABLE, alarm_rate_job
from jobs.pipeline import RunSettings
from stack.config import load_config
from submit.local import pending_records, run_job, when_running


def run_alarm_rate_job(tenants: list[str], parallelism: int, group: str, keyspace: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-ck-") as checkpoints:
        report = run_job(alarm_rate_job(tenants), ALARM_RATE_TABLE, load_config(),
                         RunSettings(load_config().kafka.bootstrap, group_id=group, stop_at="latest"),
                         Path(checkpoints), parallelism=parallelism, keyspace=keyspace)
    return {"events": report.events, "seconds": report.running_seconds, "total_seconds": report.seconds,
            "job_seconds": report.job_seconds, "results": report.results_written}


def run_handwritten(tenants: list[str], parallelism: int, group: str, results_topic: str) -> dict:
    bootstrap = load_config().kafka.bootstrap
    events = pending_records(bootstrap, [f"{t}.sensors.alarms" for t in tenants], group)
    with tempfile.TemporaryDirectory(prefix="bench-ck-") as checkpoints:
        env = streaming_table_env(CheckpointSettings(Path(checkpoints)), parallelism=parallelism)
        *ddl, insert = handwritten_alarm_rate(tenants, bootstrap, results_topic, group)
        for statement in ddl:
            env.execute_sql(statement)
        started = time.monotonic()
        result = env.execute_sql(insert)
        running = when_running(result.get_job_client())
        result.wait()
        ended = time.monotonic()
    return {"events": events, "seconds": ended - (running[0] if running else started), "total_seconds": ended - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["job", "handwritten"])
    parser.add_argument("--tenants", required=True, help="comma-separated")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--group", required=True, help="Kafka consumer group (new per run)")
    parser.add_argument("--keyspace", default="tenantstream_bench")
    parser.add_argument("--results-topic", default="bench.results.handwritten")
    args = parser.parse_args()
    tenants = args.tenants.split(",")
    if args.kind == "job":
        report = run_alarm_rate_job(tenants, args.parallelism, args.group, args.keyspace)
    else:
        report = run_handwritten(tenants, args.parallelism, args.group, args.results_topic)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
