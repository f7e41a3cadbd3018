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


FORMAT_MODULE = Path(__file__).with_name("flink-format")
SCHEMA_DIR = Path(__file__).parents[1] / "schemas"


def avro_format_jar(cfg: StackConfig | None = None) -> Path:
    """The `tenantstream-avro` format (Avro single-object encoding in the JVM), built from source once."""
    inputs = [FORMAT_MODULE / "pom.xml", *(p for p in FORMAT_MODULE.glob("src/**/*") if p.is_file()),
              *SCHEMA_DIR.glob("*.avsc")]
    return install.maven_package(FORMAT_MODULE, (cfg or load_config()).cache_dir, inputs)


def pipeline_jars(cfg: StackConfig | None = None) -> list[Path]:
    """Every jar the built-in jobs need, fetched or built on first use."""
    return [kafka_connector_jar(cfg), avro_format_jar(cfg)]
