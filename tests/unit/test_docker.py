"""The deployment files: what can be checked without a Docker engine."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DOCKER = Path(__file__).parents[2] / "docker"
ROOT = DOCKER.parent


def test_compose_file_parses_and_declares_the_deployment():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert {"kafka-1", "kafka-2", "kafka-3", "cassandra", "mongodb", "jobmanager", "taskmanager"} <= set(services)
    for name in ("kafka-1", "kafka-2", "kafka-3", "cassandra", "mongodb", "jobmanager"):
        assert "healthcheck" in services[name], name
    assert services["kafka-1"]["environment"]["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3
    assert {f"kafka-{i}" for i in (1, 2, 3)} <= set(services["jobmanager"]["depends_on"])
    assert set(compose["volumes"]) >= {"kafka-1", "cassandra", "mongodb", "flink-data"}


def test_image_build_context_holds_everything_the_dockerfile_copies():
    sources = re.findall(r"^COPY (?!--from)(.+) \S+$", (DOCKER / "Dockerfile").read_text(), re.MULTILINE)
    copied = [path for line in sources for path in line.split()]
    assert "jobs" in copied and "connectors/flink-format" in copied
    for path in copied:
        assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which the repository lacks"


SECURITY_SETTINGS = ("listener.security.protocol.map", "inter.broker.listener.name", "sasl.enabled.mechanisms",
                     "sasl.mechanism.inter.broker.protocol", "listener.name.controller.sasl.enabled.mechanisms",
                     "authorizer.class.name", "allow.everyone.if.no.acl.found", "log.message.timestamp.type")


def test_compose_brokers_authenticate_and_authorize_as_the_local_stack_does():
    stack = dict(line.split("=", 1) for line in (ROOT / "stack/conf/kafka-server.properties").read_text().splitlines()
                 if line and not line.startswith("#"))
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    for broker in ("kafka-1", "kafka-2", "kafka-3"):
        env = {k: str(v) for k, v in compose["services"][broker]["environment"].items()}
        for key in SECURITY_SETTINGS:
            assert env.get("KAFKA_" + key.upper().replace(".", "_")) == stack[key], (broker, key)
        assert env["KAFKA_ADVERTISED_LISTENERS"].startswith("SASL_PLAINTEXT://")
        assert "${KAFKA_ADMIN_PASSWORD" in env["KAFKA_LISTENER_NAME_SASL_PLAINTEXT_PLAIN_SASL_JAAS_CONFIG"]
