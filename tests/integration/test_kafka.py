"""The stack's Kafka broker: transactions and consumer groups behave as exactly-once needs."""

from __future__ import annotations

from confluent_kafka import Producer, TopicPartition

from connectors.kafka import (
    admin_client,
    client_settings,
    delete_groups,
    delete_topics,
    ensure_topics,
    group_consumer,
    read_all,
)


def test_read_committed_consumer_sees_committed_records_and_never_aborted_ones(stack, unique):
    topic = f"test.txn.{unique}"
    ensure_topics(stack.kafka.bootstrap, [topic])
    producer = Producer(client_settings(stack.kafka.bootstrap, **{"transactional.id": f"txn-{unique}"}))
    producer.init_transactions(10)
    for batch, outcome in (("a", "commit"), ("b", "abort"), ("c", "commit")):
        producer.begin_transaction()
        for i in range(50):
            producer.produce(topic, key=f"k{i % 7}", value=f"{batch}{i}")
        producer.flush()
        if outcome == "commit":
            producer.commit_transaction()
        else:
            producer.abort_transaction()

    values = sorted(m.value().decode() for m in read_all(stack.kafka.bootstrap, [topic], f"g-{unique}",
                                                          expect=100))
    assert values == sorted([f"a{i}" for i in range(50)] + [f"c{i}" for i in range(50)])


def test_subscribed_consumer_group_receives_every_record_of_every_partition(stack, unique):
    topic = f"test.group.{unique}"
    ensure_topics(stack.kafka.bootstrap, [topic], partitions=3)
    producer = Producer(client_settings(stack.kafka.bootstrap))
    sent = {f"v{i}" for i in range(300)}
    for i, value in enumerate(sorted(sent)):
        producer.produce(topic, key=f"sensor-{i % 11}", value=value)
    producer.flush()

    received = read_all(stack.kafka.bootstrap, [topic], f"group-{unique}", expect=len(sent))
    assert {m.value().decode() for m in received} == sent
    assert len(received) == len(sent)
    assert {m.partition() for m in received} == {0, 1, 2}


def test_delete_topics_and_groups_take_exactly_the_accepted_ones(stack, unique):
    bootstrap = stack.kafka.bootstrap
    doomed, kept = [f"del-{unique}.a", f"del-{unique}.b"], f"keep-{unique}"
    ensure_topics(bootstrap, [*doomed, kept])
    for group in (f"del-{unique}-g", f"keep-{unique}-g"):
        consumer = group_consumer(bootstrap, group)
        consumer.commit(offsets=[TopicPartition(kept, 0, 0)], asynchronous=False)
        consumer.close()

    assert delete_topics(bootstrap, lambda t: t.startswith(f"del-{unique}")) == doomed
    assert delete_groups(bootstrap, lambda g: g.startswith(f"del-{unique}")) == [f"del-{unique}-g"]

    admin = admin_client(bootstrap)
    topics = admin.list_topics(timeout=10).topics
    assert kept in topics and not set(doomed) & set(topics)
    groups = {g.group_id for g in admin.list_consumer_groups(request_timeout=10).result().valid}
    assert f"keep-{unique}-g" in groups and f"del-{unique}-g" not in groups
    assert delete_topics(bootstrap, lambda t: t.startswith(f"del-{unique}")) == []  # nothing left to take
    delete_groups(bootstrap, lambda g: g == f"keep-{unique}-g")
