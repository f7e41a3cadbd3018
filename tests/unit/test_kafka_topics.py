"""ensure_topics returns only once a new topic's partitions answer: a leader the metadata names refuses an
offset look-up for a moment after it is listed (40-80 ms on the local stack; a bench run failed on
NOT_LEADER_FOR_PARTITION)."""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from confluent_kafka import KafkaError, KafkaException

import connectors.kafka as kafka


class _Admin:
    """An admin client whose offset look-ups of a partition fail with its `errors` (in turn) before they answer."""

    def __init__(self, errors: dict[tuple[str, int], list[int]]) -> None:
        self.errors, self.rounds = {k: list(v) for k, v in errors.items()}, []

    def list_offsets(self, wanted: dict, request_timeout: float) -> dict:
        self.rounds.append(sorted((tp.topic, tp.partition) for tp in wanted))
        futures = {}
        for tp in wanted:
            future, pending = Future(), self.errors.get((tp.topic, tp.partition))
            if pending:
                future.set_exception(KafkaException(KafkaError(pending.pop(0))))
            else:
                future.set_result(0)
            futures[tp] = future
        return futures


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(kafka.time, "sleep", lambda seconds: None)


def test_partitions_not_served_yet_are_asked_again_until_they_answer():
    admin = _Admin({("acme.sensors.alarms", 0): [KafkaError.NOT_LEADER_FOR_PARTITION,
                                                 KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_LEADER_EPOCH]})
    kafka._await_served(admin, "b:9092", {"acme.sensors.alarms": 2}, deadline=kafka.time.monotonic() + 60)
    assert admin.rounds == [[("acme.sensors.alarms", 0), ("acme.sensors.alarms", 1)],
                            *[[("acme.sensors.alarms", 0)]] * 3]


def test_another_error_or_the_deadline_ends_in_one_line():
    admin = _Admin({("acme.late", 0): [KafkaError.TOPIC_AUTHORIZATION_FAILED]})
    with pytest.raises(RuntimeError, match=r"^topic acme.late partition 0 was created but its leader at b:9092 "
                                           r"does not answer: .*\Z"):
        kafka._await_served(admin, "b:9092", {"acme.late": 1}, deadline=kafka.time.monotonic() + 60)
    admin = _Admin({("acme.late", 0): [KafkaError.NOT_LEADER_FOR_PARTITION]})
    with pytest.raises(RuntimeError, match="does not answer"):
        kafka._await_served(admin, "b:9092", {"acme.late": 1}, deadline=kafka.time.monotonic() - 1)
