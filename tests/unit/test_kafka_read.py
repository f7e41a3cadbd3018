"""connectors.kafka.read_arrived: the first record as soon as it comes, then only what has already come."""

from __future__ import annotations

from connectors.kafka import read_arrived


class _Consumer:
    """Stands in for a confluent_kafka Consumer: records to hand out, and the timeouts it was asked with."""

    def __init__(self, records: list[str]) -> None:
        self.records, self.asked = records, []

    def poll(self, timeout: float) -> str | None:
        self.asked.append(("poll", timeout))
        return self.records.pop(0) if self.records else None

    def consume(self, n: int, timeout: float) -> list[str]:
        self.asked.append(("consume", timeout))
        taken, self.records = self.records[:n], self.records[n:]
        return taken


def test_the_first_record_then_what_came_with_it_without_waiting_again():
    consumer = _Consumer(["a", "b", "c"])
    assert read_arrived(consumer, 0.1) == ["a", "b", "c"]
    assert consumer.asked == [("poll", 0.1), ("consume", 0)]


def test_nothing_came_within_the_timeout():
    consumer = _Consumer([])
    assert read_arrived(consumer, 0.1) == []
    assert consumer.asked == [("poll", 0.1)]
