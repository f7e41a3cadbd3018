"""`tenantstream bench`: the alarm-rate job against its peers, on the same events, in one run.

Events are produced once into fresh per-tenant topics; then each contender runs in
a subprocess of its own (so its peak memory, JVM included, is its own) and reports
events and seconds from its first record (or from Flink's RUNNING) to done.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass
from importlib import metadata
from typing import TextIO

from bench.measure import ROOT, Measurement, run_measured
from bench.quix_env import QUIXSTREAMS_VERSION, quix_python
from connectors.kafka import ensure_topics
from stack.config import StackConfig
from submit.simulate import SimulationSpec, alarm_events, produce

RESULTS_DIR = ROOT / "bench" / "results"


@dataclass(frozen=True)
class BenchSpec:
    events: int = 2_000_000  # over all tenants
    tenants: int = 10
    sensors: int = 10_000  # over all tenants
    parallelism: tuple[int, ...] = (1, 2)
    quix: bool = True


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
    return _report(spec, work, measurements, run_id, out)


def _report(spec: BenchSpec, work: SimulationSpec, measurements: list[Measurement], run_id: str,
            out: TextIO) -> dict:
    by_name = {m.name: m for m in measurements}
    job = by_name.get("tenantstream alarm_rate p1")
    rows = []
    out.write(f"\n{'contender':<34} {'events/s':>10} {'job/it':>7} {'peak MiB':>9} {'wall s':>7}\n")
    for m in measurements:
        ratio = job.events_per_second / m.events_per_second if job and m.events_per_second else None
        rows.append({**m.as_dict(), "job_p1_ratio": ratio})
        out.write(f"{m.name:<34} {m.events_per_second:>10,.0f} {ratio or 0:>7.2f} "
                  f"{m.peak_rss_bytes / 2**20:>9,.0f} {m.wall_seconds:>7.1f}\n")
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
        "not_measured": ["latency (p50/p99) at a fixed offered rate: not built yet"],
    }
    path = RESULTS_DIR / f"bench-{run_id}.json"
    path.write_text(json.dumps(report, indent=2))
    out.write(f"\njob/it = the alarm-rate job's events/s at p1 over the contender's; report: {path}\n")
    return report
