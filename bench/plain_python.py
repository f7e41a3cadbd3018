"""Baseline: the alarm-rate aggregate as one plain-Python loop over one confluent-kafka Consumer.

It shows what a single Python process achieves with no framework at all: decode
every record with the project's codec, count fires/events per key and 60 s
tumbling window in dicts, close windows behind a 5 s watermark, send results as
JSON with a plain Producer. Run from the project venv:

    python bench/plain_python.py --bootstrap 127.0.0.1:9092 --topics a.sensors.alarms,b.sensors.alarms \
        --expected 150000 --output-topic bench.results

It prints one JSON line: name, events consumed, seconds (first record received
until the last expected record was processed and every result flushed), results
emitted, version (null: no peer library). With no record for --idle-timeout
seconds it stops early, still prints the line, and exits 1.

The watermark is kept per topic partition (max event time seen there - 5 s), as
Flink and Quix Streams do: a topic's partitions are fetched in batches, so one
maximum over the whole topic would declare a lagging partition's records late.
Records are keyed by sensor, so every window key lives in one partition.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from connectors.kafka import client_settings
from schemas import codec

NO_THRESHOLD = 999999
EARLIEST_MS = 946_684_800_000  # 2000-01-01 UTC: earlier event times are invalid
MAX_AHEAD_MS = 24 * 3600 * 1000  # event times this far after the Kafka append time are invalid
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

Alarm = tuple[str, str, int, bool]  # station_id, datapoint_id, event time (ms), fired


def parse_alarm(data: bytes | None, tenant: str, kafka_ts: int) -> Alarm | None:
    """The fields the aggregate needs, or None for a record the job would reject (tests/oracle.py rules)."""
    try:
        e = codec.decode(data, "alarm_event.v2")
    except codec.DecodeError:
        return None
    station, datapoint = e["station_id"], e["datapoint_id"]
    event_ms = (e["event_time"] - _EPOCH) // _MS
    if (not station.strip() or not datapoint.strip() or event_ms < EARLIEST_MS
            or event_ms > kafka_ts + MAX_AHEAD_MS or (e["tenant"] and e["tenant"] != tenant)):
        return None
    threshold = e["valueThreshold"]
    return station, datapoint, event_ms, e["value"] > threshold and threshold != NO_THRESHOLD


def result_record(tenant: str, station: str, datapoint: str, start: int, end: int, fires: int,
                  events: int) -> dict:
    """The JSON value of one window result; both baselines write this shape."""
    return {"tenant": tenant, "station_id": station, "datapoint_id": datapoint, "window_start": start,
            "window_end": end, "fires": fires, "events": events, "rate": fires / events}


def arguments(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The command line both baselines share."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    p.add_argument("--topics", required=True, help="comma-separated input topics, one per tenant (<tenant>.…)")
    p.add_argument("--expected", type=int, required=True, help="stop after consuming this many records")
    p.add_argument("--output-topic", required=True, help="topic for the window results (JSON)")
    p.add_argument("--group", help="Kafka consumer group (default: a new one); its assignment shows the run is ready")
    p.add_argument("--window-ms", type=int, default=60_000, help="tumbling window size")
    p.add_argument("--grace-ms", type=int, default=5_000, help="watermark out-of-orderness")
    p.add_argument("--idle-timeout", type=float, default=60.0,
                   help="give up after this many seconds without a record (then exit status 1)")
    args = p.parse_args(argv)
    args.topics = [t for t in args.topics.split(",") if t]
    return args


class Windows:
    """Open windows of one topic partition: start -> (station, datapoint) -> [fires, events]."""

    def __init__(self, tenant: str, window_ms: int, grace_ms: int) -> None:
        self.tenant, self.window_ms, self.grace_ms = tenant, window_ms, grace_ms
        self.open: dict[int, dict[tuple[str, str], list[int]]] = {}
        self.watermark = -(2**63)
        self.late = 0

    def add(self, alarm: Alarm) -> list[dict]:
        """Count `alarm` in its window (unless that window closed already); return the windows it closes."""
        station, datapoint, ts, fired = alarm
        start = ts - ts % self.window_ms
        if start + self.window_ms <= self.watermark:
            self.late += 1
        else:
            counts = self.open.setdefault(start, {}).setdefault((station, datapoint), [0, 0])
            counts[0] += fired
            counts[1] += 1
        if ts - self.grace_ms > self.watermark:
            self.watermark = ts - self.grace_ms
            if min(self.open, default=self.watermark) + self.window_ms <= self.watermark:
                return self.close(self.watermark)
        return []

    def close(self, watermark: float) -> list[dict]:
        """Results of the windows whose end <= `watermark`, removed from the open ones."""
        results = []
        for start in sorted(s for s in self.open if s + self.window_ms <= watermark):
            for (station, datapoint), (fires, events) in self.open.pop(start).items():
                results.append(result_record(self.tenant, station, datapoint, start, start + self.window_ms,
                                             fires, events))
        return results


def run(args: argparse.Namespace) -> dict:
    """Consume until `args.expected` records arrived, emit closed windows as they close, then the rest."""
    from confluent_kafka import Consumer, KafkaException, Producer

    group = args.group or f"bench-plain-{uuid.uuid4().hex[:12]}"
    consumer = Consumer(client_settings(args.bootstrap, **{"group.id": group, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed", "enable.auto.commit": False}))
    producer = Producer(client_settings(args.bootstrap, **{"enable.idempotence": True, "linger.ms": 20}))
    failures: list[str] = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            failures.append(str(err))

    def emit(results: list[dict]) -> None:
        for r in results:
            key = f"{r['station_id']}/{r['datapoint_id']}"
            while True:
                try:
                    producer.produce(args.output_topic, key=key, value=json.dumps(r), on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.1)

    partitions: dict[tuple[str, int], Windows] = {}
    consumed = emitted = 0
    first: float | None = None
    last = time.perf_counter()
    consumer.subscribe(args.topics)
    try:
        while consumed < args.expected and time.perf_counter() - last < args.idle_timeout:
            msgs = consumer.consume(min(1000, args.expected - consumed), timeout=1.0)
            if msgs:
                last = time.perf_counter()
            for msg in msgs:
                if msg.error():
                    raise KafkaException(msg.error())
                if first is None:
                    first = time.perf_counter()
                consumed += 1
                topic, partition = msg.topic(), msg.partition()
                windows = partitions.get((topic, partition))
                if windows is None:
                    windows = Windows(topic.split(".")[0], args.window_ms, args.grace_ms)
                    partitions[(topic, partition)] = windows
                alarm = parse_alarm(msg.value(), windows.tenant, msg.timestamp()[1])
                if alarm is not None:
                    closed = windows.add(alarm)
                    emit(closed)
                    emitted += len(closed)
            producer.poll(0)
        for windows in partitions.values():
            rest = windows.close(float("inf"))
            emit(rest)
            emitted += len(rest)
        if producer.flush(60) or failures:
            raise RuntimeError(f"results not delivered: {failures[:1] or 'flush timed out'}")
        seconds = time.perf_counter() - (first or time.perf_counter())
    finally:
        consumer.close()
    late = sum(w.late for w in partitions.values())
    if late:
        print(f"plain-python: {late} records behind the watermark were not counted", file=sys.stderr)
    return {"name": "plain-python", "events": consumed, "seconds": round(seconds, 3), "results": emitted,
            "version": None}


def baseline_main(doc: str, run_baseline: Callable[[argparse.Namespace], dict], argv: list[str] | None = None) -> int:
    """Parse the shared command line, run, print the JSON report; exit 1 if records were missing."""
    args = arguments(doc.splitlines()[0], argv)
    report = run_baseline(args)
    print(json.dumps(report), flush=True)
    return 0 if report["events"] >= args.expected else 1


def main(argv: list[str] | None = None) -> int:
    return baseline_main(__doc__, run, argv)


if __name__ == "__main__":
    sys.exit(main())
