"""ensure_topics returns only once a new topic's partitions answer: a leader the metadata names can refuse an
offset look-up until its broker has loaded the partition (a bench run failed on NOT_LEADER_FOR_PARTITION)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException

import connectors.kafka as kafka


class _Consumer:
    """A consumer whose offset look-ups fail with `errors` (in turn) before they answer."""

    def __init__(self, errors: list[int]) -> None:
        self.errors, self.asked, self.closed = list(errors), [], False

    def get_watermark_offsets(self, partition, timeout: float) -> tuple[int, int]:
        self.asked.append((partition.topic, partition.partition))
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0)))
        return 0, 0

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def consumer_with(monkeypatch):
    def make(errors: list[int]) -> _Consumer:
        consumer = _Consumer(errors)
        monkeypatch.setattr(kafka, "Consumer", lambda settings: consumer)
        monkeypatch.setattr(kafka, "client_settings", lambda bootstrap, **settings: settings)
        monkeypatch.setattr(kafka.time, "sleep", lambda seconds: None)
        return consumer
    return make


def test_a_partition_not_served_yet_is_asked_again_until_it_answers(consumer_with):
    consumer = consumer_with([KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE])
    kafka._await_served("b:9092", {"acme.sensors.alarms": 2}, deadline=kafka.time.monotonic() + 60)
    assert consumer.asked == [("acme.sensors.alarms", 0)] * 3 + [("acme.sensors.alarms", 1)]
    assert consumer.closed


def test_another_error_or_the_deadline_ends_in_one_line(consumer_with):
    consumer_with([KafkaError.TOPIC_AUTHORIZATION_FAILED])
    with pytest.raises(RuntimeError, match=r"^topic acme.late partition 0 was created but its leader at b:9092 "
                                           r"does not answer: .*\Z"):
        kafka._await_served("b:9092", {"acme.late": 1}, deadline=kafka.time.monotonic() + 60)
    consumer_with([KafkaError.NOT_LEADER_FOR_PARTITION])
    with pytest.raises(RuntimeError, match="does not answer"):
        kafka._await_served("b:9092", {"acme.late": 1}, deadline=kafka.time.monotonic() - 1)
