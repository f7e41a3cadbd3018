"""Run a job on Flink's local mini-cluster against the local stack, with its Cassandra writer."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from connectors.flink import CheckpointSettings, streaming_table_env
from connectors.kafka import ensure_topics, group_consumer
from connectors.kafka_access import authorized
from connectors.results import ResultsWriter
from pipeline.execute import execute
from pipeline.job import Job, ResultTable, RunSettings
from stack.config import StackConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunReport:
    events: int  # records the job read from its source topics
    seconds: float  # from submission until the job finished and the writer caught up
    running_seconds: float  # the same, from when Flink reported the job RUNNING (start-up excluded)
    job_seconds: float  # from RUNNING until the Flink job ended (the writer's catching up excluded)
    results_written: int  # rows the writers upserted into Cassandra

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def running_events_per_second(self) -> float:
        return self.events / self.running_seconds if self.running_seconds else 0.0


def when_running(job_client, then: Callable[[], object] | None = None) -> list[float]:
    """Start a watcher that notes (in the returned list) the moment Flink reports the job RUNNING,
    and then calls `then` (a live benchmark starts its load only then)."""
    noted: list[float] = []

    def watch() -> None:
        from pyflink.common import JobStatus

        while job_client.get_job_status().result() == JobStatus.CREATED:
            time.sleep(0.05)
        noted.append(time.monotonic())
        if then is not None:
            then()

    threading.Thread(target=watch, name="job-status", daemon=True).start()
    return noted


def wait_interruptibly(result) -> None:
    """Wait for the job of a TableResult to end, in short steps, so that Ctrl-C (SIGINT) is seen.

    The signal may be delivered to any thread of the process; a main thread blocked in `result.wait()`
    (a socket read of the gateway) then sees it only when the job ends, which for an unbounded job is
    never (seen: a benchmark contender that ignored SIGINT). Returning to Python every half second
    lets the pending KeyboardInterrupt be raised. A job that failed raises as `wait()` does.
    """
    from py4j.protocol import Py4JJavaError
    from pyflink.common import JobStatus

    client = result.get_job_client()
    ended = (JobStatus.FINISHED, JobStatus.CANCELED, JobStatus.FAILED)
    while True:
        try:
            if client.get_job_status().result() in ended:
                break
        except Py4JJavaError:  # a local mini-cluster shuts down as its job ends: wait() says how it ended
            break
        time.sleep(0.5)
    result.wait()


def latest_checkpoint(directory: Path) -> Path | None:
    """The newest completed checkpoint (a chk-N folder with _metadata) under `directory`."""
    done = [m.parent for m in directory.glob("*/chk-*/_metadata")]
    return max(done, key=lambda p: (p.stat().st_mtime, int(p.name.split("-")[1])), default=None)


# A broker that has just started answers these while it loads its consumer-offsets partitions.
_COORDINATOR_NOT_READY = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                          KafkaError.COORDINATOR_NOT_AVAILABLE)


def _committed(consumer: Consumer, partitions: list[TopicPartition], wait_s: float = 60.0) -> list[TopicPartition]:
    """The group's committed offsets of `partitions`, asked again while the group coordinator is not ready (CI
    saw NOT_COORDINATOR for the first job on a freshly formatted broker)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return consumer.committed(partitions, timeout=10)
        except KafkaException as err:
            if err.args[0].code() not in _COORDINATOR_NOT_READY or time.monotonic() > deadline:
                raise
            log.info("the group coordinator is not ready yet (%s); asking again", err.args[0].name())
            time.sleep(0.5)


def pending_records(bootstrap: str, topics: list[str], group: str) -> int:
    """Records in `topics` after the group's committed offsets (all of them for a new group)."""
    consumer = group_consumer(bootstrap, group)
    try:
        metadata = consumer.list_topics(timeout=10)
        partitions = [TopicPartition(t, p) for t in topics for p in metadata.topics[t].partitions]
        total = 0
        for tp in _committed(consumer, partitions):
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            total += high - (tp.offset if tp.offset >= 0 else low)
        return total
    finally:
        consumer.close()


def writer_group(group: str, table: ResultTable | None = None) -> str:
    """The consumer group of the Cassandra results writer of a job reading as `group`; of the writer of
    `table` when the job has several result tables."""
    return f"{group}.cassandra" if table is None else f"{group}.cassandra.{table.name}"


def run_job(job: Job, table: ResultTable | Sequence[ResultTable], cfg: StackConfig, settings: RunSettings,
            checkpoint_dir: Path, restore_from: Path | None = None, parallelism: int = 1,
            keyspace: str = "tenantstream", on_running: Callable[[], object] | None = None) -> RunReport:
    """Submit `job` to a local mini-cluster and keep a results writer per result table going until the job ends.

    A bounded job ends when it has read what its topics held at the start; an unbounded one when
    interrupted (Ctrl-C), after which the writers still copy what the job committed. `on_running`
    is called once Flink reports the job RUNNING.
    """
    tables = [table] if isinstance(table, ResultTable) else list(table)
    all_topics = [t for tenant in job.tenants for t in job.topics(tenant).all()]
    ensure_topics(settings.bootstrap, all_topics, partitions=cfg.kafka.partitions)
    group = settings.group_id or job.default_group
    events = pending_records(settings.bootstrap, [job.topics(t).source for t in job.tenants], group)
    settings = authorized(job, settings)  # the job and its writers log in as the job's own principal
    writers = [ResultsWriter(settings.bootstrap, cfg.cassandra.port, t, results_topics(job, t),
                             group=writer_group(group, t if len(tables) > 1 else None), keyspace=keyspace,
                             login=settings.kafka_login)
               for t in tables]
    writer_threads = [threading.Thread(target=w.run, name=f"results-writer-{w.table.name}", daemon=True)
                      for w in writers]
    for thread in writer_threads:
        thread.start()

    env = streaming_table_env(CheckpointSettings(checkpoint_dir), parallelism=parallelism,
                              restore_from=restore_from,
                              extra={"pipeline.name": f"{job.name}[{','.join(job.tenants)}]"})
    started = time.monotonic()
    result = execute(job, settings, env)
    running = when_running(result.get_job_client(), on_running)
    log.info("submitted %s (Flink job %s), %d records pending, checkpoints in %s%s", job.name,
             result.get_job_client().get_job_id(), events, checkpoint_dir,
             f", restored from {restore_from}" if restore_from else "")
    try:
        wait_interruptibly(result)
    except KeyboardInterrupt:
        log.info("interrupted: cancelling the Flink job")
        result.get_job_client().cancel().result()
    job_ended = time.monotonic()
    for writer in writers:
        writer.drain()
        writer.stop()
    for thread in writer_threads:
        thread.join(timeout=30)
    ended = time.monotonic()
    running_since = running[0] if running else started
    return RunReport(events, ended - started, ended - running_since, job_ended - running_since,
                     sum(w.written for w in writers))


def results_topics(job: Job, table: ResultTable) -> list[str]:
    """The topics `table`'s rows come from: each tenant's results topic the table names, or the job's own."""
    return [job.topics(t).output(table.topic) if table.topic else job.topics(t).results for t in job.tenants]
