"""A Flink SQL job through the Kafka connector jar, exactly-once end to end."""

from __future__ import annotations

import json

from confluent_kafka import Producer

from connectors import credentials
from connectors.flink import CheckpointSettings, streaming_table_env
from connectors.kafka import client_settings, ensure_topics, read_all
from pipeline.execute import execute_sql
from pipeline.sql import exactly_once_sink_options, source_options, table_ddl


def test_exactly_once_sql_job_output_is_visible_to_read_committed_consumer(stack, unique, tmp_path):
    source, sink = f"test.flink-in.{unique}", f"test.flink-out.{unique}"
    ensure_topics(stack.kafka.bootstrap, [source, sink])
    producer = Producer(client_settings(stack.kafka.bootstrap))
    readings = [{"sensor": f"s{i % 4}", "value": i} for i in range(40)]
    for r in readings:
        producer.produce(source, key=r["sensor"], value=json.dumps(r))
    producer.flush()

    env = streaming_table_env(CheckpointSettings(directory=tmp_path / "checkpoints", interval_ms=1000))
    assert env.get_config().get("execution.checkpointing.mode", "") == "EXACTLY_ONCE"
    json_format = {"format": "json"}
    admin = credentials.current().kafka_admin
    execute_sql(env, table_ddl("src", ["sensor STRING", "`value` INT"],
                              source_options(stack.kafka.bootstrap, source, f"g-{unique}", json_format,
                                             stop_at="latest", login=admin)))
    execute_sql(env, table_ddl("dst", ["sensor STRING", "doubled INT"],
                              exactly_once_sink_options(stack.kafka.bootstrap, sink, f"test-{unique}",
                                                        json_format, admin)))
    job = execute_sql(env, "INSERT INTO dst SELECT sensor, `value` * 2 FROM src WHERE `value` % 3 <> 0")
    job.wait(120_000)

    out = read_all(stack.kafka.bootstrap, [sink], f"r-{unique}", expect=26)
    expected = sorted((r["sensor"], r["value"] * 2) for r in readings if r["value"] % 3)
    assert sorted((d["sensor"], d["doubled"]) for d in (json.loads(m.value()) for m in out)) == expected
