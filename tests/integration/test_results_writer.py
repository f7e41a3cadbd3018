"""The results writer on the real Kafka and Cassandra: it copies committed results only, and `drain` waits for
what a transaction still open holds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer

from connectors.cassandra import connect
from connectors.kafka import client_settings, ensure_topics
from connectors.results import ResultsWriter
from jobs.alarm_rate import ALARM_RATE_TABLE
from schemas import codec

T0 = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


def result(tenant: str, station: str, minute: int) -> bytes:
    return codec.encode("alarm_rate_result.v1", {
        "tenant": tenant, "station_id": station, "datapoint_id": "dp", "window_start": T0 + timedelta(minutes=minute),
        "window_end": T0 + timedelta(minutes=minute + 1), "fires": minute, "events": 10, "rate": minute / 10})


def stored(port: int, keyspace: str) -> set[tuple[str, str, int]]:
    cluster, session = connect(port)
    try:
        return {(r.tenant, r.station_id, r.fires)
                for r in session.execute(f"SELECT tenant, station_id, fires FROM {keyspace}.alarm_rate")}
    finally:
        cluster.shutdown()


def test_drain_waits_for_an_open_transaction_and_the_writer_copies_only_what_was_committed(stack, unique):
    tenants = [f"w{unique}a", f"w{unique}b"]
    topics = [f"{t}.results.alarm_rate" for t in tenants]
    ensure_topics(stack.kafka.bootstrap, topics, partitions=2)
    keyspace = f"test_{unique}"
    producer = Producer(client_settings(stack.kafka.bootstrap, **{"transactional.id": f"test-{unique}"}))
    producer.init_transactions(10)

    def transaction(rows: list[tuple[str, str, int]]) -> None:
        producer.begin_transaction()
        for tenant, station, minute in rows:
            producer.produce(f"{tenant}.results.alarm_rate", result(tenant, station, minute), key=station.encode())

    transaction([(tenants[0], "s1", 1), (tenants[1], "s1", 2)])
    producer.commit_transaction(10)
    transaction([(tenants[0], "s2", 3)])
    producer.abort_transaction(10)

    writer = ResultsWriter(stack.kafka.bootstrap, stack.cassandra.port, ALARM_RATE_TABLE, topics,
                           group=f"test-{unique}.cassandra", keyspace=keyspace)
    following = threading.Thread(target=writer.run, daemon=True)
    following.start()
    try:
        writer.drain(timeout=60)
        assert stored(stack.cassandra.port, keyspace) == {(tenants[0], "s1", 1), (tenants[1], "s1", 2)}

        transaction([(tenants[1], "s3", 4), (tenants[0], "s3", 5)])
        producer.flush(10)  # appended, not committed: the writer must not see it, and a drain must wait for it
        with pytest.raises(TimeoutError, match="did not catch up"):
            writer.drain(timeout=3)
        assert stored(stack.cassandra.port, keyspace) == {(tenants[0], "s1", 1), (tenants[1], "s1", 2)}

        producer.commit_transaction(10)
        writer.drain(timeout=60)
        assert stored(stack.cassandra.port, keyspace) == {(tenants[0], "s1", 1), (tenants[1], "s1", 2),
                                                          (tenants[1], "s3", 4), (tenants[0], "s3", 5)}
        assert writer.written == 4 and writer.rejected == 0
    finally:
        writer.stop()
        following.join(timeout=30)
