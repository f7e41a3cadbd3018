"""Jobs plan on whichever JVM thread PyFlink's call lands on (FLINK-23020: the planner's metadata provider is
thread-local, set only on the thread that created the environment), and a view read by several routes is one
plan node, so the flow job's metadata lookups run once per reading. Planning only: no server is involved."""

from __future__ import annotations

import re

import pytest
from pyflink.java_gateway import get_gateway

from connectors.flink import CheckpointSettings, streaming_table_env
from jobs.flow_aggregates import flow_aggregates_job
from operators.flow import metadata_from_assets
from pipeline.execute import declare, execute_sql
from pipeline.job import RunSettings
from pipeline.plan import plan
from submit.simulate import flow_topology

TENANTS = ["acme", "globex"]


def _on_a_new_jvm_thread() -> None:
    """Make PyFlink's next call reach the JVM on a py4j connection (and so a thread) never used before, as
    happens when a call was made while another was in progress (e.g. a py4j object released meanwhile)."""
    client = get_gateway()._gateway_client
    client.deque.append(client._create_connection())


@pytest.fixture
def declared(tmp_path):
    """An environment with the flow job's tables and views, each declared from a new JVM thread (one per test:
    a failed planning leaves the views' metadata caches broken)."""
    env = streaming_table_env(CheckpointSettings(tmp_path / "checkpoints"))
    env.get_config().set("table.optimizer.reuse-optimize-block-with-digest-enabled", "true")
    ddl, inserts = plan(flow_aggregates_job(TENANTS, metadata_from_assets(flow_topology(TENANTS), TENANTS)),
                        RunSettings("127.0.0.1:1"))
    for statement in ddl:
        _on_a_new_jvm_thread()
        declare(env, statement)
    return env, f"EXECUTE STATEMENT SET BEGIN {' '.join(f'{insert};' for insert in inserts)} END"


def test_plain_pyflink_fails_to_plan_on_a_new_jvm_thread(declared):
    """The failure the planning thread avoids, so that the next test shows something."""
    env, statement_set = declared
    _on_a_new_jvm_thread()
    with pytest.raises(Exception, match="metadataHandlerProvider"):
        env.explain_sql(statement_set)


def test_the_flow_job_plans_on_a_new_jvm_thread_with_one_lookup_per_metadata_table(declared):
    env, statement_set = declared
    _on_a_new_jvm_thread()
    with execute_sql(env, f"EXPLAIN {statement_set}").collect() as rows:
        explained = next(rows)[0]
    optimized = explained.split("== Optimized Execution Plan ==")[1]
    lookups = re.findall(r"LookupJoin\(table=\[default_catalog\.default_database\.(\w+)\]", optimized)
    # the dead-letter route and the window read the same sensor check: one lookup each, not one per reader
    assert sorted(lookups) == ["flow__limits", "flow__power_sensors", "flow__sensors"]


def test_flinks_own_error_comes_through_as_pyflink_would_raise_it(tmp_path):
    from pyflink.util.exceptions import JavaException

    env = streaming_table_env(CheckpointSettings(tmp_path / "checkpoints"))
    with pytest.raises(JavaException, match=r"ValidationException.*Object 'no_such_table' not found"):
        execute_sql(env, "SELECT * FROM no_such_table")
