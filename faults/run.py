"""One fault run: the alarm-rate job on the cluster profile's Flink over simulated events of a tenant of its own,
a fault struck while the events stream in, then the exact check of what it committed (faults/check.py).

The run's tenant gets its own topics (one partition each, replicated as the brokers say: 3 on the cluster
profile), the job its own principal and transactional ids, and its results writer its own Cassandra keyspace.
The writer is `tenantstream writer` in a process of its own, as a deployment runs it beside the job: it waits
for Cassandra by itself, nothing starts it again unless a scenario kills it. Everything the run made goes again
at its end unless it is kept.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from connectors.cassandra import CassandraUnavailableError, connect, drop_keyspaces
from connectors.kafka import committed_consumer, delete_groups, delete_topics, read_all
from faults import check, disk, nodes, poison
from jobs.alarm_rate import alarm_rate_job
from pipeline.job import Job, RunSettings
from schemas import codec
from stack.config import StackConfig
from stack.servers import NotReadyError, flink_rest, taskmanager_name
from submit.cluster import ClusterError, FlinkRest, submit_job
from submit.local import writer_group
from submit.simulate import SimulationSpec, alarm_events, produce

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
    """What a scenario may look at to pick its target and strike it; its `notes` go into the report."""

    cfg: StackConfig
    job: Job
    tenant: str
    job_id: str
    rest: FlinkRest
    writer: WriterProcess
    committed: _CommittedCount
    notes: list[str]


@dataclass(frozen=True)
class Scenario:
    """A fault: `strike` hits the node `target` picks; after `hold_s` (times the run's hold_scale), `mend` (if any)
    heals it.
    `watch` is the output the fault disrupts: how soon it moves again (after the strike, or after the mend with
    `watch_from_mend`) is the recovery time. A node struck for good (`mend` None) is brought back after the
    run's check by `restore` (None: nothing to restore). `around` (if any) is entered before the job is
    submitted and left after it is cancelled, on every way out of the run: what the fault needs set up."""

    name: str
    summary: str
    target: Callable[[RunContext], str]
    strike: Callable[[RunContext, str], object]
    mend: Callable[[RunContext, str], object] | None
    hold_s: float = 0.0
    watch: Literal["results", "cassandra"] = "results"
    restore: Callable[[StackConfig, str], object] | None = None
    watch_from_mend: bool = False
    around: Callable[[StackConfig], AbstractContextManager] | None = None


@dataclass
class RunReport:
    scenario: str
    run: int
    fault: str  # what was done to which node
    injected_at_s: float  # seconds after the stream started
    checkpoints_before: int | None  # the job's checkpoints completed when the fault struck (None: not known)
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


class WriterProcess:
    """The run's results writer: `tenantstream writer alarm_rate` for the run's tenant and keyspace, in a process of
    its own (the stack profile from this process's environment), its output appended to `log_file`."""

    def __init__(self, tenant: str, keyspace: str, log_file: Path) -> None:
        self.argv = [sys.executable, "-m", "submit.cli", "writer", "alarm_rate", "--tenants", tenant,
                     "--keyspace", keyspace]
        self.log_file = log_file
        self.starts = 0
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with self.log_file.open("a") as out:
            self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                            cwd=Path(__file__).parents[1])
        self.starts += 1

    @property
    def restarts(self) -> int:
        return self.starts - 1

    def kill(self) -> int:
        """SIGKILL: no handler runs, rows in flight stay unacknowledged and their offsets uncommitted."""
        pid = self.process.pid
        os.kill(pid, signal.SIGKILL)
        self.process.wait(30)
        return pid

    def stop(self) -> None:
        """Ctrl-C, as a person stops it (it commits what Cassandra took); SIGKILL if it has not ended in 30 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def said(self, words: str) -> int:
        """How many lines of its output hold `words`."""
        with contextlib.suppress(FileNotFoundError), self.log_file.open() as lines:
            return sum(words in line for line in lines)
        return 0


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


def _checkpoint_counts(cfg: StackConfig, job_id: str) -> dict[str, int] | None:
    """The job's checkpoints by outcome (Flink's REST API: completed, failed, ...); None if Flink did not say."""
    with contextlib.suppress(NotReadyError, KeyError):
        return flink_rest(cfg, f"/jobs/{job_id}/checkpoints", timeout=10)["counts"]
    return None


def _completed_checkpoints(cfg: StackConfig, job_id: str) -> int | None:
    """How many checkpoints the job has completed: 0 means a fault struck now meets a job with nothing to restore
    (the run at moment 0)."""
    counts = _checkpoint_counts(cfg, job_id)
    return None if counts is None else int(counts["completed"])


def _failovers(cfg: StackConfig, job_id: str, notes: list[str]) -> int:
    """The job's restarts (its exception history's entries); what failed it is noted, each cause once."""
    with contextlib.suppress(NotReadyError):
        entries = flink_rest(cfg, f"/jobs/{job_id}/exceptions", timeout=10).get("exceptionHistory", {}).get(
            "entries") or []
        causes = dict.fromkeys(_cause(e.get("stacktrace") or e.get("exceptionName") or "") for e in entries)
        notes.extend(f"job failover: {cause}" for cause in causes)
        return len(entries)
    return 0


def _cause(stacktrace: str) -> str:
    """The exception's line and its innermost cause's, shortened: what a person reads first."""
    lines = [line.strip() for line in stacktrace.splitlines() if line.strip() and not line.startswith("\t")]
    first = lines[0] if lines else ""
    root = next((line for line in reversed(lines) if line.startswith("Caused by:")), "")
    return f"{first[:160]}{' ... ' + root[:160] if root else ''}"


@dataclass(frozen=True)
class _Appended:
    """A record of the source topic as the broker holds it: what the oracle judges (operators.oracle.decoded)."""

    value: bytes | None
    kafka_ts: int


def _appended(cfg: StackConfig, topic: str) -> list[_Appended]:
    """The source topic's records in their partition's order, read back: the stream and whatever a scenario
    put into it."""
    messages = read_all(cfg.kafka.bootstrap, [topic], f"faults-check-{uuid.uuid4().hex}", idle_seconds=2.0,
                        timeout=300)
    return [_Appended(m.value(), m.timestamp()[1]) for m in sorted(messages, key=lambda m: m.offset())]


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
    records = list(alarm_events(SimulationSpec(
        tenants=(tenant,), events=spec.events, stations=spec.stations, datapoints=spec.datapoints,
        out_of_order=spec.out_of_order, late=spec.late, malformed=spec.malformed, seed=spec.seed + index)))
    with contextlib.ExitStack() as around:
        if scenario.around is not None:
            around.enter_context(scenario.around(cfg))
        return _run(cfg, scenario, spec, index, say, started, tenant, keyspace, job, records)


def _run(cfg: StackConfig, scenario: Scenario, spec: RunSpec, index: int, say: Callable[[str], None],
         started: float, tenant: str, keyspace: str, job: Job, records: list) -> RunReport:
    topics = job.topics(tenant)
    rest = FlinkRest(cfg.flink.rest_url)
    settings = RunSettings(cfg.kafka.bootstrap, watermark_emit="on-event")
    job_id = submit_job(job, settings, rest, parallelism=1, partitions=1)
    say(f"tenant {tenant}: job {job_id} running; streaming {len(records):,} records at {spec.rate:g}/s")
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    target, watch, notes = "", None, []
    committed = _CommittedCount(cfg, topics.results)
    writer = WriterProcess(tenant, keyspace, cfg.log_dir / f"faults-writer-{tenant}.log")
    ctx = RunContext(cfg, job, tenant, job_id, rest, writer, committed, notes)
    try:
        sent: dict = {}
        feeder = threading.Thread(target=lambda: sent.update(result=produce(
            iter(records), cfg.kafka.bootstrap, len(records), rate=spec.rate, progress=None)), daemon=True)
        fed_at = time.monotonic()
        feeder.start()
        time.sleep(max(0.0, spec.at * len(records) / spec.rate - (time.monotonic() - fed_at)))
        target = scenario.target(ctx)
        checkpoints_before = _completed_checkpoints(cfg, job_id)
        struck_at = time.monotonic()
        scenario.strike(ctx, target)
        say(f"struck {target} ({scenario.strike.__name__})")
        progress = ((lambda: _writer_offset(cfg, job, tenant)) if scenario.watch == "cassandra"
                    else (lambda: committed.count))
        if not scenario.watch_from_mend:
            watch = _Watch(progress, struck_at)
        hold_s = scenario.hold_s * spec.hold_scale
        if scenario.mend is not None:
            time.sleep(max(0.0, hold_s - (time.monotonic() - struck_at)))
            scenario.mend(ctx, target)
            say(f"mended {target} ({scenario.mend.__name__})")
            if scenario.watch_from_mend:
                watch = _Watch(progress, time.monotonic())
        feeder.join(spec.events / spec.rate + 300)
        if "result" not in sent:
            raise RuntimeError("the simulated events were not all delivered (see the log with -v)")
        appended = _appended(cfg, topics.source)
        exp = check.expected(appended, tenant, WINDOW_MS, OUT_OF_ORDERNESS_MS)
        say(f"{len(appended):,} records on the source topic; waiting for the {len(exp.windows)} closed windows")
        results = _wait_for_results(cfg, rest, job_id, topics.results, len(exp.windows), spec.settle_s)
        cassandra = _wait_for_rows(cfg, keyspace, tenant, results, 120, notes)
        say(f"{len(results)} results committed, {len(cassandra)} rows in Cassandra; checking")
        dead = _source_offsets(cfg, topics.deadletter)
        notes.append(f"{len(dead):,} dead letters for the oracle's {len(exp.invalid):,} bad records")
        verdict = check.judge(exp, results, cassandra, dead, _source_offsets(cfg, topics.late), WINDOW_MS)
        fault = scenario.summary.format(node=target, hold=f"{hold_s:g}")
        failovers = _failovers(cfg, job_id, notes)
        if (code := writer.process.poll()) is not None:
            notes.append(f"the results writer exited by itself (exit {code}; its log: {writer.log_file})")
        if waits := writer.said("Cassandra is unavailable"):
            notes.append(f"the writer waited for Cassandra {waits} times and resumed "
                         f"{writer.said('Cassandra answers again')} times (its log: {writer.log_file})")
        return RunReport(scenario.name, index + 1, fault, round(struck_at - fed_at, 1), checkpoints_before,
                         None if watch is None or watch.recovered_s is None else round(watch.recovered_s, 1),
                         len(appended), len(results), verdict.equal, verdict.lost, verdict.doubled, failovers,
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


def _wait_for_rows(cfg: StackConfig, keyspace: str, tenant: str, results: list[tuple[check.Window, check.Counts]],
                   timeout: float, notes: list[str]) -> dict[check.Window, check.Counts]:
    """The Cassandra rows once they hold every committed result (the writer has caught up), or after `timeout`
    s (then noted)."""
    want, deadline, rows = dict(results), time.monotonic() + timeout, {}
    while True:
        try:
            rows = cassandra_windows(cfg.cassandra.port, keyspace, tenant)
        except CassandraUnavailableError as err:
            if time.monotonic() > deadline:
                notes.append(f"Cassandra could not be read: {err}")
                return {}
        if rows == want:
            return rows
        if time.monotonic() > deadline:
            notes.append(f"the results writer did not catch up in {timeout:.0f} s: {len(rows)} rows for "
                         f"{len(want)} committed windows")
            return rows
        time.sleep(2)


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


def _job_taskmanager(ctx: RunContext, wait_s: float = 30.0) -> str:
    """The TaskManager that runs the job's tasks (parallelism 1: all of them are on one), waited for up to
    `wait_s`: a job just RUNNING may not have its slot yet (a strike at moment 0 found none)."""
    deadline = time.monotonic() + wait_s
    while True:
        for tm in flink_rest(ctx.cfg, "/taskmanagers", timeout=10)["taskmanagers"]:
            if tm["freeSlots"] < tm["slotsNumber"]:
                return taskmanager_name(ctx.cfg, ctx.cfg.flink.taskmanager_hosts.index(tm["id"].split(":")[0]))
        if time.monotonic() > deadline:
            raise nodes.FaultError(f"no TaskManager ran a task of the job {ctx.job_id} within {wait_s:g} s")
        time.sleep(0.2)


def _register(*scenarios: Scenario) -> None:
    for s in scenarios:
        SCENARIOS[s.name] = s


def _on_node(fault: Callable[[StackConfig, str], object]) -> Callable[[RunContext, str], object]:
    """A fault primitive of faults.nodes as a scenario's strike or mend."""
    def act(ctx: RunContext, name: str) -> object:
        return fault(ctx.cfg, name)

    act.__name__ = fault.__name__
    return act


def _writer_at_a_fresh_result(ctx: RunContext) -> str:
    """The writer, once the job has just committed a result (waited for, at most 60 s): the moment it writes it.
    It commits a batch's offsets only after Cassandra took the rows and it has polled once more (0.1 s)."""
    seen, deadline = ctx.committed.count, time.monotonic() + 60
    while ctx.committed.count == seen and time.monotonic() < deadline:
        time.sleep(0.002)
    return f"the results writer (pid {ctx.writer.process.pid})"


def kill_writer(ctx: RunContext, name: str) -> None:
    """SIGKILL the writer; note how many committed results it had read but not committed (written again by the
    next writer)."""
    at_kill = ctx.committed.count
    ctx.writer.kill()
    topic, position = ctx.job.topics(ctx.tenant).results, _writer_offset(ctx.cfg, ctx.job, ctx.tenant)
    done = sum(1 for m in read_all(ctx.cfg.kafka.bootstrap, [topic], f"faults-check-{uuid.uuid4().hex}",
                                   idle_seconds=1.0, timeout=60) if m.offset() < position)
    ctx.notes.append(f"writer killed with {at_kill} results committed by the job, {done} of them committed by the "
                     f"writer: {at_kill - done} in flight, written again by the next")


def _writer_offset(cfg: StackConfig, job: Job, tenant: str) -> int:
    """The writer's committed offset in the results partition (0 before its first commit): it passes a result
    only once Cassandra took its row."""
    consumer = committed_consumer(cfg.kafka.bootstrap, writer_group(job.default_group), log_level=0)
    try:
        (position,) = consumer.committed([TopicPartition(job.topics(tenant).results, 0)], timeout=10)
        return max(0, position.offset)
    finally:
        consumer.close()


def restart_writer(ctx: RunContext, name: str) -> None:
    ctx.writer.start()


def _checkpoint_filesystem(ctx: RunContext) -> str:
    return f"the checkpoint folder's {disk.SIZE_MB} MiB filesystem"


def fill_checkpoint_disk(ctx: RunContext, name: str) -> None:
    written = disk.fill(disk.checkpoint_folder(ctx.cfg))
    ctx.notes.append(f"filled the checkpoint filesystem with {written / 2**20:.1f} MiB")


def free_checkpoint_disk(ctx: RunContext, name: str) -> None:
    """Remove the filler; note what the job's checkpoints did while the disk was full."""
    if (counts := _checkpoint_counts(ctx.cfg, ctx.job_id)) is not None:
        ctx.notes.append(f"while the disk was full: {counts['failed']} checkpoints failed, "
                         f"{counts['completed']} completed in all so far")
    disk.empty(disk.checkpoint_folder(ctx.cfg))
    for cause in _jobmanager_causes(ctx.cfg, ctx.job_id):
        ctx.notes.append(f"the JobManager's log: {cause}")


def _jobmanager_causes(cfg: StackConfig, job_id: str) -> list[str]:
    """The distinct root causes the JobManager logged for the job's checkpoints (its checkpoint history and
    exception history say only "Failure to finalize checkpoint"), job and checkpoint folders left out."""
    causes: dict[str, None] = {}
    for log_file in sorted((cfg.log_dir / "flink-jobmanager").glob("*.log*")):
        with log_file.open(errors="replace") as lines:
            for line in lines:
                if line.startswith("Caused by:") and job_id in line:
                    causes[line.split(f"/{job_id}")[0].strip()[:200]] = None
    return list(causes)


POISON_BURST = 100_000


def _source_topic(ctx: RunContext) -> str:
    return ctx.job.topics(ctx.tenant).source


def poison_burst(ctx: RunContext, topic: str) -> None:
    """A poison record, then POISON_BURST bad records, into the source topic beside the stream, at full speed."""
    started = time.monotonic()
    values = itertools.chain([poison.poison(ctx.tenant)],
                             poison.bad_records(ctx.tenant, POISON_BURST, int(time.time() * 1000)))
    sent = poison.produce_fast(ctx.cfg.kafka.bootstrap, topic, values)
    ctx.notes.append(f"{sent:,} bad records sent in {time.monotonic() - started:.1f} s")


_register(
    Scenario("broker-kill", "kill -9 {node} (leader of the results partition), back after {hold} s",
             _results_leader, _on_node(nodes.kill), _on_node(nodes.restart), hold_s=20),
    Scenario("taskmanager-loss", "kill -9 {node} (runs the job) for good", _job_taskmanager, _on_node(nodes.kill),
             None, restore=nodes.restart),
    Scenario("cassandra-stop", "stop {node} under the results writer, start it {hold} s later",
             lambda ctx: "cassandra", _on_node(nodes.stop), _on_node(nodes.restart), hold_s=30, watch="cassandra"),
    Scenario("broker-pause", "SIGSTOP {node} (leader of the results partition), SIGCONT after {hold} s",
             _results_leader, _on_node(nodes.pause), _on_node(nodes.resume), hold_s=20),
    Scenario("broker-cutoff", "cut {node} (leader of the results partition) off the network for {hold} s",
             _results_leader, _on_node(nodes.cut), _on_node(nodes.join), hold_s=30),
    Scenario("quorum-leader-cutoff", "cut {node} (the controller quorum's leader) off the network for {hold} s",
             lambda ctx: nodes.quorum_leader(ctx.cfg), _on_node(nodes.cut), _on_node(nodes.join), hold_s=30),
    Scenario("writer-kill", "kill -9 {node} as it writes a result, start it again {hold} s later",
             _writer_at_a_fresh_result, kill_writer, restart_writer, hold_s=10, watch="cassandra"),
    Scenario("checkpoint-disk-full", "fill {node} for {hold} s, then free it", _checkpoint_filesystem,
             fill_checkpoint_disk, free_checkpoint_disk, hold_s=20, watch_from_mend=True,
             around=disk.checkpoint_filesystem),
    Scenario("poison-burst", f"a poison record (every field bad) and {POISON_BURST:,} bad records into {{node}}",
             _source_topic, poison_burst, None),
)
