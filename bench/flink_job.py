"""Subprocess entry: run the alarm-rate job, the flow-aggregates job or the hand-written SQL baseline and
print a JSON report.

Either way it prints `ready` once Flink reports the job RUNNING (the bench counts CPU from there).
Bounded (the default): read the offsets latest at start, report events and seconds from RUNNING
to done. `--live`: run unbounded on the topics as they fill, and on Ctrl-C (SIGINT) cancel the job
(the alarm-rate job's results writer still copies what it committed) and report.
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import time
from pathlib import Path

from confluent_kafka import TopicPartition

from bench.handwritten import handwritten_alarm_rate
from bench.measure import READY
from connectors.flink import CheckpointSettings, streaming_table_env
from connectors.kafka import group_consumer
from jobs.alarm_rate import ALARM_RATE_TABLE, alarm_rate_job
from jobs.alarm_rate import DEFAULT_WINDOW as ALARM_RATE_WINDOW
from jobs.flow_aggregates import DEFAULT_WINDOW as FLOW_WINDOW
from jobs.flow_aggregates import FLOW_TABLE, flow_aggregates_job
from operators.flow import metadata_from_assets
from operators.windows import tumbling
from pipeline.execute import execute_sql
from pipeline.job import DEFAULT_MAX_BEHIND_S, Job, ResultTable, RunSettings
from stack.config import load_config
from submit.local import pending_records, results_topics, run_job, wait_interruptibly, when_running, writer_group
from submit.simulate import flow_topology


def stop_on_sigint() -> None:
    """Raise KeyboardInterrupt on SIGINT, which is how the bench stops a live run. A process started in the
    background by a shell without job control (`nohup tenantstream bench &`) inherits SIGINT ignored, and
    Python then installs no handler: the run never stopped, and the bench waited out its timeout (seen in
    bench cda6fe)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _announce_ready() -> None:
    print(READY, flush=True)


def tenantstream_job(kind: str, tenants: list[str], window_s: int | None = None) -> tuple[Job, ResultTable]:
    """The job of `kind` ("job": alarm rate, "flow": flow aggregates with the simulated plant's sensors and
    limits, planned) and its result table; windows of `window_s` seconds, or the job's own default."""
    window = tumbling(seconds=window_s) if window_s else None
    if kind == "flow":
        metadata = metadata_from_assets(flow_topology(tenants), tenants)
        return flow_aggregates_job(tenants, metadata, window or FLOW_WINDOW), FLOW_TABLE
    return alarm_rate_job(tenants, window or ALARM_RATE_WINDOW), ALARM_RATE_TABLE


def run_tenantstream_job(kind: str, tenants: list[str], parallelism: int, group: str, keyspace: str,
                         window_s: int | None = None, live: bool = False,
                         max_behind_s: int = DEFAULT_MAX_BEHIND_S) -> dict:
    """Run the job of `kind` end to end: Flink on the mini-cluster, its results writer into Cassandra."""
    job, table = tenantstream_job(kind, tenants, window_s)
    cfg = load_config()
    if not live:
        skip_earlier_results(cfg.kafka.bootstrap, results_topics(job, table), writer_group(group))
    with tempfile.TemporaryDirectory(prefix="bench-ck-") as checkpoints:
        report = run_job(job, table, cfg,
                         RunSettings(cfg.kafka.bootstrap, group_id=group, stop_at="" if live else "latest",
                                     max_behind_s=max_behind_s),
                         Path(checkpoints), parallelism=parallelism, keyspace=keyspace,
                         on_running=_announce_ready)
    timing = {"seconds": report.running_seconds, "total_seconds": report.seconds, "job_seconds": report.job_seconds,
              "results": report.results_written}
    return timing if live else {"events": report.events, **timing}  # live: nothing was pending at the start


def skip_earlier_results(bootstrap: str, topics: list[str], group: str) -> None:
    """Commit `group`'s offsets at the end of `topics`, so that a results writer of that group copies only
    what comes next. The bench's runs of one job share its tenants' results topics: without this, the p2
    run's writer also copied the p1 run's results (twice the rows written, bench 2c773c)."""
    consumer = group_consumer(bootstrap, group, **{"enable.auto.commit": False})
    try:
        listed = consumer.list_topics(timeout=10).topics
        ends = [TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                for topic in topics if topic in listed for p in listed[topic].partitions]
        if ends:
            consumer.commit(offsets=ends, asynchronous=False)
    finally:
        consumer.close()


def run_handwritten(tenants: list[str], parallelism: int, group: str, results_topic: str, window_s: int = 60,
                    live: bool = False) -> dict:
    bootstrap = load_config().kafka.bootstrap
    events = None if live else pending_records(bootstrap, [f"{t}.sensors.alarms" for t in tenants], group)
    with tempfile.TemporaryDirectory(prefix="bench-ck-") as checkpoints:
        env = streaming_table_env(CheckpointSettings(Path(checkpoints)), parallelism=parallelism)
        *ddl, insert = handwritten_alarm_rate(tenants, bootstrap, results_topic, group, window_s=window_s,
                                              stop_at="" if live else "latest")
        for statement in ddl:
            execute_sql(env, statement)
        started = time.monotonic()
        result = execute_sql(env, insert)
        running = when_running(result.get_job_client(), _announce_ready)
        try:
            wait_interruptibly(result)
        except KeyboardInterrupt:
            result.get_job_client().cancel().result()
        ended = time.monotonic()
    timing = {"seconds": ended - (running[0] if running else started), "total_seconds": ended - started}
    return timing if live else {"events": events, **timing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["job", "flow", "handwritten"],
                        help="job: the alarm-rate job, flow: the flow-aggregates job, handwritten: the SQL baseline")
    parser.add_argument("--tenants", required=True, help="comma-separated")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--group", required=True, help="Kafka consumer group (new per run)")
    parser.add_argument("--keyspace", default="tenantstream_bench")
    parser.add_argument("--results-topic", default="bench.results.handwritten")
    parser.add_argument("--window-s", type=int, help="tumbling window in seconds (default: the job's own, 60 for "
                        "the alarm rate and the hand-written baseline, 900 for flow)")
    parser.add_argument("--live", action="store_true",
                        help="run unbounded, stop on SIGINT (Ctrl-C)")
    parser.add_argument("--max-behind", type=int, default=DEFAULT_MAX_BEHIND_S,
                        help="seconds an event time may be behind its append time (a replayed history: its length)")
    args = parser.parse_args()
    if args.live:
        stop_on_sigint()
    tenants = args.tenants.split(",")
    if args.kind == "handwritten":
        report = run_handwritten(tenants, args.parallelism, args.group, args.results_topic, args.window_s or 60,
                                 args.live)
    else:
        report = run_tenantstream_job(args.kind, tenants, args.parallelism, args.group, args.keyspace, args.window_s,
                                      args.live, args.max_behind)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
