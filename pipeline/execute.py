"""The one module of the pipeline that talks to Flink: a job's plan, checked, into a TableEnvironment.

Every run passes here: `run`, `submit` and `tenant submit` (the environment, local or remote, is made by
connectors.flink; the job's Kafka login by connectors.kafka_access.authorized).
"""

from __future__ import annotations

import functools
import re

from pipeline.check import check_plan
from pipeline.job import Job, RunSettings
from pipeline.plan import plan


def execute(job: Job, settings: RunSettings, env):
    """Plan `job`, check the plan (pipeline.check, else PlanRefused) and start it in the TableEnvironment `env`
    (local or remote): its TableResult. `settings` name the job's own Kafka login (authorized) on a broker with
    authentication."""
    # An OPTIONS hint rewrites a table's options, its topic too: the check refuses hints, and Flink with this
    # refuses any that got past it.
    env.get_config().set("table.dynamic-table-options.enabled", "false")
    ddl, inserts = check_plan(job, settings, *plan(job, settings))
    # What several routes read (the source, a view) is planned as a block of its own and computed once per
    # record, not once per route: the source's computed columns (tenant, rejected, rowtime; bench: source
    # thread CPU -12%), and a view's lookup joins (see `declare`).
    env.get_config().set("table.optimizer.reuse-optimize-block-with-digest-enabled", "true")
    for statement in ddl:
        declare(env, statement)
    # One call that parses and plans the inserts, on a JVM thread that can plan (execute_sql).
    return execute_sql(env, f"EXECUTE STATEMENT SET BEGIN {' '.join(f'{insert};' for insert in inserts)} END")


_VIEW = re.compile(r"CREATE TEMPORARY VIEW `(?P<name>[^`]+)` AS (?P<query>.*)", re.DOTALL)


def declare(env, statement: str) -> None:
    """Run a CREATE statement of a plan in the TableEnvironment `env`.

    A view is registered as the Table its query plans to, not as SQL text, so every reader of the view
    reads the same plan node. Text would be planned again for each reader, and a lookup join in it would
    become one lookup operator per reader, each with its own copy of the metadata, refreshed at its own
    moment: around a metadata change, one record could get two answers (say, a dead letter by one reader
    and a windowed reading by the other). As one node, each record gets one answer.
    """
    view = _VIEW.fullmatch(statement)
    if view:
        create_view(env, view["name"], view["query"])
    else:
        execute_sql(env, statement)


def execute_sql(env, statement: str):
    """`env.execute_sql(statement)`, planned on the JVM thread the call runs on: its TableResult (see
    `_call_planning_thread`)."""
    from pyflink.table import TableResult

    return TableResult(_call_planning_thread("executeSql", env, statement))


def create_view(env, name: str, query: str) -> None:
    """Register `query` in `env` as the temporary view `name`: a Table, so that every reader of the view reads
    the same plan node (not SQL text planned again for each reader)."""
    _call_planning_thread("createTemporaryView", env, name, query)


def _call_planning_thread(method: str, env, *args: str):
    """Call the static `method` of PlanningThread (our jar, connectors/flink-format) with `env`'s Java object.

    Flink's planner finds Calcite's metadata provider in a thread-local that only the thread which created
    the TableEnvironment has (FLINK-23020), and PyFlink's calls reach the JVM on whichever py4j thread is
    free: planning elsewhere failed now and then ("NullPointerException: metadataHandlerProvider", seen when
    a bench run planned the flow job). PlanningThread sets the provider on its own thread and plans there,
    in one call.
    """
    from py4j.protocol import Py4JJavaError
    from pyflink.java_gateway import get_gateway
    from pyflink.util.exceptions import JavaException, exception_mapping
    from pyflink.util.java_utils import to_jarray

    jvm = get_gateway().jvm
    types = [jvm.java.lang.Class.forName(name) for name in ("java.lang.Object", *["java.lang.String"] * len(args))]
    planning_thread = _planning_thread_class(env.get_config().get("pipeline.jars", ""))
    try:
        return planning_thread.getMethod(method, to_jarray(jvm.java.lang.Class, types)).invoke(
            None, to_jarray(jvm.java.lang.Object, [env._j_tenv, *args]))
    except Py4JJavaError as err:  # the reflective call wraps what Flink threw: raise that, as PyFlink would
        cause = err.java_exception.getCause()
        if cause is None:
            raise
        thrown = cause.toString()
        kind = next((kind for name, kind in exception_mapping.items() if thrown.startswith(name)), JavaException)
        raise kind(thrown) from err


@functools.cache
def _planning_thread_class(jars: str):
    """PlanningThread, loaded by a class loader of its own from the environment's `pipeline.jars` (URIs joined
    by ';', our format's jar among them: connectors.flink sets them): named through py4j, a class of a jar in
    `pipeline.jars` is found only on the thread that PyFlink gave the jars to."""
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import to_jarray

    jvm = get_gateway().jvm
    urls = [jvm.java.net.URL(uri) for uri in jars.split(";") if uri]
    loader = jvm.java.net.URLClassLoader(to_jarray(jvm.java.net.URL, urls),
                                         jvm.java.lang.ClassLoader.getSystemClassLoader())
    return loader.loadClass("tenantstream.flink.PlanningThread")
