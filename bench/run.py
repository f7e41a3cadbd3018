"""`tenantstream bench`: the alarm-rate job against its peers, on the same events, in one run.

Throughput: events are produced once into fresh per-tenant topics; then each contender runs
in a subprocess of its own (so its peak memory, JVM included, is its own) and reports events
and seconds from its first record (or from Flink's RUNNING) to done. The flow-aggregates job is
measured the same way (unless --no-flow) on flow readings of the simulated plant, produced once
into the same tenants' flow topics; no baseline computes its aggregates, so it is compared with none.

Latency (bench/latency.py): each windowing contender runs live, again in its own subprocess,
on topics of its own while the probe appends events at a fixed rate below saturation and
times when each event's window result becomes visible; the flow job (unless --no-flow) the
same way on the simulated plant's flow readings.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import textwrap
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from itertools import count
from pathlib import Path
from typing import TextIO

from bench.latency import (
    Decoder,
    LatencySpec,
    ProbeReport,
    admin_client,
    decode_alarm_result,
    decode_flow_result,
    decode_json_result,
    group_ready,
    live_load,
    probe,
)
from bench.measure import READY, ROOT, Measurement, Running, run_measured
from bench.quix_env import QUIXSTREAMS_VERSION, quix_python
from connectors.cassandra import connect, drop_keyspaces
from connectors.kafka import delete_groups, delete_topics, ensure_topics
from stack.config import StackConfig
from stack.control import server_pids
from submit.local import writer_group
from submit.simulate import (
    FLOW_SENSORS,
    FLOW_TICK_MS,
    FLOW_WINDOW_MS,
    HOUR_MS,
    SimulationSpec,
    alarm_events,
    flow_history_ms,
    flow_readings,
    next_hour,
    produce,
)

RESULTS_DIR = ROOT / "bench" / "results"
ALARM_JOB, FLOW_JOB = "tenantstream alarm_rate", "tenantstream flow_aggregates"  # rows "<job> p<parallelism>"


@dataclass(frozen=True)
class BenchSpec:
    events: int = 2_000_000  # over all tenants
    tenants: int = 10
    sensors: int = 10_000  # over all tenants
    parallelism: tuple[int, ...] = (1, 2)
    # Runs of the hand-written SQL and the alarm-rate job at each parallelism, interleaved (hw, job, hw, job, ...);
    # each row shows its median run. One run of the same job moved by a quarter between bench runs (0.56 to 0.79
    # of the hand-written SQL): the JVMs' JIT compilers share the 2 cores with the job in a run of ~20 s.
    rounds: int = 3
    quix: bool = True
    flow: bool = True  # the flow-aggregates job too, on the plant's flow readings (off: --no-flow)
    # over all tenants; None: as many as events. The job plans in ~10 s since it looks its sensors up (a check run:
    # 9,472 readings/s at p1 on 200,000, start-up included), so 2,000,000 fit a contender's 30 minutes (run_measured)
    flow_events: int | None = None
    latency: LatencySpec | None = field(default_factory=LatencySpec)  # None: throughput only
    keep_data: bool = False  # leave the run's topics, consumer groups and keyspaces on the stack

    @property
    def flow_total(self) -> int:
        """Flow readings over all tenants: `flow_events`, or as many as the alarm events."""
        return self.events if self.flow_events is None else self.flow_events


def _workload(spec: BenchSpec, run_id: str) -> SimulationSpec:
    per_tenant = spec.sensors // spec.tenants
    stations = max(1, per_tenant // 10)
    # Each sensor reports about once a second: a 60 s window holds ~60 readings per sensor,
    # so results are a small stream next to the events. Clean data: the hand-written SQL
    # baseline has no dead-letter path and would stop at the first bad record.
    return SimulationSpec(tenants=tuple(f"b{run_id}t{i}" for i in range(spec.tenants)),
                          events=spec.events // spec.tenants, stations=stations, datapoints=per_tenant // stations,
                          malformed=0.0, late=0.0, old_schema=0.0, step_ms=max(1, 1000 // per_tenant))


def _flow_workload(spec: BenchSpec, work: SimulationSpec) -> SimulationSpec:
    """The flow readings: `spec.flow_total` over the alarm workload's tenants, as clean (no bad or late readings;
    as many out of order within the bound). Each tenant's plant has len(FLOW_SENSORS) sensors, each reading
    once a simulated minute; the job's windows are FLOW_WINDOW_MS (late would be measured by them). Days of
    readings by default: more than the 24 h ahead of their append times that a job takes, so they are a history
    that ends at the next whole hour, and the flow job runs with a bound that long (flow_max_behind_s)."""
    events = spec.flow_total // len(work.tenants)
    return dataclasses.replace(work, events=events, window_ms=FLOW_WINDOW_MS,
                               start_ms=next_hour() - flow_history_ms(events))


def flow_max_behind_s(flow: SimulationSpec) -> int:
    """How far behind its append time a reading of the flow workload may be: its whole history, and an hour."""
    return (flow_history_ms(flow.events) + HOUR_MS) // 1000


def run_bench(cfg: StackConfig, spec: BenchSpec, out: TextIO = sys.stdout) -> dict:
    run_id = uuid.uuid4().hex[:6]
    try:
        return _measure(cfg, spec, run_id, out)
    finally:
        if not spec.keep_data:
            try:
                out.write(remove_run_data(cfg, run_id) + "\n")
            except Exception as err:  # a failed clean-up must not hide the run's figures or its own failure
                out.write(f"could not remove bench {run_id}'s topics and keyspaces: {err}\n")


def _measure(cfg: StackConfig, spec: BenchSpec, run_id: str, out: TextIO) -> dict:
    work = _workload(spec, run_id)
    flow = _flow_workload(spec, work)
    topics = [f"{t}.sensors.alarms" for t in work.tenants]
    total = work.events * len(work.tenants)
    logs = RESULTS_DIR / f"bench-{run_id}.log"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out.write(f"bench {run_id}: {total:,} events, {len(work.tenants)} tenants, "
              f"{len(work.tenants) * work.stations * work.datapoints:,} sensors"
              + (f"; {flow.events * len(flow.tenants):,} flow readings, {len(flow.tenants) * len(FLOW_SENSORS):,} "
                 "sensors" if spec.flow else "")
              + f"; logs in {logs}\n")
    bootstrap = cfg.kafka.bootstrap
    flow_topics = [f"{t}.sensors.flow" for t in work.tenants] if spec.flow else []
    ensure_topics(bootstrap, topics + flow_topics, cfg.kafka.partitions)
    produce(alarm_events(work), bootstrap, total)
    if spec.flow:
        produce(flow_readings(flow), bootstrap, flow.events * len(flow.tenants))

    py, env = sys.executable, {**os.environ, "PYTHONPATH": str(ROOT)}

    def flink(kind: str, p: int, tag: str, *args: str) -> list[str]:
        return _flink_job_argv(kind, work.tenants, p, f"bench-{run_id}-{tag}{p}", *args)

    contenders: list[tuple[str, int, list[str], str]] = [  # name, parallelism, argv, workload
        ("kafka consumer drain (ceiling)", 1,
         [py, "-m", "bench.drain", "--bootstrap", bootstrap, "--topics", ",".join(topics), "--expected", str(total),
          "--group", f"bench-{run_id}-drain"], "alarms")]
    for p in spec.parallelism:
        pair = [(f"hand-written Flink SQL p{p}", p, flink("handwritten", p, "hw", "--results-topic",
                                                          f"bench-{run_id}.results.handwritten{p}"), "alarms"),
                (f"{ALARM_JOB} p{p}", p, flink("job", p, "job", "--keyspace", f"bench_{run_id}_{p}"), "alarms")]
        contenders += pair * spec.rounds  # each run reads the topics anew: its consumer group is its own
    peer_args = ["--bootstrap", bootstrap, "--topics", ",".join(topics), "--expected", str(total)]
    if spec.quix:
        contenders.append(("Quix Streams (exactly-once)", 1,
                           [str(quix_python(cfg.cache_dir)), "bench/quix_baseline.py", *peer_args,
                            "--output-topic", f"bench-{run_id}.results.quix", "--group", f"bench-{run_id}-quix"],
                           "alarms"))
    contenders.append(("plain Python loop", 1, [py, "-m", "bench.plain_python", *peer_args,
                                                "--output-topic", f"bench-{run_id}.results.plain", "--group",
                                                f"bench-{run_id}-plain"], "alarms"))
    contenders += [(f"{FLOW_JOB} p{p}", p, flink("flow", p, "flow", "--keyspace", f"bench_{run_id}_flow{p}",
                                                    "--max-behind", str(flow_max_behind_s(flow))), "flow")
                   for p in (spec.parallelism if spec.flow else ())]

    runs = []
    servers = server_pids(cfg)
    for i, (name, p, argv, workload) in enumerate(contenders, 1):
        out.write(f"[{i}/{len(contenders)}] {name} ...")
        out.flush()
        run = run_measured(_own_group(argv, i), env=env, log=logs, servers=servers)
        m = Measurement(name, run.report["events"], run.report["seconds"], run.peak_rss_bytes, p, run.wall_seconds,
                        details={**run.report, "cpu_seconds": run.cpu_seconds}, workload=workload)
        runs.append(m)
        out.write(f" {m.events_per_second:,.0f} events/s, peak {m.peak_rss_bytes / 2**20:,.0f} MiB\n")
    measurements = median_runs(runs)
    latency = (_latency_phase(cfg, spec.latency, spec.quix, run_id, logs, out, spec.parallelism, spec.flow)
               if spec.latency else [])
    return _report(spec, work, flow, measurements, latency, run_id, out)


def remove_run_data(cfg: StackConfig, run_id: str) -> str:
    """Delete what bench run `run_id` left on the stack, and say what went: its topics (twice the events, and
    the latency phase's), its consumer groups and its Cassandra keyspaces. Kept, they added up: after ~20 runs
    and many test runs the broker held 6,271 topics in 4.6 GB (408 MB from one full run), and spent 96 CPU-s
    loading them at each start."""
    topics = delete_topics(cfg.kafka.bootstrap, lambda topic: is_run_topic(run_id, topic))
    groups = delete_groups(cfg.kafka.bootstrap, lambda g: g.startswith(f"bench-{run_id}-"))
    cluster, session = connect(cfg.cassandra.port)
    try:
        keyspaces = drop_keyspaces(session, lambda k: k.startswith(f"bench_{run_id}_"))
    finally:
        cluster.shutdown()
    return (f"removed bench {run_id}'s {len(topics)} topics, {len(groups)} consumer groups and {len(keyspaces)} "
            "Cassandra keyspaces (--keep-data keeps them)")


def is_run_topic(run_id: str, topic: str) -> bool:
    """Whether `topic` is bench run `run_id`'s: of its tenants (b<run>t<i>, and l<run><k>t<i> in the latency
    phase) or its own (bench-<run>.results.*)."""
    return topic.startswith((f"b{run_id}t", f"l{run_id}", f"bench-{run_id}."))


def _own_group(argv: list[str], run: int) -> list[str]:
    """`argv` with its --group (a Flink contender's consumer group) made its run's own, so that a repeated
    run reads the topics from the start again; other argvs as they are."""
    if "--group" not in argv:
        return argv
    at = argv.index("--group") + 1
    return [*argv[:at], f"{argv[at]}-r{run}", *argv[at + 1:]]


def median_runs(runs: list[Measurement]) -> list[Measurement]:
    """One measurement per contender, in the order each first ran: a contender run once as it is; one run
    several times (BenchSpec.rounds) as its median run by seconds (of an even count, the slower middle one),
    with the highest peak memory of its runs and every run's figures under details["runs"]."""
    by_name: dict[str, list[Measurement]] = {}
    for m in runs:
        by_name.setdefault(m.name, []).append(m)
    merged = []
    for same in by_name.values():
        if len(same) == 1:
            merged.append(same[0])
            continue
        median = sorted(same, key=lambda m: m.seconds)[len(same) // 2]
        merged.append(dataclasses.replace(
            median, peak_rss_bytes=max(m.peak_rss_bytes for m in same),
            details={**median.details, "runs": [{"seconds": m.seconds, "events_per_second": round(m.events_per_second),
                                                 "peak_rss_bytes": m.peak_rss_bytes, "wall_seconds": m.wall_seconds}
                                                for m in same]}))
    return merged


def _flink_job_argv(kind: str, tenants: Sequence[str], parallelism: int, group: str, *args: str) -> list[str]:
    """The command line of a bench.flink_job contender (a Flink job in a subprocess of its own)."""
    return [sys.executable, "-m", "bench.flink_job", kind, "--tenants", ",".join(tenants), "--parallelism",
            str(parallelism), "--group", group, *args]


@dataclass(frozen=True)
class LiveContender:
    """A contender of the latency phase: how to start it, where its results go and how to read them.

    With `group` None it is an unbounded Flink job: it prints READY once RUNNING and is stopped with
    SIGINT when the probe is done. Otherwise it stops by itself after --expected records, and its
    consumer group `group` having the input topics assigned shows it is reading.
    """

    name: str
    tenants: tuple[str, ...]
    argv: list[str]
    results_topics: list[str]
    decode: Decoder
    group: str | None = None
    writer_group: str | None = None  # the consumer group of its results writer into Cassandra, if it has one
    parallelism: int = 1
    stream: str = "alarms"  # what it reads, <tenant>.sensors.<stream>, and so what the probe appends

    @property
    def inputs(self) -> list[str]:
        return [f"{t}.sensors.{self.stream}" for t in self.tenants]


def _live_contenders(cfg: StackConfig, spec: LatencySpec, quix: bool, run_id: str,
                     parallelism: Sequence[int] = (1,), flow: bool = False) -> list[LiveContender]:
    """The windowing contenders, the Flink ones at each parallelism (with `flow`, the flow job too), each on fresh
    tenants (fresh topics) of its own, same window for all."""
    py = sys.executable
    fresh = count()

    def tenants() -> tuple[str, ...]:
        k = next(fresh)
        return tuple(f"l{run_id}{k}t{i}" for i in range(spec.tenants))

    def group(tag: str) -> str:
        return f"bench-{run_id}-lat{tag}"

    def flink(kind: str, own: tuple[str, ...], p: int) -> list[str]:
        return _flink_job_argv(kind, own, p, group(f"{kind}{p}"), "--live", "--window-s", str(spec.window_ms // 1000))

    def tenantstream(kind: str, name: str, results: str, decode: Decoder, stream: str, p: int) -> LiveContender:
        """A tenantstream job end to end: its results topic per tenant, its writer into Cassandra."""
        own = tenants()
        return LiveContender(f"{name} p{p}", own, [*flink(kind, own, p), "--keyspace", f"bench_{run_id}_lat"],
                             [f"{t}.results.{results}" for t in own], decode,
                             writer_group=writer_group(group(f"{kind}{p}")), parallelism=p, stream=stream)

    def peer(name: str, tag: str, argv: list[str]) -> LiveContender:
        """A contender that stops by itself after the probe's events, its results on a topic of its own."""
        own, results = tenants(), f"bench-{run_id}.results.lat-{tag}"
        return LiveContender(
            name, own, [*argv, "--topics", ",".join(f"{t}.sensors.alarms" for t in own),
                        "--expected", str(spec.total_events), "--output-topic", results, "--group", group(tag),
                        "--window-ms", str(spec.window_ms), "--grace-ms", str(spec.out_of_orderness_ms)],
            [results], decode_json_result, group=group(tag))

    contenders = []
    for p in parallelism:
        own, results = tenants(), f"bench-{run_id}.results.lat-hw{p}"
        contenders += [
            LiveContender(f"hand-written Flink SQL p{p}", own,
                          [*flink("handwritten", own, p), "--results-topic", results], [results], decode_alarm_result,
                          parallelism=p),
            tenantstream("job", ALARM_JOB, "alarm_rate", decode_alarm_result, "alarms", p)]
    if quix:
        contenders.append(peer("Quix Streams (exactly-once)", "quix",
                               [str(quix_python(cfg.cache_dir)), "bench/quix_baseline.py"]))
    contenders.append(peer("plain Python loop", "plain", [py, "-m", "bench.plain_python"]))
    contenders += [tenantstream("flow", FLOW_JOB, "flow", decode_flow_result, "flow", p)
                   for p in (parallelism if flow else ())]
    return contenders


def _latency_phase(cfg: StackConfig, spec: LatencySpec, quix: bool, run_id: str, logs: Path,
                   out: TextIO, parallelism: Sequence[int] = (1,), flow: bool = False) -> list[dict]:
    """Run each live contender under the probe's load; one row of figures per contender."""
    bootstrap, env = cfg.kafka.bootstrap, {**os.environ, "PYTHONPATH": str(ROOT)}
    admin = admin_client(bootstrap)
    contenders = _live_contenders(cfg, spec, quix, run_id, parallelism, flow)
    out.write(f"\nlatency at {spec.rate:,.0f} events/s, {spec.total_events:,} events per contender "
              f"({spec.warmup_s:.0f} s warm-up, {spec.measure_s:.0f} s measured, {spec.tail_s:.0f} s tail)\n")
    rows = []
    for i, c in enumerate(contenders, 1):
        ensure_topics(bootstrap, [*c.inputs, *c.results_topics], cfg.kafka.partitions)
        found: list[ProbeReport] = []

        def progress(message: str) -> None:
            out.write(f" {message};")
            out.flush()

        def drive(running: Running, c: LiveContender = c, found: list = found) -> None:
            if c.group is None:
                waited = running.wait_until(lambda: running.printed(READY), "Flink job RUNNING")
            else:
                waited = running.wait_until(lambda: group_ready(admin, c.group, c.inputs), "partitions assigned")
            progress(f"ready after {waited:.0f} s")
            found.append(probe(bootstrap, live_load(c.stream, c.tenants, spec), c.results_topics, c.decode, spec,
                               writer_group=c.writer_group, progress=progress))
            if c.group is None:
                running.interrupt()

        out.write(f"[{i}/{len(contenders)}] {c.name}:")
        out.flush()
        run = run_measured(c.argv, env=env, log=logs, drive=drive)
        f = found[0].visible
        out.write(f" p50 {_ms(f.p50_latency_ms)} ms, p99 {_ms(f.p99_latency_ms)} ms, "
                  f"peak {run.peak_rss_bytes / 2**20:,.0f} MiB\n")
        rows.append({"name": c.name, "parallelism": c.parallelism, "workload": c.stream, **found[0].as_dict(),
                     "peak_rss_bytes": run.peak_rss_bytes, "wall_seconds": round(run.wall_seconds, 1),
                     "details": run.report})
    return rows


def _ms(value: float | None) -> str:
    """A latency for the table; None is a percentile that fell on a window never seen."""
    return "never" if value is None else f"{value:,.0f}"


def _latency_columns(figures: dict) -> str:
    return (f"{_ms(figures['p50_latency_ms']):>8} {_ms(figures['p99_latency_ms']):>8} "
            f"{_ms(figures['close_to_visible_p50_ms']):>10} {_ms(figures['close_to_visible_p99_ms']):>10}")


def _throughput_table(measurements: list[Measurement], out: TextIO) -> list[dict]:
    """The throughput table (printed) and its JSON rows. job/it compares the alarm-rate job at p1 with the
    contenders on the same alarm events; any other (the flow rows, or all without that job) gets n/a."""
    job = next((m for m in measurements if m.name == f"{ALARM_JOB} p1"), None)
    rows = []
    out.write(f"\n{'contender':<34} {'events/s':>10} {'job/it':>7} {'peak MiB':>9} {'wall s':>7} {'runs':>5}\n")
    for m in measurements:
        comparable = job is not None and m.workload == job.workload and m.events_per_second > 0
        ratio = job.events_per_second / m.events_per_second if comparable else None
        rows.append({**m.as_dict(), "job_p1_ratio": ratio})
        out.write(f"{m.name:<34} {m.events_per_second:>10,.0f} {'n/a' if ratio is None else f'{ratio:.2f}':>7} "
                  f"{m.peak_rss_bytes / 2**20:>9,.0f} {m.wall_seconds:>7.1f} {len(m.details.get('runs', [m])):>5}\n")
    legend = "job/it = the alarm-rate job's events/s at p1 over the contender's, on the same alarm events."
    repeated = [m for m in measurements if "runs" in m.details]
    if repeated:
        legend += (" A contender with several runs (interleaved with its pair) shows its median run and the highest "
                   "peak of its runs; every run: " + "; ".join(
                       f"{m.name} " + ", ".join(f"{r['events_per_second']:,}" for r in m.details["runs"])
                       for m in repeated) + " events/s.")
    if any(m.workload == "flow" for m in measurements):
        legend += (f" {FLOW_JOB}: the flow-aggregates job end to end on flow readings of the simulated "
                   f"plant ({len(FLOW_SENSORS)} sensors per tenant, {FLOW_WINDOW_MS // 60_000} min windows); no "
                   "baseline computes its aggregates, so its job/it is n/a (not comparable with the alarm rows).")
    out.write(textwrap.fill(legend, width=110) + "\n")
    return rows


def _cpu_table(measurements: list[Measurement], out: TextIO) -> None:
    """Where the machine's CPU went while each contender was measured: the table that shows what a contender
    costs beyond its own process (the alarm-rate job's rows in Cassandra, every contender's Kafka)."""
    measured = [m for m in measurements if "cpu_seconds" in m.details]
    if not measured:
        return
    servers = sorted({k for m in measured for k in m.details["cpu_seconds"]} - {"contender", "idle", "seconds"})
    out.write(f"\n{'CPU seconds while measured':<34} {'itself':>7}"
              + "".join(f" {s:>{max(6, len(s))}}" for s in servers) + f" {'idle':>6} {'of':>6}\n")
    for m in measured:
        cpu = m.details["cpu_seconds"]
        out.write(f"{m.name:<34} {cpu['contender']:>7.1f}"
                  + "".join(f" {cpu.get(s, 0.0):>{max(6, len(s))}.1f}" for s in servers)
                  + f" {cpu['idle']:>6.1f} {cpu['seconds'] * (os.cpu_count() or 1):>6.1f}\n")
    out.write(textwrap.fill(
        "CPU seconds of the contender's processes (a Flink contender's JVM included), of each server of the stack "
        "and of idle cores, from a Flink contender's RUNNING (a peer's start) to its report, in its median run; "
        "of = the seconds between those two moments times the cores.", width=110) + "\n")


def _report(spec: BenchSpec, work: SimulationSpec, flow: SimulationSpec, measurements: list[Measurement],
            latency: list[dict], run_id: str, out: TextIO) -> dict:
    rows = _throughput_table(measurements, out)
    _cpu_table(measurements, out)
    report = {
        "run": run_id, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE")
                                                                  * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "python": platform.python_version()},
        "versions": {"apache-flink": metadata.version("apache-flink"),
                     "confluent-kafka": metadata.version("confluent-kafka"), "quixstreams": QUIXSTREAMS_VERSION},
        "workload": {"events": work.events * len(work.tenants), "tenants": len(work.tenants),
                     "sensors": len(work.tenants) * work.stations * work.datapoints, "window_s": 60},
        "flow_workload": {"events": flow.events * len(flow.tenants), "tenants": len(flow.tenants),
                          "sensors": len(flow.tenants) * len(FLOW_SENSORS), "window_s": flow.window_ms // 1000,
                          "reading_every_s": FLOW_TICK_MS // 1000,
                          "mix": f"clean: no bad or late readings, {flow.out_of_order:.0%} out of order within the "
                                 f"{flow.out_of_orderness_ms // 1000} s bound"} if spec.flow else None,
        "contenders": rows,
        "latency": _latency_report(spec.latency, latency, out) if spec.latency else None,
        "not_measured": _not_measured(spec),
    }
    path = RESULTS_DIR / f"bench-{run_id}.json"
    path.write_text(json.dumps(report, indent=2))
    out.write(f"\nreport: {path}\n")
    return report


def _latency_report(spec: LatencySpec, rows: list[dict], out: TextIO) -> dict:
    """The latency table (printed) and its JSON: the setup, what the figures mean, one entry per contender."""
    window_s, late_s = spec.window_ms / 1000, spec.out_of_orderness_ms / 1000
    out.write(f"\n{'latency at ' + format(spec.rate, ',.0f') + ' events/s':<34} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'close p50':>10} {'close p99':>10} {'peak MiB':>9} {'missing':>8}\n")
    for r in rows:
        out.write(f"{r['name']:<34} {_latency_columns(r)} {r['peak_rss_bytes'] / 2**20:>9,.0f} "
                  f"{r['missing_windows']:>8,}\n")
        if "in_cassandra" in r:
            out.write(f"{'  its rows in Cassandra':<34} {_latency_columns(r['in_cassandra'])} {'':>9} "
                      f"{r['in_cassandra']['missing_windows']:>8,}\n")
    latency = (f"from an event's append to its window's result being committed on the results topic (read with "
               f"read_committed), over the {spec.phase_events()[1]:,} events appended in {spec.measure_s:.0f} s after "
               f"a {spec.warmup_s:.0f} s warm-up")
    close = f"visible - (window end + {late_s:g} s out-of-orderness), over the windows of those events"
    stored = ("the moment the job's results writer, which commits its offsets only after Cassandra acknowledged "
              "the rows, had committed past the result (polled every 0.25 s)")
    flow_sensors = spec.tenants * len(FLOW_SENSORS) if any(r["workload"] == "flow" for r in rows) else None
    flow = (f"{FLOW_JOB}: the simulated plant's flow readings, {len(FLOW_SENSORS)} sensors per tenant "
            f"({flow_sensors:,} in all); a result row stands for its sensor's readings in its window, and its rows "
            "for power sensors without readings (readings 0) for none" if flow_sensors else None)
    out.write(textwrap.fill(
        f"latency: {latency}. close: {close}. Every contender: {window_s:g} s tumbling windows, {spec.tenants} "
        f"tenants; the alarm-rate contenders {spec.sensors:,} sensors" + (f"; {flow}" if flow else "")
        + f". Its rows in Cassandra: {stored}. missing: measured windows never visible, counted as infinitely late "
        "('never' where a percentile reaches them). The Kafka drain computes no windows, so it has no latency.",
        width=110) + "\n")
    for r in rows:
        if r["undecodable_results"]:
            out.write(f"warning: {r['name']} wrote {r['undecodable_results']:,} results the probe could not decode\n")
    return {"offered_events_per_second": spec.rate, "tenants": spec.tenants, "sensors": spec.sensors,
            "flow_sensors": flow_sensors, "window_s": window_s, "out_of_orderness_s": late_s, "warmup_s": spec.warmup_s,
            "measure_s": spec.measure_s, "tail_s": spec.tail_s, "latency": latency, "close_to_visible": close,
            "in_cassandra": stored, "flow": flow, "contenders": rows}


def _not_measured(spec: BenchSpec) -> list[str]:
    notes = ["latency of the kafka consumer drain: it computes no windows, so no result becomes visible"]
    if spec.flow:
        notes.append(f"{FLOW_JOB} against a baseline: the hand-written SQL, Quix Streams and plain Python baselines "
                     "compute the alarm rate only, so the flow rows' job/it is n/a")
    else:
        notes.append(f"{FLOW_JOB}: skipped (--no-flow)")
    if spec.latency is None:
        notes.append("latency: skipped (--no-latency)")
    return notes
