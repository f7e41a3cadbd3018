"""Where the jars that jobs add to Flink's classpath come from.

A job run locally or submitted to the cluster calls `pipeline_jars()`; the user
never names a path. Jars are fetched (Maven) or built once and cached per user.
"""

from __future__ import annotations

from pathlib import Path

from stack import install
from stack.config import StackConfig, load_config


def kafka_connector_jar(cfg: StackConfig | None = None) -> Path:
    """Flink's shaded Kafka SQL connector, at the version built for apache-flink 2.2."""
    folder = install.maven_jars("flink-connectors", (cfg or load_config()).cache_dir, transitive=False)
    (jar,) = folder.glob("flink-sql-connector-kafka-*.jar")
    return jar


def pipeline_jars(cfg: StackConfig | None = None) -> list[Path]:
    """Every jar the built-in jobs need, fetched on first use."""
    return [kafka_connector_jar(cfg)]
