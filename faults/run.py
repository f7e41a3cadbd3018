"""One fault run: the alarm-rate job on the cluster profile's Flink over simulated events of a tenant of its own,
a fault struck while the events stream in, then the exact check of what it committed (faults/check.py).

The run's tenant gets its own topics (one partition each, replicated as the brokers say: 3 on the cluster
profile), the job its own principal and transactional ids, and its results writer (beside the job, in this
process, as `tenantstream writer` runs it) its own Cassandra keyspace. The writer does not retry by itself: a
writer that fails (Cassandra gone) is started again after 2 s, as a supervisor would, and the restarts are
reported. Everything the run made goes again at its end unless it is kept.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TextIO

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from connectors.cassandra import CassandraUnavailableError, connect, drop_keyspaces
from connectors.kafka import committed_consumer, delete_groups, delete_topics, read_all
from connectors.kafka_access import authorized
from connectors.results import ResultsWriter
from faults import check, nodes
from jobs.alarm_rate import ALARM_RATE_TABLE, alarm_rate_job
from pipeline.job import Job, RunSettings
from schemas import codec
from stack.config import StackConfig
from stack.servers import NotReadyError, flink_rest, taskmanager_name
from submit.cluster import ClusterError, FlinkRest, submit_job
from submit.local import writer_group
from submit.simulate import SimulationSpec, alarm_events, as_appended, produce

log = logging.getLogger(__name__)

WINDOW_MS = 60_000
OUT_OF_ORDERNESS_MS = 5_000


@dataclass(frozen=True)
class RunSpec:
    """The stream of one run and when its fault strikes."""

    events: int = 6000
    rate: float = 100.0  # records per second: the stream lasts events / rate seconds
    at: float = 0.4  # share of the stream sent when the fault strikes
    hold_scale: float = 1.0  # of each scenario's hold_s (the short runs halve it)
    seed: int = 11
    stations: int = 4
    datapoints: int = 2
    out_of_order: float = 0.05
    late: float = 0.01
    malformed: float = 0.01
    settle_s: float = 240.0  # how long the job may take to commit every closed window after the stream ends
    keep: bool = False  # leave the run's topics, groups and keyspace for a post-mortem


@dataclass
class RunContext:
    """What a scenario may look at to pick its target."""

    cfg: StackConfig
    job: Job
    tenant: str
    job_id: str
    rest: FlinkRest


@dataclass(frozen=True)
class Scenario:
    """A fault: `strike` hits the node `target` picks; after `hold_s` (times the run's hold_scale), `mend` (if any)
    heals it.
    `watch` is the output the fault disrupts: how soon it moves again is the recovery time. A node struck for
    good (`mend` None) is brought back after the run's check by `restore` (None: nothing to restore)."""

    name: str
    summary: str
    target: Callable[[RunContext], str]
    strike: Callable[[StackConfig, str], object]
    mend: Callable[[StackConfig, str], object] | None
    hold_s: float = 0.0
    watch: Literal["results", "cassandra"] = "results"
    restore: Callable[[StackConfig, str], object] | None = None


@dataclass
class RunReport:
    scenario: str
    run: int
    fault: str  # what was done to which node
    injected_at_s: float  # seconds after the stream started
    recovered_s: float | None  # seconds from the strike until the watched output moved again (None: never)
    records_in: int
    results_committed: int
    equal: bool
    lost: int
    doubled: int
    job_failovers: int  # restarts of the Flink job (its exception history)
    writer_restarts: int
    seconds: float
    notes: list[str] = field(default_factory=list)


class SupervisedWriter:
    """The run's results writer, started again 2 s after it fails, until stopped."""

    def __init__(self, make: Callable[[], ResultsWriter]) -> None:
        self.make = make
        self.current: ResultsWriter | None = None
        self.restarts = 0
        self.written_before = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="faults-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.current = self.make()
                if self._stop.is_set():
                    return
                self.current.run()
            except Exception as err:  # Cassandra or Kafka went away: start it again, as a supervisor would
                log.info("results writer failed (%s); starting it again in 2 s", str(err).splitlines()[0][:200])
                self.restarts += 1
                if self.current is not None:
                    self.written_before += self.current.written
                    self.current = None
                self._stop.wait(2.0)

    @property
    def written(self) -> int:
        return self.written_before + (self.current.written if self.current else 0)

    def drain(self, timeout: float) -> None:
        """Return once a writer has caught up with every committed result (retrying across its restarts)."""
        deadline = time.monotonic() + timeout
        while True:
            writer = self.current
            try:
                if writer is None:
                    raise RuntimeError("no writer running")
                writer.drain(timeout=max(1.0, min(30.0, deadline - time.monotonic())))
                return
            except (RuntimeError, TimeoutError) as err:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the results writer did not catch up in {timeout:.0f} s: {err}") from None
                time.sleep(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self.current is not None:
            self.current.stop()
        self._thread.join(60)


class _CommittedCount:
    """How many committed records a topic's partition 0 holds, as a read_committed consumer of its own counts them
    (it follows the partition's leader wherever it moves)."""

    def __init__(self, cfg: StackConfig, topic: str) -> None:
        self.count = 0
        self._consumer = committed_consumer(cfg.kafka.bootstrap, f"faults-watch-{uuid.uuid4().hex}", log_level=0)
        self._consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="faults-count", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            msg = self._consumer.poll(0.5)
            if msg is not None and not msg.error():
                self.count += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


def _windows(cfg: StackConfig, topic: str) -> list[tuple[check.Window, check.Counts]]:
    out = []
    for m in read_all(cfg.kafka.bootstrap, [topic], f"faults-check-{uuid.uuid4().hex}", idle_seconds=1.0,
                      timeout=60):
        r = codec.decode(m.value(), "alarm_rate_result.v1", logical_types=False)
        out.append(((r["station_id"], r["datapoint_id"], r["window_start"], r["window_end"]),
                    (r["fires"], r["events"], r["rate"])))
    return out


def _source_offsets(cfg: StackConfig, topic: str) -> list[int]:
    return [codec.decode(m.value(), "dead_letter.v1")["offset"]
            for m in read_all(cfg.kafka.bootstrap, [topic], f"faults-check-{uuid.uuid4().hex}", idle_seconds=1.0,
                              timeout=60)]


def cassandra_windows(port: int, keyspace: str, tenant: str) -> dict[check.Window, check.Counts]:
    """A tenant's alarm-rate rows in Cassandra, read as the reader role, keyed as the oracle keys windows."""
    cluster, session = connect(port, keyspace, role="reader")
    try:
        rows = session.execute("SELECT station_id, datapoint_id, window_start, window_end, fires, events, rate "
                               "FROM alarm_rate WHERE tenant = %s ALLOW FILTERING", (tenant,))
        return {(r.station_id, r.datapoint_id, _ms(r.window_start), _ms(r.window_end)): (r.fires, r.events, r.rate)
                for r in rows}
    finally:
        cluster.shutdown()


def _ms(value) -> int:
    from datetime import UTC

    return int(value.replace(tzinfo=UTC).timestamp() * 1000)


def _failovers(cfg: StackConfig, job_id: str) -> int:
    with contextlib.suppress(NotReadyError):
        history = flink_rest(cfg, f"/jobs/{job_id}/exceptions", timeout=10).get("exceptionHistory", {})
        return len(history.get("entries") or [])
    return 0


class _Watch:
    """Seconds from the strike until `progress()` passes what it was just after the strike."""

    def __init__(self, progress: Callable[[], int], started: float) -> None:
        self.progress, self.started = progress, started
        self.baseline: int | None = None
        self.recovered_s: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="faults-watch", daemon=True)
        self._thread.start()

    def _read(self) -> int | None:
        try:
            return self.progress()
        except Exception:  # a broker or Cassandra that is away answers nothing: no progress yet
            return None

    def _loop(self) -> None:
        self.baseline = self._read()
        while not self._stop.wait(0.5):
            now = self._read()
            if now is not None and (self.baseline is None or now > self.baseline):
                if self.baseline is not None:
                    self.recovered_s = time.monotonic() - self.started
                    return
                self.baseline = now

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def run(cfg: StackConfig, scenario: Scenario, spec: RunSpec, index: int, out: TextIO = sys.stderr) -> RunReport:
    """Run `scenario` once (run number `index`) and check its output; the report says what happened. Progress
    lines go to `out`."""
    started = time.monotonic()

    def say(text: str) -> None:
        out.write(f"  [{time.monotonic() - started:6.1f} s] {text}\n")
        out.flush()

    run_id = uuid.uuid4().hex[:6]
    tenant, keyspace = f"flt{run_id}", f"faults_{run_id}"
    job = alarm_rate_job([tenant])
    topics = job.topics(tenant)
    rest = FlinkRest(cfg.flink.rest_url)
    settings = RunSettings(cfg.kafka.bootstrap, watermark_emit="on-event")
    login = authorized(job, settings).kafka_login
    records = list(alarm_events(SimulationSpec(
        tenants=(tenant,), events=spec.events, stations=spec.stations, datapoints=spec.datapoints,
        out_of_order=spec.out_of_order, late=spec.late, malformed=spec.malformed, seed=spec.seed + index)))
    job_id = submit_job(job, settings, rest, parallelism=1, partitions=1)
    say(f"tenant {tenant}: job {job_id} running; streaming {len(records):,} records at {spec.rate:g}/s")
    writer = SupervisedWriter(lambda: ResultsWriter(
        cfg.kafka.bootstrap, cfg.cassandra.port, ALARM_RATE_TABLE, [topics.results],
        group=writer_group(job.default_group), keyspace=keyspace, login=login))
    target, watch, notes = "", None, []
    committed = _CommittedCount(cfg, topics.results)
    try:
        sent: dict = {}
        feeder = threading.Thread(target=lambda: sent.update(result=produce(
            iter(records), cfg.kafka.bootstrap, len(records), rate=spec.rate, progress=None)), daemon=True)
        fed_at = time.monotonic()
        feeder.start()
        time.sleep(max(0.0, spec.at * len(records) / spec.rate - (time.monotonic() - fed_at)))
        target = scenario.target(RunContext(cfg, job, tenant, job_id, rest))
        struck_at = time.monotonic()
        scenario.strike(cfg, target)
        say(f"struck {target} ({scenario.strike.__name__})")
        watch = _Watch((lambda: writer.written) if scenario.watch == "cassandra" else (lambda: committed.count),
                       struck_at)
        hold_s = scenario.hold_s * spec.hold_scale
        if scenario.mend is not None:
            time.sleep(max(0.0, hold_s - (time.monotonic() - struck_at)))
            scenario.mend(cfg, target)
            say(f"mended {target} ({scenario.mend.__name__})")
        feeder.join(spec.events / spec.rate + 300)
        if "result" not in sent:
            raise RuntimeError("the simulated events were not all delivered (see the log with -v)")
        exp = check.expected(as_appended(records, sent["result"]), tenant, WINDOW_MS, OUT_OF_ORDERNESS_MS)
        say(f"stream sent; waiting for the {len(exp.windows)} closed windows to be committed")
        results = _wait_for_results(cfg, rest, job_id, topics.results, len(exp.windows), spec.settle_s)
        try:
            writer.drain(120)
        except TimeoutError as err:
            notes.append(str(err))
        say(f"{len(results)} results committed, {writer.written} rows written; checking")
        verdict = check.judge(exp, results, _cassandra_windows_or_none(cfg, keyspace, tenant, notes),
                              _source_offsets(cfg, topics.deadletter), _source_offsets(cfg, topics.late), WINDOW_MS)
        fault = scenario.summary.format(node=target, hold=f"{hold_s:g}")
        return RunReport(scenario.name, index + 1, fault, round(struck_at - fed_at, 1),
                         None if watch.recovered_s is None else round(watch.recovered_s, 1), len(records),
                         len(results), verdict.equal, verdict.lost, verdict.doubled, _failovers(cfg, job_id),
                         writer.restarts, round(time.monotonic() - started, 1), notes + list(verdict.notes))
    finally:
        if watch is not None:
            watch.stop()
        committed.stop()
        with contextlib.suppress(ClusterError):
            if rest.state(job_id) not in {"FINISHED", "CANCELED", "FAILED"}:
                rest.cancel(job_id)
        writer.stop()
        if scenario.restore is not None and target:
            scenario.restore(cfg, target)
        if not spec.keep:
            _clean(cfg, tenant, keyspace, job)


def _cassandra_windows_or_none(cfg: StackConfig, keyspace: str, tenant: str,
                               notes: list[str]) -> dict[check.Window, check.Counts]:
    try:
        return cassandra_windows(cfg.cassandra.port, keyspace, tenant)
    except CassandraUnavailableError as err:
        notes.append(f"Cassandra could not be read: {err}")
        return {}


def _wait_for_results(cfg: StackConfig, rest: FlinkRest, job_id: str, topic: str, expected: int,
                      timeout: float) -> list[tuple[check.Window, check.Counts]]:
    """The committed results once there are `expected` of them, the job has failed, or `timeout` s passed."""
    deadline = time.monotonic() + timeout
    while True:
        results = _windows(cfg, topic)
        if len(results) >= expected or time.monotonic() > deadline or rest.state(job_id) in {"FAILED", "CANCELED"}:
            return results
        time.sleep(3)


def _clean(cfg: StackConfig, tenant: str, keyspace: str, job: Job) -> None:
    """Delete the run's topics, consumer groups and keyspace (what is already gone is no error)."""
    with contextlib.suppress(Exception):
        delete_topics(cfg.kafka.bootstrap, lambda t: t.startswith(f"{tenant}."))
    with contextlib.suppress(Exception):
        delete_groups(cfg.kafka.bootstrap, lambda g: g.startswith(job.default_group) or g.startswith("faults-check-"))
    with contextlib.suppress(Exception):
        cluster, session = connect(cfg.cassandra.port)
        try:
            drop_keyspaces(session, lambda name: name == keyspace)
        finally:
            cluster.shutdown()


SCENARIOS: dict[str, Scenario] = {}


def _results_leader(ctx: RunContext) -> str:
    return nodes.partition_leader(ctx.cfg, ctx.job.topics(ctx.tenant).results)


def _job_taskmanager(ctx: RunContext) -> str:
    """The TaskManager that runs the job's tasks (parallelism 1: all of them are on one)."""
    for tm in flink_rest(ctx.cfg, "/taskmanagers", timeout=10)["taskmanagers"]:
        if tm["freeSlots"] < tm["slotsNumber"]:
            return taskmanager_name(ctx.cfg, ctx.cfg.flink.taskmanager_hosts.index(tm["id"].split(":")[0]))
    raise nodes.FaultError("no TaskManager runs a task of the job")


def _register(*scenarios: Scenario) -> None:
    for s in scenarios:
        SCENARIOS[s.name] = s


_register(
    Scenario("broker-kill", "kill -9 {node} (leader of the results partition), back after {hold} s",
             _results_leader, nodes.kill, nodes.restart, hold_s=20),
    Scenario("taskmanager-loss", "kill -9 {node} (runs the job) for good", _job_taskmanager, nodes.kill, None,
             restore=nodes.restart),
    Scenario("cassandra-stop", "stop {node} under the results writer, start it {hold} s later",
             lambda ctx: "cassandra", nodes.stop, nodes.restart, hold_s=30, watch="cassandra"),
    Scenario("broker-pause", "SIGSTOP {node} (leader of the results partition), SIGCONT after {hold} s",
             _results_leader, nodes.pause, nodes.resume, hold_s=20),
    Scenario("broker-cutoff", "cut {node} (leader of the results partition) off the network for {hold} s",
             _results_leader, nodes.cut, nodes.join, hold_s=30),
    Scenario("quorum-leader-cutoff", "cut {node} (the controller quorum's leader) off the network for {hold} s",
             lambda ctx: nodes.quorum_leader(ctx.cfg), nodes.cut, nodes.join, hold_s=30),
)
