"""Builds Flink table environments configured for exactly-once jobs."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from connectors.jars import avro_format_jar, pipeline_jars


@dataclass(frozen=True)
class CheckpointSettings:
    """How a job checkpoints and restarts; the defaults suit the local stack."""

    directory: Path | None  # None: the cluster's own `execution.checkpointing.dir`
    interval_ms: int = 2000
    restart_attempts: int = 10
    restart_delay_ms: int = 1000


def streaming_table_env(checkpoints: CheckpointSettings, parallelism: int = 1,
                        restore_from: Path | str | None = None, extra: dict[str, str] | None = None):
    """A streaming TableEnvironment: EXACTLY_ONCE checkpoints, restart strategy, connector jars, UTC.

    `restore_from` names a checkpoint or savepoint folder (or its URI) to start from; `extra` adds
    Flink settings, such as those of submit.cluster.remote_settings to run on a cluster.
    """
    settings = {
        "execution.checkpointing.interval": f"{checkpoints.interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": str(checkpoints.restart_attempts),
        "restart-strategy.fixed-delay.delay": f"{checkpoints.restart_delay_ms} ms",
        # A partition that sends nothing this long stops holding the watermark back. Not shorter:
        # while a backlog is read, a partition can wait seconds for its turn, and marking it idle
        # then made 7% of a 2M-event bench run late (measured with 5 s).
        "table.exec.source.idle-timeout": "60 s",
        **(extra or {}),
    }
    if checkpoints.directory is not None:
        settings["execution.checkpointing.dir"] = checkpoints.directory.resolve().as_uri()
    if restore_from is not None:
        settings["execution.state-recovery.path"] = str(
            restore_from.resolve() if isinstance(restore_from, Path) else restore_from)
    return _table_env(settings, streaming=True, parallelism=parallelism, time_zone="UTC")


def batch_table_env(parallelism: int = 1, time_zone: str = "UTC", extra: dict[str, str] | None = None):
    """A batch TableEnvironment (bounded sources read to their end, then the job finishes), with the connector
    jars and `time_zone` as the session's local time zone (what TIMESTAMP_LTZ casts to and from)."""
    return _table_env(extra or {}, streaming=False, parallelism=parallelism, time_zone=time_zone)


def _table_env(settings: dict[str, str], streaming: bool, parallelism: int, time_zone: str):
    """A TableEnvironment with what every job of ours runs with, then `settings`."""
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    every_job = {
        "pipeline.jars": ";".join(p.resolve().as_uri() for p in pipeline_jars()),
        "parallelism.default": str(parallelism),
        "table.local-time-zone": time_zone,
        # Chained operators hand rows on without copying them. Flink's SQL operators copy what they
        # keep; without this, a record read once was copied for each route it was tested for.
        "pipeline.object-reuse": "true",
        # The Kafka connector's admin thread can outlive the job's class loader at shutdown;
        # Flink's leak check then prints a harmless stack trace.
        "classloader.check-leaked-classloader": "false",
    }
    # Given at creation, not set afterwards: a bench run once planned a job without the jars
    # set later on the table config ("Could not find any factory for identifier 'kafka'").
    conf = Configuration()
    for key, value in {**every_job, **settings}.items():
        conf.set_string(key, value)
    mode = EnvironmentSettings.new_instance()
    mode = mode.in_streaming_mode() if streaming else mode.in_batch_mode()
    return TableEnvironment.create(mode.with_configuration(conf).build())


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
    try:
        return _planning_thread_class().getMethod(method, to_jarray(jvm.java.lang.Class, types)).invoke(
            None, to_jarray(jvm.java.lang.Object, [env._j_tenv, *args]))
    except Py4JJavaError as err:  # the reflective call wraps what Flink threw: raise that, as PyFlink would
        cause = err.java_exception.getCause()
        if cause is None:
            raise
        thrown = cause.toString()
        kind = next((kind for name, kind in exception_mapping.items() if thrown.startswith(name)), JavaException)
        raise kind(thrown) from err


@functools.cache
def _planning_thread_class():
    """PlanningThread, loaded by a class loader of its own: named through py4j, a class of a jar in
    `pipeline.jars` is found only on the thread that PyFlink gave the jars to."""
    from pyflink.java_gateway import get_gateway
    from pyflink.util.java_utils import to_jarray

    jvm = get_gateway().jvm
    jar = jvm.java.net.URL(avro_format_jar().resolve().as_uri())
    loader = jvm.java.net.URLClassLoader(to_jarray(jvm.java.net.URL, [jar]),
                                         jvm.java.lang.ClassLoader.getSystemClassLoader())
    return loader.loadClass("tenantstream.flink.PlanningThread")
