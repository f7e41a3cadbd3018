"""Kafka topics, clients and Flink SQL table definitions for the per-tenant topics.

Every client authenticates as a login from configuration (connectors.credentials): the operator's
admin unless a caller names another, such as a job's own principal (connectors.kafka_access).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
    TopicMetadata,
)

from connectors import credentials
from pipeline.sql import Login


def client_settings(bootstrap: str, login: Login | None = None, **settings: object) -> dict[str, object]:
    """Settings of a confluent-kafka client of `bootstrap` that logs in as `login` (default: the admin)."""
    login = login or credentials.current().kafka_admin
    return {"bootstrap.servers": bootstrap, **credentials.kafka_client_settings(login), **settings}


def admin_client(bootstrap: str, login: Login | None = None, **settings: object) -> AdminClient:
    return AdminClient(client_settings(bootstrap, login, **settings))


# The broker stamps each record of a sensor topic with its append time, whatever the producer says, so a tenant
# cannot fake it: the bound on how far behind it an event time may be (pipeline.plan.source_ddl) rests on it.
APPEND_TIME = "LogAppendTime"


def is_sensor_topic(topic: str) -> bool:
    return ".sensors." in topic


def topic_config(topic: str) -> dict[str, str]:
    """The settings a topic of ours gets: sensor topics broker-set append times; results topics no time limit
    (retention.ms=-1), since rollups (jobs/rollup.py) read a results topic's whole history."""
    if is_sensor_topic(topic):
        return {"message.timestamp.type": APPEND_TIME}
    return {"retention.ms": "-1"} if ".results." in topic else {}


def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int = 2, timeout: float = 60.0) -> None:
    """Create the topics that do not exist yet (replicated as the brokers' `default.replication.factor` says: 1 on
    the single-node stack, 3 on the multi-node one), and return once the broker lists them with their partitions,
    each with a leader that answers an offset look-up. (A broker that has just started can take seconds to load
    its partitions after it created a topic: until then a reader would not see the new one.) Sensor topics, new
    or not (the broker creates a topic a producer names), get broker-set append times, and results topics no
    time limit (topic_config)."""
    admin = admin_client(bootstrap)
    topics = list(topics)
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [NewTopic(t, partitions, -1, config=topic_config(t)) for t in topics if t not in existing]
    _configure(admin, [t for t in topics if t in existing and topic_config(t)])
    for topic, future in admin.create_topics(wanted).items() if wanted else ():
        try:
            future.result()
        except KafkaException as err:
            if "TOPIC_ALREADY_EXISTS" not in str(err):
                raise RuntimeError(f"could not create topic {topic}: {err}") from err
    deadline = time.monotonic() + timeout
    created = [t.topic for t in wanted]
    while wanted:
        listed = admin.list_topics(timeout=10).topics
        wanted = [t for t in wanted if not _led(listed.get(t.topic))]
        if wanted and time.monotonic() > deadline:
            raise RuntimeError(f"topics {', '.join(t.topic for t in wanted)} were created but the broker at "
                               f"{bootstrap} does not list them with a leader for each partition after {timeout:g} s")
        time.sleep(0.2 if wanted else 0)
    if created:
        _await_served(admin, bootstrap, {t: len(listed[t].partitions) for t in created}, deadline)


# What a partition's new leader answers while it takes the partition on (UNKNOWN_LEADER_EPOCH: "Leader epoch is
# newer than broker epoch", seen in CI right after the topic was listed).
_NOT_SERVED_YET = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                   KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION, KafkaError.UNKNOWN_LEADER_EPOCH,
                   KafkaError.FENCED_LEADER_EPOCH, KafkaError.REPLICA_NOT_AVAILABLE, KafkaError.OFFSET_NOT_AVAILABLE}


def _await_served(admin: AdminClient, bootstrap: str, partitions: dict[str, int], deadline: float) -> None:
    """Return once every partition of `partitions` (topic: count) answers an offset look-up: a leader the
    metadata names can refuse one (NOT_LEADER_OR_FOLLOWER) until its broker has loaded the partition (a bench run
    failed so when it asked for a new topic's offsets right after ensure_topics). Asked through the admin client,
    all the partitions still refusing in one round."""
    waiting = [TopicPartition(topic, p) for topic, count in partitions.items() for p in range(count)]
    while waiting:
        futures = admin.list_offsets({tp: OffsetSpec.latest() for tp in waiting}, request_timeout=10)
        refused = []
        for tp, future in futures.items():
            try:
                future.result()
            except KafkaException as err:
                transient = err.args[0].code() in _NOT_SERVED_YET or err.args[0].retriable()
                if not transient or time.monotonic() > deadline:
                    raise RuntimeError(f"topic {tp.topic} partition {tp.partition} was created but its leader at "
                                       f"{bootstrap} does not answer: {err.args[0].str()}") from err
                refused.append(tp)
        waiting = refused
        time.sleep(0.02 if waiting else 0)  # refused for 40-80 ms after it is listed, on the local stack


def _led(topic: TopicMetadata | None) -> bool:
    """Whether a listed topic has its partitions, each with a leader (a produce or offset look-up to a partition
    still without one is refused: NOT_LEADER_OR_FOLLOWER, seen by a bench run on a topic just created)."""
    return (topic is not None and topic.error is None and bool(topic.partitions)
            and all(p.leader >= 0 and p.error is None for p in topic.partitions.values()))


def _configure(admin: AdminClient, topics: list[str]) -> None:
    """Give existing `topics` their topic_config (a no-op where it is set already)."""
    resources = [ConfigResource(ResourceType.TOPIC, t, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, value in topic_config(t).items()])
        for t in topics]
    for resource, future in admin.incremental_alter_configs(resources).items() if resources else ():
        try:
            future.result()
        except KafkaException as err:
            raise RuntimeError(f"could not set {topic_config(resource.name)} on topic {resource.name}: {err}") from err


def delete_topics(bootstrap: str, doomed: Callable[[str], bool], timeout: float = 60.0) -> list[str]:
    """Delete every topic whose name `doomed` accepts, and wait for the broker to confirm; their names."""
    admin = admin_client(bootstrap)
    names = sorted(t for t in admin.list_topics(timeout=10).topics if doomed(t))
    for topic, future in admin.delete_topics(names, operation_timeout=timeout).items() if names else ():
        try:
            future.result()
        except KafkaException as err:
            if "UNKNOWN_TOPIC_OR_PART" not in str(err):  # gone already: what was asked
                raise RuntimeError(f"could not delete topic {topic}: {err}") from err
    return names


def delete_groups(bootstrap: str, doomed: Callable[[str], bool]) -> list[str]:
    """Delete every consumer group (with its committed offsets) whose id `doomed` accepts; their ids. The
    groups must have no members left."""
    admin = admin_client(bootstrap)
    ids = sorted(g.group_id for g in admin.list_consumer_groups(request_timeout=10).result().valid
                 if doomed(g.group_id))
    for group, future in admin.delete_consumer_groups(ids, request_timeout=30).items() if ids else ():
        try:
            future.result()
        except KafkaException as err:
            raise RuntimeError(f"could not delete consumer group {group}: {err}") from err
    return ids


def producer(bootstrap: str, login: Login | None = None, **settings: object) -> Producer:
    return Producer(client_settings(bootstrap, login, **{"enable.idempotence": True, "linger.ms": 20, **settings}))


def group_consumer(bootstrap: str, group: str, login: Login | None = None, **settings: object) -> Consumer:
    """A consumer in `group` with the client's defaults (read_uncommitted, auto commit) unless `settings` say."""
    return Consumer(client_settings(bootstrap, login, **{"group.id": group, **settings}))


def committed_consumer(bootstrap: str, group: str, login: Login | None = None, **settings: object) -> Consumer:
    """A consumer that sees only records of committed transactions."""
    return group_consumer(bootstrap, group, login, **{"auto.offset.reset": "earliest",
                                                       "isolation.level": "read_committed", "enable.auto.commit": False,
                                                       **settings})


def read_arrived(consumer: Consumer, timeout: float) -> list[Message]:
    """The first record as soon as it comes (within `timeout` seconds), then what has come with it; none if
    nothing came. (`consume(n, timeout)` alone waits for n records or the whole timeout.)"""
    first = consumer.poll(timeout)
    return [first, *consumer.consume(999, timeout=0)] if first is not None else []


def read_all(bootstrap: str, topics: list[str], group: str, idle_seconds: float = 3.0,
             expect: int | None = None, timeout: float = 60.0, login: Login | None = None) -> list:
    """Read committed records of `topics` until `expect` arrived or none came for `idle_seconds`."""
    consumer = committed_consumer(bootstrap, group, login)
    consumer.subscribe(topics)
    records, last, deadline = [], time.monotonic(), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                if (expect is None or len(records) >= expect) and time.monotonic() - last > idle_seconds:
                    break
                continue
            if msg.error():
                raise RuntimeError(f"consuming {topics}: {msg.error()}")
            records.append(msg)
            last = time.monotonic()
    finally:
        consumer.close()
    return records
