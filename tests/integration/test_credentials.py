"""Credentials at every layer, tried with real clients: Kafka SASL/SCRAM with per-tenant and per-job ACLs,
Cassandra roles. Each refusal is paired with the same request that the owner is allowed, so a test cannot
pass because nothing works."""

from __future__ import annotations

import time
import uuid

import pytest
from cassandra import Unauthorized
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import NewTopic

from connectors import credentials, kafka_access
from connectors.cassandra import CassandraUnavailableError, connect, ensure_keyspace
from connectors.kafka import admin_client, client_settings, ensure_topics, read_all
from pipeline.sql import Login


def produce(bootstrap: str, login: Login | None, topic: str, **settings: object) -> KafkaError | None:
    """Produce one record as `login`; the delivery error, or None once it is acknowledged."""
    producer = Producer(client_settings(bootstrap, login, **{"message.timeout.ms": 10_000, "log_level": 0,
                                                             **settings}))
    outcome: list[KafkaError | None] = []
    producer.produce(topic, b"x", on_delivery=lambda err, _msg: outcome.append(err))
    producer.flush(15)
    return outcome[0] if outcome else KafkaError(KafkaError._MSG_TIMED_OUT)


def consume_error(bootstrap: str, login: Login, topic: str, group: str) -> KafkaError | None:
    """Subscribe as `login` in `group` and poll for up to 10 s: the first error, or None if records came."""
    consumer = Consumer(client_settings(bootstrap, login, **{"group.id": group, "auto.offset.reset": "earliest",
                                                             "log_level": 0}))
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None:
                return msg.error()
        return KafkaError(KafkaError._TIMED_OUT)
    finally:
        consumer.close()


def login_error(bootstrap: str, login: Login) -> KafkaError | None:
    """The error a client logging in as `login` is told within 10 s, or None if it got the cluster's metadata."""
    errors: list[KafkaError] = []
    producer = Producer(client_settings(bootstrap, login, **{"error_cb": errors.append, "log_level": 0}))
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        try:
            producer.list_topics(timeout=1)
            return None
        except KafkaException:
            producer.poll(0.2)
    return errors[0] if errors else KafkaError(KafkaError._TIMED_OUT)


@pytest.fixture
def tenants(stack, unique):
    """Two registered tenants with their topics, and the tenants' logins; deleted afterwards."""
    a, b = f"ta{unique}", f"tb{unique}"
    bootstrap = stack.kafka.bootstrap
    ensure_topics(bootstrap, [f"{t}.{s}" for t in (a, b) for s in ("sensors.alarms", "results.alarm_rate")])
    logins = {t: kafka_access.create_tenant(bootstrap, t) for t in (a, b)}
    produce(bootstrap, None, f"{b}.results.alarm_rate")  # something for a reader to get, as the admin
    produce(bootstrap, None, f"{a}.results.alarm_rate")
    yield a, b, logins
    for login in logins.values():
        kafka_access.delete_principal(bootstrap, login.username)


def test_a_tenant_writes_only_its_own_sensor_topics(stack, tenants):
    a, b, logins = tenants
    assert produce(stack.kafka.bootstrap, logins[a], f"{a}.sensors.alarms") is None
    refused = produce(stack.kafka.bootstrap, logins[a], f"{b}.sensors.alarms")
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    refused = produce(stack.kafka.bootstrap, logins[a], f"{a}.results.alarm_rate")  # results are the job's
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_tenant_reads_only_its_own_results_in_its_own_groups(stack, tenants, unique):
    a, b, logins = tenants
    bootstrap = stack.kafka.bootstrap
    assert consume_error(bootstrap, logins[a], f"{a}.results.alarm_rate", f"{a}.dash-{unique}") is None
    refused = consume_error(bootstrap, logins[a], f"{b}.results.alarm_rate", f"{a}.dash-{unique}")
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    refused = consume_error(bootstrap, logins[a], f"{a}.results.alarm_rate", f"{b}.dash-{unique}")  # B's group
    assert refused is not None and refused.code() == KafkaError.GROUP_AUTHORIZATION_FAILED


def test_a_tenant_creates_no_topic(stack, tenants, unique):
    a, _, logins = tenants
    admin = admin_client(stack.kafka.bootstrap, logins[a])
    for topic in (f"{a}.sensors.new{unique}", f"other{unique}.sensors.alarms", f"free-{unique}"):
        with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
            admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    assert not {f"{a}.sensors.new{unique}", f"free-{unique}"} & set(admin_client(stack.kafka.bootstrap)
                                                                      .list_topics(timeout=10).topics)


def test_a_tenant_cannot_use_a_jobs_transactional_id(stack, tenants):
    a, _, logins = tenants
    job_tx = f"tenantstream.alarm_rate.{a}.results-0-1"
    producer = Producer(client_settings(stack.kafka.bootstrap, logins[a], **{"transactional.id": job_tx,
                                                                             "log_level": 0}))
    with pytest.raises(KafkaException, match="TRANSACTIONAL_ID_AUTHORIZATION_FAILED"):
        producer.init_transactions(15)


def test_a_job_reads_only_its_own_tenants_topics(stack, tenants, unique):
    a, b, _ = tenants
    group = f"tenantstream.alarm_rate.{a}.{unique}"
    job = kafka_access.authorize_job(stack.kafka.bootstrap, "alarm_rate", [a], "alarms", group,
                                     f"tenantstream.alarm_rate.{a}.")
    assert consume_error(stack.kafka.bootstrap, job, f"{a}.results.alarm_rate", group) is None
    refused = consume_error(stack.kafka.bootstrap, job, f"{b}.results.alarm_rate", group)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    refused = produce(stack.kafka.bootstrap, job, f"{b}.deadletter")
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    other_job_tx = Producer(client_settings(stack.kafka.bootstrap, job, **{
        "transactional.id": f"tenantstream.alarm_rate.{b}.results-0-1", "log_level": 0}))
    with pytest.raises(KafkaException, match="TRANSACTIONAL_ID_AUTHORIZATION_FAILED"):
        other_job_tx.init_transactions(15)
    kafka_access.delete_principal(stack.kafka.bootstrap, job.username)


def test_kafka_refuses_clients_without_valid_credentials(stack, tenants):
    a, _, logins = tenants
    plaintext = Producer({"bootstrap.servers": stack.kafka.bootstrap, "message.timeout.ms": 5000, "log_level": 0})
    errors: list = []
    plaintext.produce(f"{a}.sensors.alarms", b"x", on_delivery=lambda err, _m: errors.append(err))
    plaintext.flush(10)
    assert errors and errors[0] is not None  # never acknowledged
    assert login_error(stack.kafka.bootstrap, logins[a]) is None
    refused = login_error(stack.kafka.bootstrap, Login(logins[a].username, logins[a].password + "x"))
    assert refused is not None and refused.code() == KafkaError._AUTHENTICATION


def test_a_deleted_tenants_credentials_stop_working(stack, tenants):
    a, _, logins = tenants
    assert produce(stack.kafka.bootstrap, logins[a], f"{a}.sensors.alarms") is None
    kafka_access.delete_principal(stack.kafka.bootstrap, logins[a].username)
    time.sleep(1)  # the broker applies the metadata change
    refused = login_error(stack.kafka.bootstrap, logins[a])
    assert refused is not None and refused.code() == KafkaError._AUTHENTICATION
    assert read_all(stack.kafka.bootstrap, [f"{a}.sensors.alarms"], f"check-{uuid.uuid4().hex}", idle_seconds=1)


def test_cassandra_refuses_clients_without_credentials_and_the_default_superuser(stack):
    for login in (Login("", ""), Login("cassandra", "cassandra"),
                  Login(credentials.current().cassandra_login("admin").username, "wrong")):
        with pytest.raises(CassandraUnavailableError, match=r"(?i)authentication|credentials|password"):
            connect(stack.cassandra.port, login=login, timeout=5)


def test_cassandra_reader_only_selects_and_writer_only_modifies_results(stack, keyspace):
    cluster, admin = connect(stack.cassandra.port)
    ensure_keyspace(admin, keyspace)
    admin.execute(f"CREATE TABLE {keyspace}.t (k text PRIMARY KEY, v int)")
    cluster.shutdown()
    cluster, writer = connect(stack.cassandra.port, keyspace, role="writer")
    writer.execute("INSERT INTO t (k, v) VALUES ('a', 1)")
    for statement in ("SELECT * FROM t", f"CREATE TABLE {keyspace}.u (k text PRIMARY KEY)",
                      f"DROP TABLE {keyspace}.t", "CREATE KEYSPACE w_evil WITH replication = "
                      "{'class': 'SimpleStrategy', 'replication_factor': 1}",
                      "ALTER ROLE tenantstream_writer WITH SUPERUSER = true"):
        with pytest.raises(Unauthorized):
            writer.execute(statement)
    cluster.shutdown()
    cluster, reader = connect(stack.cassandra.port, keyspace, role="reader")
    assert [tuple(r) for r in reader.execute("SELECT k, v FROM t")] == [("a", 1)]
    for statement in ("INSERT INTO t (k, v) VALUES ('b', 2)", "DELETE FROM t WHERE k = 'a'", "TRUNCATE t"):
        with pytest.raises(Unauthorized):
            reader.execute(statement)
    with pytest.raises(Unauthorized):
        reader.execute("SELECT * FROM system_auth.roles")
    cluster.shutdown()
