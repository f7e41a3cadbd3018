"""`tenantstream submit`, `jobs`, `writer` and `tenant submit`: jobs on a Flink cluster."""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import yaml

from connectors.alerts import Alerter, alerts_topic
from connectors.kafka import admin_client
from connectors.kafka_access import authorized
from connectors.metadata import MetadataStore
from connectors.results import ResultFollower, ResultsWriter
from jobs.catalog import BUILT_IN_JOBS, METADATA_REFRESH_S
from operators.windows import Tumbling, tumbling
from pipeline.job import DEFAULT_MAX_BEHIND_S, Job, RunSettings
from pipeline.sql import WATERMARK_EMITS
from schemas.names import check_names, shown
from stack.config import load_config
from submit import tenant_apps
from submit.arguments import (
    JOB_ID,
    KEYSPACE_NAME,
    MAX_BEHIND,
    OUT_OF_ORDERNESS,
    PARALLELISM,
    REFRESH_SECONDS,
    WINDOW_SECONDS,
    CommandError,
    Count,
    Name,
    Names,
)
from submit.cluster import FlinkRest, submit_job
from submit.local import results_topics, writer_group

# Settings a --config file may hold; command-line flags win over the file.
CONFIG_KEYS = {"tenants", "parallelism", "window_seconds", "out_of_orderness", "max_behind", "bootstrap", "watermarks",
               "metadata_refresh"}
# A --config file's numbers must pass the same checks as the flags'.
_SETTING_TYPES = {"parallelism": PARALLELISM, "window_seconds": WINDOW_SECONDS, "out_of_orderness": OUT_OF_ORDERNESS,
                  "max_behind": MAX_BEHIND,
                  "metadata_refresh": REFRESH_SECONDS}


def _cluster_url(args: argparse.Namespace) -> str:
    return args.cluster or f"http://127.0.0.1:{load_config().flink.rest_port}"


def _job_config(args: argparse.Namespace) -> dict:
    """The job's settings: defaults, then the --config file, then the flags given."""
    settings: dict = {"parallelism": 1, "out_of_orderness": 5, "max_behind": DEFAULT_MAX_BEHIND_S,
                      "watermarks": RunSettings().watermark_emit,
                      "metadata_refresh": METADATA_REFRESH_S,
                      "bootstrap": load_config().kafka.bootstrap}
    if args.config:
        settings.update(_read_config(args.config))
    settings.update({k: v for k, v in vars(args).items() if k in CONFIG_KEYS and v is not None})
    if not settings.get("tenants"):
        raise CommandError("name the tenants with --tenants or in the --config file")
    return settings


def _read_config(path: str) -> dict:
    """The settings of a --config file, each checked as its flag is; CommandError naming the first bad one."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise CommandError(f"{path}: cannot read the settings: {err}") from None
    if not isinstance(loaded, dict | None):
        raise CommandError(f"{path}: expected a mapping of settings, not {type(loaded).__name__}")
    if unknown := sorted(shown(str(key)) for key in set(loaded or {}) - CONFIG_KEYS):
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise CommandError(f"{path}: unknown settings {', '.join(unknown[:3])}{more}; "
                           f"known: {', '.join(sorted(CONFIG_KEYS))}")
    settings = dict(loaded or {})
    try:
        if "tenants" in settings:
            tenants = settings["tenants"]
            settings["tenants"] = check_names([t.strip(" ") for t in tenants.split(",")]
                                              if isinstance(tenants, str) else tenants)
        for key in set(settings) & set(_SETTING_TYPES):
            settings[key] = _SETTING_TYPES[key](str(settings[key]))
        if settings.get("watermarks", WATERMARK_EMITS[0]) not in WATERMARK_EMITS:
            raise ValueError(f"watermarks are {' or '.join(WATERMARK_EMITS)}, not {settings['watermarks']!r}")
        if not isinstance(settings.get("bootstrap", ""), str):
            raise ValueError("bootstrap is HOST:PORT[,HOST:PORT...] text")
    except (ValueError, argparse.ArgumentTypeError) as err:
        raise CommandError(f"{path}: {err}") from None
    return settings


def _built(name: str, tenants: Sequence[str], window: Tumbling | None, mongo_uri: str | None,
           refresh_s: float = METADATA_REFRESH_S) -> Job:
    """A built-in job for `tenants`, planned with what the metadata store holds for them."""
    built_in = BUILT_IN_JOBS[name]
    if not built_in.needs_metadata:
        return built_in.build(tuple(tenants), window, None, refresh_s)
    try:
        with MetadataStore(mongo_uri or load_config().ferretdb.uri) as store:
            return built_in.build(tuple(tenants), window, store, refresh_s)
    except LookupError as err:
        raise CommandError(str(err)) from None


def _submit(args: argparse.Namespace) -> int:
    config = _job_config(args)
    window = tumbling(seconds=config["window_seconds"]) if config.get("window_seconds") else None
    job = _built(args.job, config["tenants"], window, args.mongo_uri, float(config["metadata_refresh"]))
    settings = RunSettings(config["bootstrap"], out_of_orderness_s=config["out_of_orderness"],
                           watermark_emit=config["watermarks"], max_behind_s=config["max_behind"])
    job_id = submit_job(job, settings, FlinkRest(_cluster_url(args)), config["parallelism"], args.from_savepoint)
    print(f"{job.name} for {', '.join(job.tenants)} is RUNNING as Flink job {job_id}; "
          f"copy its results into Cassandra with `tenantstream writer {args.job} --tenants "
          f"{','.join(job.tenants)}`")
    return 0


def _jobs_list(args: argparse.Namespace) -> int:
    jobs = FlinkRest(_cluster_url(args)).jobs()
    if not jobs:
        print("no jobs on the cluster")
        return 0
    print(f"{'job id':<34} {'state':<10} {'running for':>12}  name")
    for j in sorted(jobs, key=lambda j: -j.started_ms):
        print(f"{j.job_id:<34} {j.state:<10} {j.duration_ms / 1000:>11.0f}s  {j.name}")
    return 0


def _jobs_cancel(args: argparse.Namespace) -> int:
    FlinkRest(_cluster_url(args)).cancel(args.job_id)
    print(f"job {args.job_id} cancelled")
    return 0


def _jobs_savepoint(args: argparse.Namespace) -> int:
    location = FlinkRest(_cluster_url(args)).stop_with_savepoint(args.job_id, args.dir)
    print(f"job {args.job_id} stopped with a savepoint at {location}\n"
          f"resume it with `tenantstream submit ... --from-savepoint {location}`")
    return 0


def _follow(followers: Sequence[ResultFollower], until_caught_up: bool, what: str) -> None:
    """Run results followers beside a cluster job: until caught up, or until Ctrl-C.

    CommandError (exit code 1) when a results topic does not exist yet.
    """
    known = admin_client(followers[0].bootstrap).list_topics(timeout=10).topics
    missing = [t for f in followers for t in f.topics if t not in known]
    if missing:
        raise CommandError(f"no topic {', '.join(missing)} yet: submit the job for these tenants first", code=1)
    threads = [threading.Thread(target=_run_quietly, args=(f,), name=f.name, daemon=True) for f in followers]
    for thread in threads:
        thread.start()
    try:
        if until_caught_up:
            for follower in followers:
                follower.drain()
        else:
            print(f"{what}; Ctrl-C stops", file=sys.stderr)
            threads[0].join()
    except KeyboardInterrupt:
        pass
    finally:
        for follower, thread in zip(followers, threads, strict=True):
            follower.stop()
            thread.join(timeout=30)
    if failed := next((f for f in followers if f.failure is not None), None):
        raise CommandError(f"{failed.name} failed: {str(failed.failure).splitlines()[0][:300]}", code=1)


def _run_quietly(follower: ResultFollower) -> None:
    """`follower.run()`; its failure, kept in `follower.failure`, is said by `_follow` in one line (an exception
    left to the thread printed a traceback, and the command then exited 0)."""
    with contextlib.suppress(Exception):
        follower.run()


def _writer(args: argparse.Namespace) -> int:
    cfg = load_config()
    tables = BUILT_IN_JOBS[args.job].tables
    job = _built(args.job, args.tenants, None, args.mongo_uri)
    login = authorized(job, RunSettings(cfg.kafka.bootstrap)).kafka_login  # the job's own principal
    writers = [ResultsWriter(cfg.kafka.bootstrap, cfg.cassandra.port, table, results_topics(job, table),
                             group=writer_group(job.default_group, table if len(tables) > 1 else None),
                             keyspace=args.keyspace, login=login) for table in tables]
    _follow(writers, args.until_caught_up, f"copying {job.name} results of {', '.join(job.tenants)} into Cassandra")
    for writer in writers:
        print(f"wrote {writer.written:,} rows into {args.keyspace}.{writer.table.name}")
    return 0


def _alerts(args: argparse.Namespace) -> int:
    cfg = load_config()
    built_in = BUILT_IN_JOBS[args.job]
    store = MetadataStore(args.mongo_uri or cfg.ferretdb.uri, args.database)
    alerter = Alerter(cfg.kafka.bootstrap, built_in.alert, built_in.tables[0].schema, args.tenants,
                      lambda tenant: store.thresholds(tenant)["tenant"], refresh_s=args.refresh_seconds)
    try:
        _follow([alerter], args.until_caught_up, f"alerting on {args.job} results of {', '.join(args.tenants)} "
                                                 f"(settings refreshed every {args.refresh_seconds:g} s)")
    finally:
        store.close()
    print(f"raised {alerter.raised:,} alerts on {', '.join(alerts_topic(t) for t in args.tenants)}")
    return 0


def _tenant_submit(args: argparse.Namespace) -> int:
    versions = [v for v in tenant_apps.apps(args.tenant, base=args.registry) if v.name == args.app]
    if args.version:
        versions = [v for v in versions if v.version == args.version]
    if not versions:
        print(f"error: {args.tenant} has no app {args.app}" + (f" v{args.version}" if args.version else "") +
              "; upload it with `tenantstream tenant upload`", file=sys.stderr)
        return 2
    app = max(versions, key=lambda v: v.version)
    cfg = load_config()
    try:
        job = tenant_apps.load(app.app_file.read_text(), str(app.app_file), args.tenant,
                               tenant_apps.bound_stream(args.tenant, app.name))
    except (tenant_apps.AppRejected, tenant_apps.AppError) as err:
        tenant_apps.set_status(app.tenant, app.name, app.version, "failed", str(err), base=args.registry)
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        job_id = submit_job(job, RunSettings(cfg.kafka.bootstrap), FlinkRest(_cluster_url(args)), args.parallelism)
    except Exception as err:
        tenant_apps.set_status(app.tenant, app.name, app.version, "failed", str(err), base=args.registry)
        raise
    tenant_apps.set_status(app.tenant, app.name, app.version, "running", f"Flink job {job_id}", base=args.registry)
    print(f"{args.tenant}'s app {app.name} v{app.version} is RUNNING as Flink job {job_id}; "
          f"results on {job.topics(args.tenant).results}")
    return 0


def add_commands(commands: argparse._SubParsersAction, tenant_actions: argparse._SubParsersAction,
                 registry_help: str) -> None:
    """Add the cluster commands to the CLI's parsers."""
    cluster_help = "the cluster's REST address (default: the local stack's, http://127.0.0.1:8081)"
    submit = commands.add_parser(
        "submit", help="submit a built-in job to a Flink cluster",
        description="Plan a built-in job for the given tenants and submit it to a Flink cluster through its REST "
                    "API, with the jars it needs (Kafka connector, tenantstream-avro format). The job runs "
                    "unbounded with exactly-once checkpoints into the cluster's checkpoint folder. Settings "
                    f"may come from a YAML --config file ({', '.join(sorted(CONFIG_KEYS))}); flags win.")
    submit.add_argument("job", choices=sorted(BUILT_IN_JOBS))
    submit.add_argument("--tenants", type=Names(), help="comma-separated, e.g. acme,globex")
    submit.add_argument("--cluster", help=cluster_help)
    submit.add_argument("-p", "--parallelism", type=PARALLELISM, help="Flink parallelism (default 1)")
    submit.add_argument("--config", help="YAML file of job settings")
    submit.add_argument("--window-seconds", dest="window_seconds", type=WINDOW_SECONDS, help="tumbling window size")
    submit.add_argument("--out-of-orderness", type=OUT_OF_ORDERNESS,
                        help="seconds the watermark trails event time (default 5)")
    submit.add_argument("--max-behind", dest="max_behind", type=MAX_BEHIND, metavar="S",
                        help="records whose event time is more than S seconds behind their Kafka append time are "
                             f"dead letters; no tenant holds the others' windows back by more "
                             f"(default {DEFAULT_MAX_BEHIND_S})")
    submit.add_argument("--watermarks", choices=WATERMARK_EMITS, help="watermark emission")
    submit.add_argument("--bootstrap", help="Kafka bootstrap servers (default: the local stack's)")
    submit.add_argument("--metadata-refresh", dest="metadata_refresh", type=REFRESH_SECONDS, metavar="SECONDS",
                        help="flow_aggregates: how often the running job re-reads its tenants' sensors and "
                             "element limits from the metadata store (default 10); a new sensor or a changed "
                             "limit applies within this time")
    submit.add_argument("--from-savepoint", metavar="LOCATION", help="start from this savepoint (see `jobs savepoint`)")
    submit.add_argument("--mongo-uri", help="metadata store of the flow job's sensors and limits and the health "
                        "job's silence minutes (default: the local stack's FerretDB)")
    submit.set_defaults(func=_submit)

    jobs = commands.add_parser("jobs", help="list, cancel or stop-with-savepoint jobs on a Flink cluster")
    jobs.add_argument("--cluster", help=cluster_help)
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="every job with its state").set_defaults(func=_jobs_list)
    cancel = actions.add_parser("cancel", help="cancel a job (no savepoint)")
    cancel.add_argument("job_id", type=JOB_ID)
    cancel.set_defaults(func=_jobs_cancel)
    savepoint = actions.add_parser(
        "savepoint", help="stop a job with a savepoint, to resubmit it later with --from-savepoint",
        description="Stop-with-savepoint: the job's sinks commit, a savepoint is written, the job stops. "
                    "Resubmitting with --from-savepoint continues from exactly there: nothing lost or doubled.")
    savepoint.add_argument("job_id", type=JOB_ID)
    savepoint.add_argument("--dir", help="savepoint folder or URI (default: the cluster's savepoint folder)")
    savepoint.set_defaults(func=_jobs_savepoint)

    writer = commands.add_parser(
        "writer", help="copy a job's committed results into Cassandra (for jobs running on a cluster)",
        description="Consume the job's <tenant>.results.<job> topics (read_committed) and upsert the rows "
                    "into Cassandra, committing offsets only after Cassandra acknowledged them.")
    writer.add_argument("job", choices=sorted(BUILT_IN_JOBS))
    writer.add_argument("--tenants", type=Names(), required=True, help="comma-separated")
    writer.add_argument("--keyspace", type=KEYSPACE_NAME, default="tenantstream",
                        help="Cassandra keyspace (default tenantstream)")
    writer.add_argument("--mongo-uri", help="metadata store the job was planned with (default: the stack's)")
    writer.add_argument("--until-caught-up", action="store_true",
                        help="stop once every committed result is written, instead of running until Ctrl-C")
    writer.set_defaults(func=_writer)

    alerts = commands.add_parser(
        "alerts", help="raise alerts from a job's committed results against the tenants' thresholds",
        description="Check each committed result of the job against the tenant's threshold in MongoDB "
                    "(alarm_rate: rate > alarm_rate_threshold; flow_aggregates: breaches / readings > "
                    "flow_breach_threshold) and write one alert per window and key to "
                    "<tenant>.alerts, exactly once. The thresholds are read again every --refresh-seconds, "
                    "so a change applies from the next window on, without restarting anything.")
    alerts.add_argument("job", choices=sorted(name for name, j in BUILT_IN_JOBS.items() if j.alert))
    alerts.add_argument("--tenants", type=Names(), required=True, help="comma-separated")
    alerts.add_argument("--refresh-seconds", type=REFRESH_SECONDS, default=5.0, help="how often thresholds are re-read")
    alerts.add_argument("--mongo-uri", help="MongoDB URI (default: the local stack's FerretDB)")
    alerts.add_argument("--database", type=Name("database"), default="tenantstream",
                        help="metadata database (default tenantstream)")
    alerts.add_argument("--until-caught-up", action="store_true",
                        help="stop once every committed result is checked, instead of running until Ctrl-C")
    alerts.set_defaults(func=_alerts)

    tenant_submit = tenant_actions.add_parser(
        "submit", help="submit a tenant's uploaded app to a Flink cluster",
        description="Load the app's newest (or given) version, bind it to the tenant's own source "
                    "<tenant>.sensors.alarms and sinks (<tenant>.results.app_<name>, dead-letter, late), "
                    "and submit it. The app's status in `tenant apps` becomes running or failed.")
    tenant_submit.add_argument("app", type=Name("app name"), help="the app's name, as `tenant apps` lists it")
    tenant_submit.add_argument("--tenant", type=Name(), required=True)
    tenant_submit.add_argument("--version", type=Count("a version", 1, 1_000_000), help="default: the newest")
    tenant_submit.add_argument("--cluster", help=cluster_help)
    tenant_submit.add_argument("-p", "--parallelism", type=PARALLELISM, default=1)
    tenant_submit.add_argument("--registry", metavar="DIR", help=registry_help)
    tenant_submit.set_defaults(func=_tenant_submit)
