"""Baseline: the alarm-rate aggregate as a Quix Streams application, the Python stream processor peers pick.

Same work as the Flink job: decode with the project's codec, skip invalid
records, event time from `event_time`, 60 s tumbling windows with 5 s grace
closed per partition (Flink's per-partition watermark), `.final()` results as
JSON to a Kafka topic under exactly-once. Quix Streams pins its own
confluent-kafka range, so it runs from its own venv (bench/quix_env.py):

    PYTHONPATH=/work/main $(quix python) bench/quix_baseline.py --bootstrap 127.0.0.1:9092 \
        --topics a.sensors.alarms,b.sensors.alarms --expected 150000 --output-topic bench.results

It stops itself once `--expected` records were processed (`on_message_processed`
calls `Application.stop()`); `run()` then commits its last checkpoint, which
flushes the producer and commits the Kafka transaction holding the results.
Windows still open at that point are not emitted (that is what `.final()`
means). Prints one JSON line: name, events, seconds (first record received
until that commit returned), results, version. With no record for
--idle-timeout seconds (`run(timeout=...)`) it stops early, still prints the
line, and exits 1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.plain_python import baseline_main
from connectors.kafka import client_settings
from schemas import codec

NO_THRESHOLD = 999999
EARLIEST_MS = 946_684_800_000  # 2000-01-01 UTC: earlier event times are invalid
MAX_AHEAD_MS = 24 * 3600 * 1000  # event times this far after the Kafka append time are invalid
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def parse_alarm(data: bytes | None, tenant: str, kafka_ts: int) -> dict | None:
    """Event time and whether the alarm fired, or None for a record the job would reject (tests/oracle.py)."""
    try:
        e = codec.decode(data, "alarm_event.v2")
    except codec.DecodeError:
        return None
    event_ms = (e["event_time"] - _EPOCH) // _MS
    if (not e["station_id"].strip() or not e["datapoint_id"].strip() or event_ms < EARLIEST_MS
            or event_ms > kafka_ts + MAX_AHEAD_MS or (e["tenant"] and e["tenant"] != tenant)):
        return None
    threshold = e["valueThreshold"]
    return {"ts": event_ms, "fire": int(e["value"] > threshold and threshold != NO_THRESHOLD)}


def run(args: argparse.Namespace) -> dict:
    """Build the application, run it until `args.expected` records were processed, and measure it."""
    import quixstreams
    from quixstreams import Application
    from quixstreams.dataframe.windows import Count, Sum

    group = args.group or f"bench-quix-{uuid.uuid4().hex[:12]}"
    state_dir = tempfile.mkdtemp(prefix="quix-state-")
    progress = {"consumed": 0, "results": 0, "first": None}

    def on_processed(_topic: str, _partition: int, _offset: int) -> None:
        progress["consumed"] += 1
        if progress["consumed"] >= args.expected:
            app.stop()

    from quixstreams.kafka.configuration import ConnectionConfig

    # The same login as every other bench client: the operator's admin from the credentials file.
    broker = ConnectionConfig.from_librdkafka_dict(client_settings(args.bootstrap), ignore_extras=True)
    app = Application(broker_address=broker, consumer_group=group, auto_offset_reset="earliest",
                      processing_guarantee="exactly-once", state_dir=state_dir, loglevel="WARNING",
                      on_message_processed=on_processed)
    output = app.topic(args.output_topic, key_serializer="str", value_serializer="json")

    def decode(value: bytes, _key: str, kafka_ts: int, _headers: object, tenant: str) -> dict | None:
        if progress["first"] is None:
            progress["first"] = time.perf_counter()
        return parse_alarm(value, tenant, kafka_ts)

    def result(window: dict, key: str, _ts: int, _headers: object, tenant: str) -> dict:
        progress["results"] += 1
        station, datapoint = key.split("/", 1)
        fires, events = window["fires"], window["events"]
        return {"tenant": tenant, "station_id": station, "datapoint_id": datapoint, "window_start": window["start"],
                "window_end": window["end"], "fires": fires, "events": events, "rate": fires / events}

    for name in args.topics:
        tenant = name.split(".")[0]
        sdf = app.dataframe(app.topic(name, key_deserializer="str", value_deserializer="bytes"))
        sdf = sdf.apply(lambda v, k, ts, h, t=tenant: decode(v, k, ts, h, t), metadata=True)
        sdf = sdf.filter(lambda alarm: alarm is not None)
        sdf = sdf.set_timestamp(lambda alarm, _k, _ts, _h: alarm["ts"])
        sdf = (sdf.tumbling_window(args.window_ms, grace_ms=args.grace_ms)
               .agg(fires=Sum("fire"), events=Count())
               .final(closing_strategy="partition"))
        sdf = sdf.apply(lambda w, k, ts, h, t=tenant: result(w, k, ts, h, t), metadata=True)
        sdf.to_topic(output)

    try:
        app.run(timeout=args.idle_timeout, collect=False)  # the timeout only guards against too few records
        seconds = time.perf_counter() - (progress["first"] or time.perf_counter())
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
        _delete_internal_topics(args.bootstrap, group)
    return {"name": "quixstreams", "events": progress["consumed"], "seconds": round(seconds, 3),
            "results": progress["results"], "version": quixstreams.__version__}


def _delete_internal_topics(bootstrap: str, group: str) -> None:
    """Quix made changelog topics named after the run's unique group; leave no litter on the broker."""
    from connectors.kafka import delete_topics

    try:
        delete_topics(bootstrap, lambda topic: f"__{group}--" in topic)
    except Exception as err:  # housekeeping only: never spoil the measurement
        print(f"quix baseline: could not delete the changelog topics of {group}: {err}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    return baseline_main(__doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
