"""Baseline (a), the ceiling: how fast one confluent-kafka consumer drains the topics, doing nothing else."""

from __future__ import annotations

import argparse
import json
import time
import uuid

from confluent_kafka import Consumer

from connectors.kafka import client_settings


def drain(bootstrap: str, topics: list[str], expected: int, group: str | None = None) -> dict:
    consumer = Consumer(client_settings(bootstrap, **{"group.id": group or f"bench-drain-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "enable.auto.commit": False, "fetch.max.bytes": 52_428_800}))
    consumer.subscribe(topics)
    seen, started = 0, None
    try:
        while seen < expected:
            batch = consumer.consume(10_000, timeout=1.0)
            if batch and started is None:
                started = time.monotonic()
            seen += sum(1 for m in batch if not m.error())
    finally:
        consumer.close()
    return {"events": seen, "seconds": time.monotonic() - (started or time.monotonic())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--topics", required=True, help="comma-separated")
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--group", help="Kafka consumer group (default: a new one)")
    args = parser.parse_args()
    print(json.dumps(drain(args.bootstrap, args.topics.split(","), args.expected, args.group)))


if __name__ == "__main__":
    main()
