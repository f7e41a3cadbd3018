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
