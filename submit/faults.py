"""`tenantstream faults [NAME...]`: fault scenarios on the multi-node stack, each run checked against the oracle,
a table printed and a JSON report written under faults/results/."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

from faults.run import SCENARIOS, RunReport, RunSpec, run
from stack import control
from stack.config import StackConfig, use_profile
from submit.arguments import SHARE, CommandError, Count

RESULTS_DIR = Path(__file__).parents[1] / "faults" / "results"
# Where in the stream the fault strikes, run after run: mid-stream, early (around the first checkpoints and
# transactions), late (the writer and the last windows behind).
MOMENTS = (0.4, 0.1, 0.75)
FULL = RunSpec()
SHORT = dataclasses.replace(FULL, events=3000, hold_scale=0.5, settle_s=150.0)

SCENARIO_HELP = {
    "broker-kill": "kill -9 the Kafka node that leads the results partition (where the job's transactions "
                   "commit) mid-stream, start it again 20 s later",
    "taskmanager-loss": "kill -9 the TaskManager that runs the job, for good: the job must go on from its last "
                        "checkpoint on the other TaskManager's slots, with no one's help",
    "cassandra-stop": "stop Cassandra (SIGTERM) under the results writer, start it again 30 s later (a node "
                      "restart takes ~50 s more here); the writer waits and writes again by itself",
    "broker-pause": "SIGSTOP the Kafka node that leads the results partition for 20 s (a long GC pause), "
                    "then SIGCONT",
    "broker-cutoff": "cut the Kafka node that leads the results partition off the network for 30 s (its veth "
                     "down on the host), then join it again",
    "quorum-leader-cutoff": "cut the KRaft controller quorum's leader (the active controller, from "
                            "describeMetadataQuorum) off the network for 30 s, then join it again",
    "writer-kill": "kill -9 the results writer (`tenantstream writer`, a process of its own) within "
                   "milliseconds of a newly committed result, while its rows are in flight; start it again "
                   "10 s later",
    "checkpoint-disk-full": "the checkpoint folder on a 32 MiB ext4 loop mount made by the run (in the host's "
                            "and every Flink node's mount namespace), filled up mid-stream for 20 s, then freed: "
                            "the job's checkpoints fail and it restarts, then it recovers; the mount is undone "
                            "at the end",
    "poison-burst": "a poison record (every field of the alarm event hostile at once) and a burst of 100,000 bad "
                    "records of six kinds into the source topic mid-stream: every one must be a dead letter, "
                    "the job must keep reading",
}


def _row(r: RunReport) -> str:
    recovered = "-" if r.recovered_s is None else f"{r.recovered_s:g}"
    checkpoints = "-" if r.checkpoints_before is None else f"{r.checkpoints_before}"
    return (f"| {r.scenario} #{r.run} | {r.fault} | {r.injected_at_s:g} | {checkpoints} | {recovered} | "
            f"{r.records_in:,} | "
            f"{r.results_committed:,} | {'yes' if r.equal else 'no'} | {r.lost} | {r.doubled} | "
            f"{r.job_failovers} | {r.writer_restarts} |")


def format_table(reports: list[RunReport]) -> str:
    """The runs as a Markdown table (what the README shows)."""
    head = ("| run | fault | injected at s | checkpoints before | results again after s | records in | "
            "results committed | equal to oracle | lost | doubled | job failovers | writer restarts |")
    return "\n".join([head, "|" + "---|" * 12, *(_row(r) for r in reports)])


def _faults(args: argparse.Namespace) -> int:
    started = time.monotonic()
    names = args.scenarios or list(SCENARIOS)
    if unknown := [n for n in names if n not in SCENARIOS]:
        raise CommandError(f"no fault scenario {', '.join(unknown)}; the scenarios: {', '.join(SCENARIOS)}")
    cfg = use_profile("cluster")
    down = [r.name for r in control.status(cfg) if r.state != "up"]
    if down:
        raise CommandError(f"the cluster profile is not up ({', '.join(down)}); start it as root with "
                           "`tenantstream stack up --profile cluster`", code=1)
    base = SHORT if args.short else FULL
    reports: list[RunReport] = []
    try:
        _run_all(cfg, names, base, args, reports)
    finally:  # the runs that ended are reported even when a later one broke off
        if reports:
            _write(reports, args.short, started)
    return 0 if all(r.equal for r in reports) else 1


def _run_all(cfg: StackConfig, names: list[str], base: RunSpec, args: argparse.Namespace,
             reports: list[RunReport]) -> None:
    """Run each scenario `args.runs` times, adding each run's report to `reports` as it ends."""
    for name in names:
        for i in range(args.runs):
            at = MOMENTS[i % len(MOMENTS)] if args.at is None else args.at
            spec = dataclasses.replace(base, at=at, keep=args.keep)
            print(f"{name} run {i + 1}/{args.runs}: {spec.events:,} records at {spec.rate:g}/s, the fault at "
                  f"{spec.at:.0%} of the stream ...", file=sys.stderr)
            report = run(cfg, SCENARIOS[name], spec, i)
            reports.append(report)
            print(_row(report), file=sys.stderr)
            for note in report.notes:
                print(f"  {note}", file=sys.stderr)


def _write(reports: list[RunReport], short: bool, started: float) -> None:
    """Print the table and write it as JSON under faults/results/."""
    print(format_table(reports))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"faults-{stamp}.json"
    path.write_text(json.dumps({"when": stamp, "short": short, "runs": [dataclasses.asdict(r) for r in reports],
                                "seconds": round(time.monotonic() - started, 1)}, indent=2))
    print(f"report written to {path}", file=sys.stderr)


def add_command(commands: argparse._SubParsersAction) -> None:
    """Add `faults` to the CLI's parsers."""
    scenarios = "\n".join(textwrap.fill(f"{name}: {text}", 79, initial_indent="  ", subsequent_indent="    ")
                          for name, text in SCENARIO_HELP.items())
    parser = commands.add_parser(
        "faults", help="fault scenarios on the multi-node stack (`stack up --profile cluster`), each checked "
                       "against the oracle",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            "Each run: a tenant of its own, the alarm-rate job submitted to the cluster profile's Flink "
            f"(parallelism 1, on-event watermarks), its results writer beside it, {FULL.events:,} simulated alarm "
            f"events ({SHORT.events:,} with --short) streamed at {FULL.rate:g}/s with out-of-order, late and bad "
            "records; the fault strikes at 40%, 10% or 75% of the stream (run 1, 2, 3, ...; --at picks one "
            "moment for all). Then an exact check "
            "of the committed results topic and the Cassandra rows against the oracle: every on-time record "
            "counted once, every late one once (on the late topic or in its window), every bad one on the "
            "dead-letter topic. Prints a table (fault, when, seconds until results flowed again, records in, "
            "results committed, equal to the oracle, lost, doubled) and writes it as JSON under faults/results/. "
            "Exit 0 if every run equals the oracle, 1 otherwise.", 79),
        epilog=f"scenarios (default: all, in this order):\n{scenarios}")
    parser.add_argument("scenarios", nargs="*", metavar="NAME", help="scenarios to run (default: all)")
    parser.add_argument("--runs", type=Count("runs", 1, 100), default=1, help="runs of each scenario (default 1)")
    parser.add_argument("--short", action="store_true",
                        help=f"{SHORT.events:,} events and half the fault's hold: the CI version")
    parser.add_argument("--at", type=SHARE, default=None, metavar="SHARE",
                        help="strike every run at this share of the stream instead (0: as the stream starts, "
                             "before the job's first checkpoint; the table's 'checkpoints before' says)")
    parser.add_argument("--keep", action="store_true", help="leave each run's topics and keyspace on the cluster")
    parser.set_defaults(func=_faults)
