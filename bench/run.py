"""`tenantstream bench`: the alarm-rate job against its peers, on the same events, in one run.

Throughput: events are produced once into fresh per-tenant topics; then each contender runs
in a subprocess of its own (so its peak memory, JVM included, is its own) and reports events
and seconds from its first record (or from Flink's RUNNING) to done.

Latency (bench/latency.py): each windowing contender runs live, again in its own subprocess,
on topics of its own while the probe appends events at a fixed rate below saturation and
times when each event's window result becomes visible.
"""

from __future__ import annotations

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
from pathlib import Path
from typing import TextIO

from bench.latency import (
    Decoder,
    LatencySpec,
    ProbeReport,
    admin_client,
    decode_avro_result,
    decode_json_result,
    group_ready,
    probe,
)
from bench.measure import READY, ROOT, Measurement, Running, run_measured
from bench.quix_env import QUIXSTREAMS_VERSION, quix_python
from connectors.kafka import ensure_topics
from stack.config import StackConfig
from submit.local import writer_group
from submit.simulate import SimulationSpec, alarm_events, produce

RESULTS_DIR = ROOT / "bench" / "results"


@dataclass(frozen=True)
class BenchSpec:
    events: int = 2_000_000  # over all tenants
    tenants: int = 10
    sensors: int = 10_000  # over all tenants
    parallelism: tuple[int, ...] = (1, 2)
    quix: bool = True
    latency: LatencySpec | None = field(default_factory=LatencySpec)  # None: throughput only


def _workload(spec: BenchSpec, run_id: str) -> SimulationSpec:
    per_tenant = spec.sensors // spec.tenants
    stations = max(1, per_tenant // 10)
    # Each sensor reports about once a second: a 60 s window holds ~60 readings per sensor,
    # so results are a small stream next to the events. Clean data: the hand-written SQL
    # baseline has no dead-letter path and would stop at the first bad record.
    return SimulationSpec(tenants=tuple(f"b{run_id}t{i}" for i in range(spec.tenants)),
                          events=spec.events // spec.tenants, stations=stations, datapoints=per_tenant // stations,
                          malformed=0.0, late=0.0, old_schema=0.0, step_ms=max(1, 1000 // per_tenant))


def run_bench(cfg: StackConfig, spec: BenchSpec, out: TextIO = sys.stdout) -> dict:
    run_id = uuid.uuid4().hex[:6]
    work = _workload(spec, run_id)
    topics = [f"{t}.sensors.alarms" for t in work.tenants]
    total = work.events * len(work.tenants)
    bootstrap = cfg.kafka.bootstrap
    logs = RESULTS_DIR / f"bench-{run_id}.log"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out.write(f"bench {run_id}: {total:,} events, {len(work.tenants)} tenants, "
              f"{len(work.tenants) * work.stations * work.datapoints:,} sensors; logs in {logs}\n")
    ensure_topics(bootstrap, topics, cfg.kafka.partitions)
    produce(alarm_events(work), bootstrap, total)

    py, env = sys.executable, {**os.environ, "PYTHONPATH": str(ROOT)}
    contenders: list[tuple[str, int, list[str], dict]] = [
        ("kafka consumer drain (ceiling)", 1,
         [py, "-m", "bench.drain", "--topics", ",".join(topics), "--expected", str(total)], env)]
    for p in spec.parallelism:
        contenders.append((f"hand-written Flink SQL p{p}", p,
                           [py, "-m", "bench.flink_job", "handwritten", "--tenants", ",".join(work.tenants),
                            "--parallelism", str(p), "--group", f"bench-{run_id}-hw{p}",
                            "--results-topic", f"bench-{run_id}.results.handwritten{p}"], env))
        contenders.append((f"tenantstream alarm_rate p{p}", p,
                           [py, "-m", "bench.flink_job", "job", "--tenants", ",".join(work.tenants),
                            "--parallelism", str(p), "--group", f"bench-{run_id}-job{p}",
                            "--keyspace", f"bench_{run_id}_{p}"], env))
    peer_args = ["--topics", ",".join(topics), "--expected", str(total)]
    if spec.quix:
        contenders.append(("Quix Streams (exactly-once)", 1,
                           [str(quix_python(cfg.cache_dir)), "bench/quix_baseline.py", *peer_args,
                            "--output-topic", f"bench-{run_id}.results.quix"], env))
    contenders.append(("plain Python loop", 1, [py, "-m", "bench.plain_python", *peer_args,
                                                "--output-topic", f"bench-{run_id}.results.plain"], env))

    measurements = []
    for i, (name, p, argv, child_env) in enumerate(contenders, 1):
        out.write(f"[{i}/{len(contenders)}] {name} ...")
        out.flush()
        report, peak, wall = run_measured(argv, env=child_env, log=logs)
        m = Measurement(name, report["events"], report["seconds"], peak, p, wall, details=report)
        measurements.append(m)
        out.write(f" {m.events_per_second:,.0f} events/s, peak {peak / 2**20:,.0f} MiB\n")
    latency = (_latency_phase(cfg, spec.latency, spec.quix, run_id, logs, out, spec.parallelism)
               if spec.latency else [])
    return _report(spec, work, measurements, latency, run_id, out)


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

    @property
    def inputs(self) -> list[str]:
        return [f"{t}.sensors.alarms" for t in self.tenants]


def _live_contenders(cfg: StackConfig, spec: LatencySpec, quix: bool, run_id: str,
                     parallelism: Sequence[int] = (1,)) -> list[LiveContender]:
    """The windowing contenders, the Flink ones at each parallelism, each on fresh tenants (fresh topics) of
    its own, same window for all."""
    py = sys.executable

    def tenants(k: int) -> tuple[str, ...]:
        return tuple(f"l{run_id}{k}t{i}" for i in range(spec.tenants))

    def flink(kind: str, k: int, p: int) -> list[str]:
        return [py, "-m", "bench.flink_job", kind, "--live", "--tenants", ",".join(tenants(k)), "--parallelism",
                str(p), "--group", group(f"{kind}{p}"), "--window-s", str(spec.window_ms // 1000)]

    def group(tag: str) -> str:
        return f"bench-{run_id}-lat{tag}"

    def peer(k: int, tag: str) -> list[str]:
        return ["--topics", ",".join(f"{t}.sensors.alarms" for t in tenants(k)), "--expected", str(spec.total_events),
                "--output-topic", f"bench-{run_id}.results.lat-{tag}", "--group", group(tag),
                "--window-ms", str(spec.window_ms), "--grace-ms", str(spec.out_of_orderness_ms)]

    contenders = []
    for p in parallelism:  # tenants 0 and 1 at p1, 4 and 5 at p2, ...
        hw, job = 4 * (p - 1), 4 * (p - 1) + 1
        contenders += [
            LiveContender(f"hand-written Flink SQL p{p}", tenants(hw),
                          [*flink("handwritten", hw, p), "--results-topic", f"bench-{run_id}.results.lat-hw{p}"],
                          [f"bench-{run_id}.results.lat-hw{p}"], decode_avro_result, parallelism=p),
            LiveContender(f"tenantstream alarm_rate p{p}", tenants(job),
                          [*flink("job", job, p), "--keyspace", f"bench_{run_id}_lat"],
                          [f"{t}.results.alarm_rate" for t in tenants(job)], decode_avro_result,
                          writer_group=writer_group(group(f"job{p}")), parallelism=p)]
    if quix:
        contenders.append(LiveContender(
            "Quix Streams (exactly-once)", tenants(2), [str(quix_python(cfg.cache_dir)), "bench/quix_baseline.py",
                                                        *peer(2, "quix")],
            [f"bench-{run_id}.results.lat-quix"], decode_json_result, group=group("quix")))
    contenders.append(LiveContender(
        "plain Python loop", tenants(3), [py, "-m", "bench.plain_python", *peer(3, "plain")],
        [f"bench-{run_id}.results.lat-plain"], decode_json_result, group=group("plain")))
    return contenders


def _latency_phase(cfg: StackConfig, spec: LatencySpec, quix: bool, run_id: str, logs: Path,
                   out: TextIO, parallelism: Sequence[int] = (1,)) -> list[dict]:
    """Run each live contender under the probe's load; one row of figures per contender."""
    bootstrap, env = cfg.kafka.bootstrap, {**os.environ, "PYTHONPATH": str(ROOT)}
    admin = admin_client(bootstrap)
    contenders = _live_contenders(cfg, spec, quix, run_id, parallelism)
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
            found.append(probe(bootstrap, list(c.tenants), c.results_topics, c.decode, spec,
                               writer_group=c.writer_group, progress=progress))
            if c.group is None:
                running.interrupt()

        out.write(f"[{i}/{len(contenders)}] {c.name}:")
        out.flush()
        report, peak, wall = run_measured(c.argv, env=env, log=logs, drive=drive)
        f = found[0].visible
        out.write(f" p50 {_ms(f.p50_latency_ms)} ms, p99 {_ms(f.p99_latency_ms)} ms, peak {peak / 2**20:,.0f} MiB\n")
        rows.append({"name": c.name, "parallelism": c.parallelism, **found[0].as_dict(), "peak_rss_bytes": peak,
                     "wall_seconds": round(wall, 1), "details": report})
    return rows


def _ms(value: float | None) -> str:
    """A latency for the table; None is a percentile that fell on a window never seen."""
    return "never" if value is None else f"{value:,.0f}"


def _latency_columns(figures: dict) -> str:
    return (f"{_ms(figures['p50_latency_ms']):>8} {_ms(figures['p99_latency_ms']):>8} "
            f"{_ms(figures['close_to_visible_p50_ms']):>10} {_ms(figures['close_to_visible_p99_ms']):>10}")


def _report(spec: BenchSpec, work: SimulationSpec, measurements: list[Measurement], latency: list[dict],
            run_id: str, out: TextIO) -> dict:
    by_name = {m.name: m for m in measurements}
    job = by_name.get("tenantstream alarm_rate p1")
    rows = []
    out.write(f"\n{'contender':<34} {'events/s':>10} {'job/it':>7} {'peak MiB':>9} {'wall s':>7}\n")
    for m in measurements:
        ratio = job.events_per_second / m.events_per_second if job and m.events_per_second else None
        rows.append({**m.as_dict(), "job_p1_ratio": ratio})
        out.write(f"{m.name:<34} {m.events_per_second:>10,.0f} {ratio or 0:>7.2f} "
                  f"{m.peak_rss_bytes / 2**20:>9,.0f} {m.wall_seconds:>7.1f}\n")
    out.write("job/it = the alarm-rate job's events/s at p1 over the contender's\n")
    report = {
        "run": run_id, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PAGE_SIZE")
                                                                  * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "python": platform.python_version()},
        "versions": {"apache-flink": metadata.version("apache-flink"),
                     "confluent-kafka": metadata.version("confluent-kafka"), "quixstreams": QUIXSTREAMS_VERSION},
        "workload": {"events": work.events * len(work.tenants), "tenants": len(work.tenants),
                     "sensors": len(work.tenants) * work.stations * work.datapoints, "window_s": 60},
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
    out.write(textwrap.fill(
        f"latency: {latency}. close: {close}. Every contender: {window_s:g} s tumbling windows, {spec.tenants} "
        f"tenants, {spec.sensors:,} sensors. Its rows in Cassandra: {stored}. missing: measured windows never "
        "visible, counted as infinitely late ('never' where a percentile reaches them). The Kafka drain computes "
        "no windows, so it has no latency.", width=110) + "\n")
    for r in rows:
        if r["undecodable_results"]:
            out.write(f"warning: {r['name']} wrote {r['undecodable_results']:,} results the probe could not decode\n")
    return {"offered_events_per_second": spec.rate, "tenants": spec.tenants, "sensors": spec.sensors,
            "window_s": window_s, "out_of_orderness_s": late_s, "warmup_s": spec.warmup_s,
            "measure_s": spec.measure_s, "tail_s": spec.tail_s, "latency": latency, "close_to_visible": close,
            "in_cassandra": stored, "contenders": rows}


def _not_measured(spec: BenchSpec) -> list[str]:
    notes = ["latency of the kafka consumer drain: it computes no windows, so no result becomes visible"]
    if spec.latency is None:
        notes.append("latency: skipped (--no-latency)")
    return notes
