"""`tenantstream`: one command for the local stack, the demo and the jobs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from bench.latency import LatencySpec
from connectors.kafka import ensure_topics
from connectors.metadata import MetadataStore
from connectors.results import DEFAULT_KEYSPACE, NoSuchTableError, read_windows
from dashboard.server import add_serve_command
from jobs.catalog import BUILT_IN_JOBS, METADATA_REFRESH_S
from jobs.flow_aggregates import flow_aggregates_job
from jobs.sensor_health import DEFAULT_SILENCE_MINUTES, sensor_health_job
from jobs.tables import RESULT_TABLES
from operators.flow import metadata_from_assets
from operators.ranges import TIME_FORMATS, parse_query
from operators.windows import tumbling
from pipeline.errors import TenantstreamError
from pipeline.job import DEFAULT_MAX_BEHIND_S, Job, ResultTable, RunSettings
from pipeline.sql import STOP_AT_LATEST, WATERMARK_EMITS, parse_partition_offsets
from schemas.assets import Assets
from stack import control
from stack.config import PROFILES, StackConfig, load_config, use_profile
from stack.servers import servers
from submit import faults as faults_command
from submit import rollup as rollup_command
from submit import tenants
from submit.arguments import (
    KEYSPACE_NAME,
    MAX_BEHIND,
    OUT_OF_ORDERNESS,
    PARALLELISM,
    SHARE,
    WINDOW_SECONDS,
    ArgumentParser,
    CommandError,
    Count,
    Name,
    Names,
    Number,
    one_line,
)
from submit.assets import format_tenant, read_assets
from submit.cluster_commands import add_commands
from submit.demo import run_demo
from submit.local import latest_checkpoint, run_job
from submit.query import format_answer, json_lines
from submit.simulate import (
    FLOW_WINDOW_MS,
    HOUR_MS,
    MAX_SPAN_AHEAD_MS,
    HeartbeatSpec,
    SimulationSpec,
    alarm_events,
    flow_history_ms,
    flow_readings,
    flow_topology,
    heartbeats,
    next_hour,
    produce,
)
from submit.tenant_apps import DEFAULT_BASE, STATUSES, AppRejected, apps, upload

if TYPE_CHECKING:
    from bench.run import BenchSpec


def _stack_config(args: argparse.Namespace) -> StackConfig:
    """The stack config of `--profile` (which then holds for the whole command), else the configured one."""
    return use_profile(args.profile) if args.profile else load_config()


def _stack_up(args: argparse.Namespace) -> int:
    control.up(_stack_config(args))
    return 0


def _stack_down(args: argparse.Namespace) -> int:
    stopped = control.down(_stack_config(args), purge=args.purge)
    if not stopped:
        print("no server of the stack was running", file=sys.stderr)
    return 0


def _stack_status(args: argparse.Namespace) -> int:
    rows = control.status(_stack_config(args))
    print(control.format_status(rows))
    return 0 if all(r.state == "up" for r in rows) else 3


def _stack_logs(args: argparse.Namespace) -> int:
    cfg = _stack_config(args)
    if args.server not in {s.name for s in servers(cfg)}:
        raise CommandError(f"the {args.profile or 'configured'} stack has no server {args.server!r}; it has: "
                           f"{', '.join(s.name for s in servers(cfg))}")
    path = control.log_file(cfg, args.server)
    if not path.exists():
        print(f"{args.server} has no log yet ({path}); start it with `tenantstream stack up`",
              file=sys.stderr)
        return 1
    tail = ["tail", "-n", str(args.lines)] + (["-F"] if args.follow else []) + [str(path)]
    return subprocess.call(tail)


# The counts the commands take, with their bounds (submit.arguments refuses anything else in one line).
_EVENTS = Count("events per tenant", 1, 100_000_000)
_STATIONS = Count("stations per tenant", 1, 100_000)
_SENSORS = Count("sensors per tenant", 1, 1_000_000)
_RATE = Number("records per second", 0, 10_000_000)
_SEED = Count("a seed", 0, 2**63 - 1)
_LINES = Count("lines", 1, 1_000_000)
_LIMIT = Count("a limit", 1, 1_000_000)
_DATABASE = Name("database")
_BENCH_EVENTS = Count("events", 1, 1_000_000_000)
_FLOW_EVENTS = Count("flow events", 1, 1_000_000_000)
_BENCH_TENANTS = Count("tenants", 1, 1_000)
_BENCH_SENSORS = Count("sensors", 1, 10_000_000)
_ROUNDS = Count("rounds", 1, 100)
_ROLLUP_WINDOWS = Count("windows", 100, 100_000_000)
_LATENCY_RATE = Number("events per second", 0, 10_000_000, above=True)
_LATENCY_SECONDS = Number("seconds", 0, 86_400, above=True)


def _offsets(text: str) -> str:
    if not text:
        return text  # unbounded
    try:
        parse_partition_offsets(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _spec(args: argparse.Namespace) -> SimulationSpec:
    return SimulationSpec(tenants=args.tenants, events=args.events, stations=args.stations,
                          out_of_order=args.out_of_order, late=args.late, malformed=args.malformed,
                          seed=args.seed, rate=args.rate)


def _simulate(args: argparse.Namespace) -> int:
    cfg = load_config()
    spec = _spec(args)
    if args.stream == "flow":  # late readings are then two windows of the flow job behind
        spec = dataclasses.replace(spec, window_ms=FLOW_WINDOW_MS)
        history = flow_history_ms(spec.events)
        if history > MAX_SPAN_AHEAD_MS:  # more than fits ahead of the append times: a history ending now
            spec = dataclasses.replace(spec, start_ms=next_hour() - history)
            print(f"the readings are a history of up to {history // HOUR_MS} h ending at the next whole hour: "
                  f"run the flow job with --max-behind {history // 1000 + 3600}", file=sys.stderr)
    if args.stream == "heartbeats":
        records = heartbeats(HeartbeatSpec(tenants=spec.tenants, events=spec.events, sensors=args.sensors,
                                           outage=args.outage, malformed=spec.malformed, seed=spec.seed,
                                           rate=spec.rate))
    else:
        records = flow_readings(spec) if args.stream == "flow" else alarm_events(spec)
    topics = [f"{t}.sensors.{args.stream}" for t in spec.tenants]
    ensure_topics(cfg.kafka.bootstrap, topics, cfg.kafka.partitions)
    sent = produce(records, cfg.kafka.bootstrap, spec.events * len(spec.tenants), rate=spec.rate)
    print("sent " + ", ".join(f"{kind}: {n:,}" for kind, n in sorted(sent.items())) + f" to {', '.join(topics)}")
    return 0


_SILENCE_MINUTES = Count("silence minutes", 1, 7 * 24 * 60)


def _silence(text: str) -> dict[str, int]:
    """'10' or '10,acme=5,globex=15': the default N, then each tenant's own (key "" is the default)."""
    minutes = {"": DEFAULT_SILENCE_MINUTES}
    given: set[str] = set()
    for item in text.split(","):
        tenant, _, value = item.strip(" ").rpartition("=")
        if tenant:
            Name()(tenant)
        if tenant in given:
            raise argparse.ArgumentTypeError(f"{tenant or 'the default'} is given more than once")
        given.add(tenant)
        try:
            minutes[tenant] = _SILENCE_MINUTES(value)
        except argparse.ArgumentTypeError as err:
            raise argparse.ArgumentTypeError(f"{err}; write MINUTES or TENANT=MINUTES, like 10,acme=5") from None
    return minutes


def _job(args: argparse.Namespace) -> tuple[Job, tuple[ResultTable, ...]]:
    """The job `run` was asked for (metadata from the command line, not the store), and the Cassandra tables of
    its results."""
    built_in = BUILT_IN_JOBS[args.job]
    window = tumbling(seconds=args.window) if args.window else built_in.window
    if args.job == "sensor_health":
        silence = args.silence or {"": DEFAULT_SILENCE_MINUTES}
        job = sensor_health_job(args.tenants, window=window,
                                silence_minutes=lambda tenant: silence.get(tenant, silence[""]))
    elif args.job == "flow_aggregates":
        assets = read_assets(Path(args.assets)) if args.assets else flow_topology(args.tenants)
        for tenant in sorted(set(args.tenants) - {s.tenant for s in assets.sensors}):
            print(f"warning: {assets.source} has no sensors of tenant {tenant}: all its readings will be "
                  "dead letters", file=sys.stderr)
        job = flow_aggregates_job(args.tenants, metadata_from_assets(assets, args.tenants), window=window)
    else:
        job = built_in.build(args.tenants, window, None, METADATA_REFRESH_S)
    return job, built_in.tables


def _run(args: argparse.Namespace) -> int:
    cfg = load_config()
    if args.silence and args.job != "sensor_health":
        raise CommandError(f"--silence is for sensor_health, not {args.job}")
    if strangers := sorted(set(args.silence or {}) - {"", *args.tenants}):
        raise CommandError(f"--silence names {', '.join(strangers)}, not in --tenants")
    job, table = _job(args)
    checkpoints = Path(args.checkpoint_dir or cfg.data_dir("checkpoints") / job.name)
    restore = latest_checkpoint(checkpoints) if args.restore == "latest" else (
        Path(args.restore) if args.restore else None)
    if restore is not None and args.stop_at:
        raise CommandError("a bounded Kafka source restored from a checkpoint never ends in this Flink "
                           "(FLINK-31006); restore without --bounded/--stop-at and stop the job with Ctrl-C")
    if args.restore == "latest" and restore is None:
        print(f"no completed checkpoint under {checkpoints}; starting from the committed offsets", file=sys.stderr)
    settings = RunSettings(cfg.kafka.bootstrap, out_of_orderness_s=args.out_of_orderness, stop_at=args.stop_at,
                           watermark_emit=args.watermarks, max_behind_s=args.max_behind)
    report = run_job(job, table, cfg, settings, checkpoints, restore, args.parallelism)
    print(f"{job.name}: read {report.events:,} records in {report.seconds:.1f} s "
          f"({report.events_per_second:,.0f}/s), wrote {report.results_written:,} rows to Cassandra")
    return 0


def bench_spec(args: argparse.Namespace) -> BenchSpec:
    """What `tenantstream bench` measures, from its arguments."""
    from bench.run import BenchSpec

    latency = None if args.no_latency else LatencySpec(rate=args.latency_rate, tenants=args.tenants,
                                                       measure_s=args.latency_seconds)
    return BenchSpec(events=args.events, tenants=args.tenants, sensors=args.sensors,
                     parallelism=tuple(args.parallelism), rounds=args.rounds, quix=not args.no_quix,
                     flow=not args.no_flow, flow_events=args.flow_events, latency=latency,
                     keep_data=args.keep_data)


def _bench(args: argparse.Namespace) -> int:
    from bench.run import run_bench

    cfg = load_config()
    control.up(cfg)
    if args.rollup:
        from bench.rollup import run_rollup_bench

        run_rollup_bench(cfg, args.rollup_windows, keep_data=args.keep_data)
        return 0
    run_bench(cfg, bench_spec(args))
    return 0


def _store(args: argparse.Namespace) -> MetadataStore:
    return MetadataStore(args.mongo_uri or load_config().ferretdb.uri, args.database)


def _assets_load(args: argparse.Namespace) -> int:
    assets = read_assets(Path(args.file))
    with _store(args) as store:
        report = store.load(assets)
    print(f"{args.file}: {report}")
    return 0


def _assets_show(args: argparse.Namespace) -> int:
    with _store(args) as store:
        tenants = [t for t in store.tenants() if args.tenant in (None, t.id)]
        if args.tenant and not tenants:
            raise CommandError(f"no tenant {args.tenant!r} in the metadata store", code=1)
        elements = {t.id: store.elements(t.id) for t in tenants}
        sensors = {t.id: store.sensors(t.id) for t in tenants}
    if args.json:
        assets = Assets("store", tuple(tenants), tuple(e for t in tenants for e in elements[t.id]),
                        tuple(s for t in tenants for s in sensors[t.id]))
        print(json.dumps(assets.document(), indent=2))
    else:
        print("\n\n".join(format_tenant(t, elements[t.id], sensors[t.id]) for t in tenants)
              or "no tenants in the metadata store")
    return 0


def _query(args: argparse.Namespace) -> int:
    query = parse_query(RESULT_TABLES, args.table, keyspace=args.keyspace, tenant=args.tenant, keys=args.key,
                        before=args.before, after=args.after, within=args.within, total=args.sum,
                        mean=args.mean, limit=args.limit)
    try:
        rows = read_windows(load_config().cassandra.port, query)
    except NoSuchTableError as err:
        raise CommandError(f"{err} (see --keyspace)", code=1) from None
    if not args.json:
        print(format_answer(query, rows))
        return 0
    for line in json_lines(query, rows):
        print(line)
    if not rows:
        print(f"no windows: {query.describe()}", file=sys.stderr)
    return 0


_QUERY_EXAMPLES = """examples:
  tenantstream query alarm_rate --tenant acme --key station_id=S1 --key datapoint_id=D2 \\
      --within 2026-01-01T04:00 2026-01-01T05:00
  tenantstream query alarm_rate --tenant acme --key station_id=S1 --key datapoint_id=D2 \\
      --before 2026-01-01T04:15+02:00 --limit 10
  tenantstream query alarm_rate --tenant acme --key station_id=S1 --key datapoint_id=D2 \\
      --after 1767240000000 --sum fires --json

exit status: 0 with the answer (also when no window is in the range: "no windows"),
2 for a bad argument (the message says which), 1 if Cassandra cannot be reached or
has no such table in the keyspace."""


def _add_query_command(commands: argparse._SubParsersAction) -> None:
    query = commands.add_parser(
        "query", help="windows of one tenant's key from a result table: before, after or within a time range",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_QUERY_EXAMPLES,
        description=textwrap.fill(
            "Read the result windows of one tenant and key from a Cassandra result table, by the time their "
            "window starts: --before T (start < T), --after T (start >= T) or --within START END "
            "(START <= start < END), oldest first; or their --sum or --mean of one numeric field. "
            f"Times: {TIME_FORMATS}.", 79))
    query.add_argument("table", metavar="TABLE", help=f"the result table: {', '.join(sorted(RESULT_TABLES))}")
    query.add_argument("--tenant", type=Name(), help="the tenant whose windows to read (required)")
    query.add_argument("--key", action="append", default=[], metavar="COLUMN=VALUE",
                       help="a key column's value; every key column of the table is required ("
                            + "; ".join(f"{t.name}: {', '.join(t.partition_key[1:]) or 'none'}"
                                        for t in RESULT_TABLES.values())
                            + ")")
    query.add_argument("--before", metavar="TIME", help="windows that start before TIME")
    query.add_argument("--after", metavar="TIME", help="windows that start at or after TIME")
    query.add_argument("--within", nargs=2, metavar=("START", "END"), help="windows that start in [START, END)")
    query.add_argument("--sum", metavar="FIELD", help="print the sum of a numeric field over the windows")
    query.add_argument("--mean", metavar="FIELD", help="print the mean of a numeric field over the windows")
    query.add_argument("--limit", type=_LIMIT, metavar="N", help="list at most the first N windows")
    query.add_argument("--json", action="store_true", help="one JSON object a line (times as ISO-8601 UTC)")
    query.add_argument("--keyspace", type=KEYSPACE_NAME, default=DEFAULT_KEYSPACE,
                       help=f"the keyspace the results writer used (default {DEFAULT_KEYSPACE})")
    query.set_defaults(func=_query)


def _demo(args: argparse.Namespace) -> int:
    return run_demo(load_config(), _spec(args), keep_stack=args.keep_stack,
                    serve=(args.host, args.port) if args.serve else None)


def _tenant_upload(args: argparse.Namespace) -> int:
    try:
        version = upload(args.app, args.tenant, args.name, base=args.registry)
    except AppRejected as rejected:
        print(rejected, file=sys.stderr)
        print(f"{args.app}: rejected, {len(rejected.violations)} problem(s)", file=sys.stderr)
        return 2
    except ValueError as err:  # the file's name is no app name
        print(f"error: {err}; name the app with --name", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{version.tenant}/{version.name} v{version.version} {version.status} (sha256 {version.sha256[:12]}, "
          f"uploaded {version.uploaded_at})")
    return 0


def _tenant_apps(args: argparse.Namespace) -> int:
    versions = apps(args.tenant, base=args.registry)
    if not versions:
        print(f"no tenant apps under {args.registry or DEFAULT_BASE}", file=sys.stderr)
        return 0
    print(f"{'TENANT':<16} {'APP':<24} {'VERSION':>7}  {'STATUS':<10} UPLOADED")
    for v in versions:
        print(f"{v.tenant:<16} {v.name:<24} {'v' + str(v.version):>7}  {v.status:<10} {v.uploaded_at}")
    return 0


def _add_simulation_flags(parser: argparse.ArgumentParser, events: int) -> None:
    parser.add_argument("--tenants", type=Names(), default=("acme", "globex"),
                        help="comma-separated tenants (default acme,globex)")
    parser.add_argument("--events", type=_EVENTS, default=events, help=f"records per tenant (default {events:,})")
    parser.add_argument("--stations", type=_STATIONS, default=20, help="base stations per tenant (default 20)")
    parser.add_argument("--rate", type=_RATE, default=0.0, help="records/s over all tenants (default: as fast "
                        "as possible)")
    parser.add_argument("--out-of-order", type=SHARE, default=0.05, help="share out of order within the "
                        "watermark bound (default 0.05)")
    parser.add_argument("--late", type=SHARE, default=0.002, help="share two windows late (default 0.002)")
    parser.add_argument("--malformed", type=SHARE, default=0.002, help="share of bad records (default 0.002)")
    parser.add_argument("--seed", type=_SEED, default=7, help="random seed: same seed, same records (default 7)")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="tenantstream",
        description="Flink jobs for multi-tenant IoT sensor streams: run them on a local stack "
                    "(Kafka, Cassandra, FerretDB for MongoDB, Flink) and check their results.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens in detail")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = commands.add_parser(
        "stack", help="install, start, stop and inspect the local servers",
        description="The local stack: Apache Kafka (KRaft), Apache Cassandra, FerretDB (MongoDB wire "
                    "protocol) and a standalone Flink cluster, all on 127.0.0.1. Ports, heaps and "
                    "folders come from stack/stack.toml or the file named by $TENANTSTREAM_STACK_CONFIG.")
    actions = stack.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="install on first use, start every server, wait until each answers")
    up.set_defaults(func=_stack_up)
    down = actions.add_parser("down", help="stop exactly the servers that `up` started (and remove the profile's "
                              "network namespaces and bridge)")
    down.add_argument("--purge", action="store_true", help="also delete their data and logs")
    down.set_defaults(func=_stack_down)
    status = actions.add_parser("status", help="table of server, address, pid, state (up, down, not answering, "
                                "paused, cut off) and memory (exit 3 if any server is not up)")
    status.set_defaults(func=_stack_status)
    logs = actions.add_parser("logs", help="show a server's log")
    logs.add_argument("server", choices=list(dict.fromkeys(s.name for profile in PROFILES.values()
                                                           for s in servers(load_config(profile)))))
    logs.add_argument("-n", "--lines", type=_LINES, default=50, help="how many last lines (default 50)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing as the log grows")
    logs.set_defaults(func=_stack_logs)
    for action in (up, down, status, logs):
        action.add_argument("--profile", choices=sorted(PROFILES),
                            help="single: the default stack on 127.0.0.1 (stack/stack.toml); cluster: three Kafka "
                                 "nodes, a Flink JobManager and two TaskManagers, each in a network namespace of "
                                 "its own on a bridge, as root (stack/cluster.toml). Default: "
                                 "$TENANTSTREAM_STACK_CONFIG, else single")

    demo = commands.add_parser(
        "demo", help="the alarm-rate job end to end on the local stack, results printed",
        description="Start the local stack, simulate two tenants' alarm events, run the alarm-rate job "
                    "(bounded, exactly once), print the result rows from Cassandra and from the results "
                    "topics and check that they agree, then stop the servers the demo started.")
    _add_simulation_flags(demo, events=20_000)
    demo.add_argument("--keep-stack", action="store_true", help="leave the servers running afterwards")
    demo.add_argument("--serve", action="store_true", help="end with the dashboard over the demo's results "
                      "(prints its URL and a demo tenant's login token; Ctrl-C stops it)")
    demo.add_argument("--host", default="127.0.0.1", help="the dashboard's address with --serve (default 127.0.0.1)")
    demo.add_argument("--port", type=Count("a port", 1, 65535), default=8090,
                      help="the dashboard's port with --serve (default 8090)")
    demo.set_defaults(func=_demo)

    simulate = commands.add_parser(
        "simulate", help="produce reproducible alarm events, flow readings or heartbeats into "
                         "<tenant>.sensors.<stream>",
        description="Produce BTS alarm events, flow readings of a small plant per tenant (pumps feeding a pipe "
                    "into a basin through a valve, a ship's shore power and energy meter), or sensor heartbeats "
                    "(every 30 s from --sensors sensors per tenant, some of which fall silent for 5-40 min and "
                    "come back, or never do), Avro, keyed by sensor, with chosen shares of out-of-order, late and "
                    "malformed records. The same seed gives the same records.")
    _add_simulation_flags(simulate, events=10_000)
    simulate.add_argument("--stream", choices=["alarms", "flow", "heartbeats"], default="alarms",
                          help="alarm events (default), flow readings or heartbeats (--stations applies to alarms "
                               "only)")
    simulate.add_argument("--sensors", type=_SENSORS, default=50, help="heartbeats: sensors per tenant (default 50)")
    simulate.add_argument("--outage", type=SHARE, default=0.002, help="heartbeats: chance that a sensor falls "
                          "silent after a beat (default 0.002)")
    simulate.set_defaults(func=_simulate)

    run = commands.add_parser(
        "run", help="run a job (alarm_rate, flow_aggregates or sensor_health) on Flink's local mini-cluster",
        description="Run a job for the given tenants on a local mini-cluster against the local stack, with its "
                    "Cassandra results writers. Unbounded unless --bounded; Ctrl-C stops it.")
    run.add_argument("job", nargs="?", choices=list(BUILT_IN_JOBS), default="alarm_rate",
                     help="; ".join(f"{name}{' (default)' * (name == 'alarm_rate')}: {job.summary}"
                                    for name, job in BUILT_IN_JOBS.items()))
    run.add_argument("--tenants", type=Names(), required=True, help="comma-separated tenants")
    run.add_argument("--window", type=WINDOW_SECONDS, help="tumbling window in seconds (default " + ", ".join(
                     f"{job.window.size_ms // 1000} for {name}" for name, job in BUILT_IN_JOBS.items()) + ")")
    run.add_argument("--silence", type=_silence, metavar="MIN[,TENANT=MIN...]",
                     help=f"sensor_health: minutes without a heartbeat after which a sensor is silent, and any "
                          f"tenant's own (default {DEFAULT_SILENCE_MINUTES})")
    run.add_argument("--assets", metavar="FILE", help="flow_aggregates: the sensors and element limits, as an asset "
                     "file (see `assets load`); default: the plant `simulate --stream flow` simulates")
    run.add_argument("--out-of-orderness", type=OUT_OF_ORDERNESS, default=5,
                     help="watermark bound in seconds (default 5)")
    run.add_argument("--max-behind", type=MAX_BEHIND, default=DEFAULT_MAX_BEHIND_S, metavar="S",
                     help="records whose event time is more than S seconds behind their Kafka append time are dead "
                          f"letters; no tenant holds the others' windows back by more (default {DEFAULT_MAX_BEHIND_S})")
    bounds = run.add_mutually_exclusive_group()
    bounds.add_argument("--bounded", dest="stop_at", action="store_const", const=STOP_AT_LATEST,
                        help="stop after what the topics hold when the job starts")
    bounds.add_argument("--stop-at", metavar="P:O,...", type=_offsets,
                        help="stop at these offsets of every tenant's topic partitions (kept in checkpoints, "
                             "so a restored job stops there too)")
    run.add_argument("--parallelism", type=PARALLELISM, default=1, help="Flink parallelism (default 1)")
    run.add_argument("--checkpoint-dir", help="checkpoint folder (default: under the stack's data folder)")
    run.add_argument("--restore", metavar="latest|PATH", help="start from the latest checkpoint in the "
                     "checkpoint folder, or from a checkpoint/savepoint path")
    run.add_argument("--watermarks", choices=WATERMARK_EMITS, default=RunSettings().watermark_emit,
                     help="emit watermarks periodically (fast) or after every record (exact late routing)")
    run.set_defaults(func=_run, stop_at="")

    assets = commands.add_parser(
        "assets", help="load and show tenant and asset metadata (thresholds, limits, units) in MongoDB",
        description="Tenants, elements (pumps, pipes, basins, valves, base stations, ships) and sensors with "
                    "their thresholds, limits and units, kept in MongoDB (FerretDB on the local stack). Running "
                    "jobs pick up changes by periodic refresh. See stack/assets.example.yaml for the file format.")
    asset_actions = assets.add_subparsers(dest="action", required=True, metavar="ACTION")
    load = asset_actions.add_parser(
        "load", help="validate a YAML or JSON asset file and upsert its records",
        description="Validate FILE (.yaml, .yml or .json) as a whole and upsert its tenants, elements and sensors: "
                    "prints how many were inserted, updated and unchanged, or every problem with its path "
                    "(exit 2). A sensor's element and an element's tenant may be in the file or already stored.")
    load.add_argument("file", metavar="FILE", help="the asset file, e.g. stack/assets.example.yaml")
    load.set_defaults(func=_assets_load)
    show = asset_actions.add_parser(
        "show", help="list the stored tenants, elements and sensors",
        description="A table per tenant of its thresholds, elements and sensors, or with --json the records in "
                    "the asset file format (which `assets load` reads back).")
    show.add_argument("--tenant", type=Name(), help="only this tenant")
    show.add_argument("--json", action="store_true", help="print JSON in the asset file format")
    show.set_defaults(func=_assets_show)
    for action in (load, show):
        action.add_argument("--mongo-uri", help="MongoDB URI (default: the stack's FerretDB, from stack/stack.toml)")
        action.add_argument("--database", type=_DATABASE, default="tenantstream",
                            help="database name (default tenantstream)")

    _add_query_command(commands)
    add_serve_command(commands)

    latency = LatencySpec()
    bench = commands.add_parser(
        "bench", help="measure the alarm-rate job against hand-written Flink SQL, Quix Streams and plain Python, "
                      "and the flow-aggregates job",
        description="Produce the same events once, then run each contender on them in its own process: a bare "
                    "Kafka consumer (the ceiling), hand-written Flink SQL, the alarm-rate job (end to end, into "
                    "Cassandra and the results topics), Quix Streams and a plain Python loop, and the "
                    "flow-aggregates job end to end on flow readings of the simulated plant (no baseline: its ratio "
                    "is n/a; --no-flow skips it). Prints events/s, ratios, peak memory, and the CPU seconds that "
                    "each contender, each server of the stack and idle cores took while it was measured. Then a "
                    "latency phase for "
                    "each contender that computes windows (the Flink ones, the flow job included, at each "
                    "--parallelism, Quix Streams, the plain loop): it runs live on topics of its own "
                    f"({latency.sensors:,} alarm sensors, or the plant's flow sensors) while events arrive at a "
                    "fixed rate with event time = append time; prints p50/p99 of the time from an event's append to "
                    "its window's result being "
                    f"committed ({latency.window_ms // 1000} s windows, {latency.out_of_orderness_ms // 1000} s "
                    "out-of-orderness), about 2.5 minutes per contender. Writes a JSON report under "
                    "bench/results/.")
    bench.add_argument("--events", type=_BENCH_EVENTS, default=2_000_000,
                       help="events over all tenants (default 2,000,000)")
    bench.add_argument("--tenants", type=_BENCH_TENANTS, default=10, help="tenants (default 10)")
    bench.add_argument("--sensors", type=_BENCH_SENSORS, default=10_000,
                       help="sensors over all tenants in the throughput runs (default 10,000)")
    bench.add_argument("--parallelism", type=PARALLELISM, nargs="+", default=[1, 2],
                       help="Flink parallelisms (default 1 2)")
    bench.add_argument("--rounds", type=_ROUNDS, default=3,
                       help="runs of the hand-written Flink SQL and the alarm-rate job at each parallelism, "
                            "interleaved; each shows its median run (default 3: one run of ~20 s varies by a "
                            "quarter on 2 cores)")
    bench.add_argument("--no-quix", action="store_true", help="skip Quix Streams (its venv takes a minute to build)")
    bench.add_argument("--latency-rate", type=_LATENCY_RATE, default=latency.rate, metavar="EVENTS_PER_S",
                       help=f"offered rate of the latency phase, over all tenants (default {latency.rate:,.0f}: "
                            "below every contender's throughput)")
    bench.add_argument("--latency-seconds", type=_LATENCY_SECONDS, default=latency.measure_s, metavar="S",
                       help=f"measured seconds of the latency phase per contender, after {latency.warmup_s:.0f} s "
                            f"of warm-up and before a {latency.tail_s:.0f} s tail (default {latency.measure_s:.0f})")
    bench.add_argument("--flow-events", type=_FLOW_EVENTS,
                       help="flow readings over all tenants for the flow-aggregates job (default: as many as "
                            "--events)")
    bench.add_argument("--no-flow", action="store_true",
                       help="skip the flow-aggregates job (its throughput and latency)")
    bench.add_argument("--no-latency", action="store_true", help="skip the latency phase (throughput only)")
    bench.add_argument("--rollup", action="store_true",
                       help="measure only the alarm-rate day rollup (a Flink batch job, then Cassandra) over "
                            "results topics of --rollup-windows 1-minute windows of 100 keys")
    bench.add_argument("--rollup-windows", type=_ROLLUP_WINDOWS, nargs="+", default=[432_000, 4_320_000],
                       metavar="N", help="with --rollup: the sizes to measure (default 432000 4320000: a tenth of "
                                         "a month of windows, and the month)")
    bench.add_argument("--keep-data", action="store_true",
                       help="leave the run's topics, consumer groups and Cassandra keyspaces on the stack (by "
                            "default they are deleted at the end: a full run leaves ~400 MB in Kafka)")
    bench.set_defaults(func=_bench)

    tenant = commands.add_parser(
        "tenant", help="register tenants (Kafka principals), upload their own stream apps and list them",
        description="The tenant registry (create, delete, list: each tenant's Kafka principal and ACLs) and "
                    "tenants' own stream apps: a Python file that defines app(stream) with this library's "
                    "operators. Upload checks it without running it and keeps each accepted content as a "
                    "numbered version; the platform wires in the tenant's own sources and sinks.")
    tenant_actions = tenant.add_subparsers(dest="action", required=True, metavar="ACTION")
    registry_help = f"folder of the accepted apps (default {DEFAULT_BASE})"
    upload_ = tenant_actions.add_parser(
        "upload", help="check an app and keep it as the tenant's next version",
        description="Check APP.py against the tenant app contract (imports only from operators and math, no "
                    "file, network or interpreter access, no other tenant's topics, `def app(stream):` at module "
                    "level) and keep it as the next version; the same content again is the same version. "
                    "Prints the version, or each problem as FILE:LINE:COL: message with exit code 2.")
    upload_.add_argument("app", metavar="APP.py", help="the app's Python file")
    upload_.add_argument("--tenant", type=Name(), required=True, help="the tenant that owns the app")
    upload_.add_argument("--name", type=Name("app name"), help="the app's name (default: the file name without .py)")
    upload_.add_argument("--registry", metavar="DIR", help=registry_help)
    upload_.set_defaults(func=_tenant_upload)
    list_ = tenant_actions.add_parser(
        "apps", help="table of tenant, app, version, status and upload time",
        description="List every stored version of the tenants' apps with its status "
                    f"({', '.join(STATUSES)}) and when it was uploaded (UTC).")
    list_.add_argument("--tenant", type=Name(), help="only this tenant's apps")
    list_.add_argument("--registry", metavar="DIR", help=registry_help)
    list_.set_defaults(func=_tenant_apps)
    add_commands(commands, tenant_actions, registry_help)
    tenants.add_commands(tenant_actions)
    rollup_command.add_command(commands)
    faults_command.add_command(commands)
    return parser


def _configure_logging(level: int) -> None:
    """Our own loggers get their handler: PyFlink's imports turn the root logger down to WARNING."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("stack", "connectors", "jobs", "submit", "bench"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
        logger.propagate = False


def _lines(err: Exception) -> str:
    """An error's message with its lines (e.g. one per problem of an app) joined by '; '."""
    return "; ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__


def _failed(command: str, message: str) -> None:
    print(f"tenantstream: {command}: error: {one_line(message)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one command: exit code 0, 2 for refused input, 1 when a server or a job fails (one line on stderr)."""
    args = build_parser().parse_args(argv)
    _configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    command = " ".join(filter(None, (args.command, getattr(args, "action", None))))
    try:
        return args.func(args)
    except TenantstreamError as err:  # the project's own: its message, hint and exit code (pipeline.errors)
        _failed(command, f"{_lines(err)}{err.hint}")
        return err.exit_code
    except ValueError as err:  # refused input that no package of ours names
        _failed(command, _lines(err))
        return 2
    except KeyboardInterrupt:
        _failed(command, "interrupted")
        return 130
    except SystemExit as exit_:  # what stack.config says of a bad stack config file
        if not isinstance(exit_.code, str):
            raise
        _failed(command, exit_.code)
        return 2
    except Exception as err:  # a bug or a failed job: one line here, the traceback in the log with -v
        logging.getLogger("submit").debug("%s failed", command, exc_info=True)
        _failed(command, f"{type(err).__name__}: {err} (-v logs the traceback)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
