"""A job's own SQL in Flink's local mini-cluster over a JSON-lines file instead of Kafka, for exact tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from connectors.flink import CheckpointSettings, streaming_table_env
from pipeline.execute import declare, execute_sql
from pipeline.job import Job
from pipeline.plan import jvm_functions_ddl, routing_views, source_ddl


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as the ISO-8601 text Flink's JSON format reads (None stays null)."""
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def epoch_ms(utc_text: str) -> int:
    """A timestamp Flink cast to text, in UTC, as epoch milliseconds."""
    return int(datetime.fromisoformat(utc_text).replace(tzinfo=UTC).timestamp() * 1000)


def run_over_file(job: Job, columns: list[str], path: Path, out_of_orderness_s: int,
                  folder: Path) -> Callable[[str], list]:
    """Declare the job's source over the file at `path` (the Kafka source's `columns`, metadata included)
    and its views, with a watermark after every record; return a function that runs a query to the end
    and returns its rows."""
    env = streaming_table_env(CheckpointSettings(folder / "checkpoints", interval_ms=200),
                              extra={"pipeline.auto-watermark-interval": "0 ms"})
    for function in jvm_functions_ddl():
        execute_sql(env, function)
    execute_sql(env, source_ddl(job, columns, {"connector": "filesystem", "path": str(path), "format": "json",
                                              "json.timestamp-format.standard": "ISO-8601"}, out_of_orderness_s))
    for view in routing_views(job):
        declare(env, view)

    def rows(query: str) -> list:
        with execute_sql(env, query).collect() as results:
            return list(results)

    return rows
