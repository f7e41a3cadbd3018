"""`tenantstream rollup`: run rollups (jobs/rollup.py) on Flink's local mini-cluster, on demand or on alerts.

On demand: one kind, tenant and period over a range of local days, for every key or the keys asked for.
On alerts: follow the tenant's `<tenant>.alerts` and, for each alert of the kind's stream job, recompute that
key's day, week and month holding the alerted window, each (key, period) at most once a minute
(operators.rollups.Throttle). Rollup rows are written exactly once to the results topic and copied into
Cassandra by the results writer, so a rerun writes the same rows again.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import textwrap
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from confluent_kafka import Consumer

from connectors.alerts import ALERT_SCHEMA, alerts_topic
from connectors.flink import batch_table_env
from connectors.kafka import admin_client, ensure_topics
from connectors.kafka_access import authorized
from connectors.metadata import MetadataStore
from connectors.results import DEFAULT_KEYSPACE, ResultFollower, ResultsWriter
from jobs.catalog import BUILT_IN_JOBS
from jobs.rollup import ROLLUPS, Rollup, RollupError, RollupKind, plan_rollups
from operators.periods import (
    DAY,
    DEFAULT_ZONE,
    MONTH,
    PERIOD_FORMS,
    WEEK,
    Period,
    PeriodError,
    parse_period,
    whole_periods,
)
from operators.ranges import format_time
from operators.rollups import Throttle
from pipeline.execute import declare, execute_sql
from pipeline.job import ResultTable, RunSettings
from pipeline.validation import MAX_TEXT_CHARS
from stack.config import StackConfig, load_config
from submit.arguments import KEYSPACE_NAME, PARALLELISM, Name
from submit.local import writer_group

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RollupReport:
    seconds: float  # from planning until the Cassandra writer caught up
    job_seconds: float  # the Flink job alone, from its submission until it finished
    rows_written: int  # rollup rows upserted into Cassandra


def missing_source(bootstrap: str, kind: RollupKind, tenant: str) -> str:
    """Why a rollup of the tenant has nothing to read (its results topic does not exist), or ''."""
    topic = kind.source_topic(tenant)
    if topic in admin_client(bootstrap).list_topics(timeout=10).topics:
        return ""
    return (f"no results topic {topic}: run the {kind.stream_job} job for tenant {tenant} first "
            "(`tenantstream run` or `submit`)")


def run_rollups(rollups: Sequence[Rollup], cfg: StackConfig, settings: RunSettings,
                keyspace: str = DEFAULT_KEYSPACE, parallelism: int = 1) -> RollupReport:
    """Run rollups of one kind, tenant and zone as one Flink job in batch mode on a local mini-cluster, then copy
    the committed records into Cassandra; returns once both are done. RollupError when there is nothing to
    roll up."""
    first = rollups[0]
    if problem := missing_source(settings.bootstrap, first.kind, first.tenant):
        raise RollupError(problem)
    started = time.monotonic()
    job = first.kind.job(first.tenant)
    results = job.topics(first.tenant).results
    ensure_topics(settings.bootstrap, [results], cfg.kafka.partitions)
    settings = authorized(job, settings)
    env = batch_table_env(parallelism, first.zone, {"pipeline.name": f"{job.name}[{first.tenant}]"})
    ddl, inserts = plan_rollups(rollups, settings)
    for statement in ddl:
        declare(env, statement)
    job_started = time.monotonic()
    execute_sql(env, f"EXECUTE STATEMENT SET BEGIN {' '.join(f'{insert};' for insert in inserts)} END").wait()
    job_seconds = time.monotonic() - job_started
    written = copy_to_cassandra(cfg, settings, [results], first.kind.table, job.default_group, keyspace)
    return RollupReport(time.monotonic() - started, job_seconds, written)


def copy_to_cassandra(cfg: StackConfig, settings: RunSettings, topics: Sequence[str], table: ResultTable,
                      group: str, keyspace: str) -> int:
    """Run the results writer of `table` until it has copied what `topics` committed; the rows it wrote."""
    writer = ResultsWriter(settings.bootstrap, cfg.cassandra.port, table, topics, writer_group(group),
                           keyspace=keyspace, login=settings.kafka_login)
    thread = threading.Thread(target=writer.run, name=f"results-writer-{table.name}", daemon=True)
    thread.start()
    try:
        writer.drain()
    finally:
        writer.stop()
        thread.join(timeout=30)
    return writer.written


def alert_rollups(kind: RollupKind, tenant: str, zone: str, key_columns: Sequence[str], alerts: Sequence[dict],
                  throttle: Throttle, now: float) -> list[Rollup]:
    """The rollups these alerts (alert.v1 records, times in epoch ms) call for and the throttle lets run at
    `now`: the day, week and month holding each alerted window, of its key; one rollup per period, of the keys
    due in it. Alerts of another job are left alone. An alert's key is its columns' values joined by '/' (the
    last column takes the rest)."""
    keys_by_period: dict[tuple[Period, int, int], list] = defaultdict(list)
    for alert in alerts:
        if alert["job"] != kind.stream_job:
            continue
        values = alert["key"].split("/", len(key_columns) - 1)
        if len(values) != len(key_columns):
            log.warning("alert key %r of %s has no value for each of %s; no rollup", alert["key"], tenant,
                        ", ".join(key_columns))
            continue
        key = tuple(zip(key_columns, values, strict=True))
        for period in (DAY, WEEK, MONTH):
            start = period.start(alert["window_start"], zone)
            bounds = (period, start, period.end(alert["window_start"], zone))
            if key not in keys_by_period[bounds] and throttle.due((key, period.label, start), now):
                keys_by_period[bounds].append(key)
    return [Rollup(kind, tenant, period, zone, start, end, tuple(keys))
            for (period, start, end), keys in keys_by_period.items() if keys]


class RollupTrigger(ResultFollower):
    """Follows `<tenant>.alerts`: each alert of the kind's stream job recomputes its key's day, week and month
    holding the alerted window (those not run in the last `throttle.interval_s` seconds), in one Flink job per
    batch of alerts. Offsets are committed after the rollups: a crash runs them again, which rewrites the same
    rows."""

    name = "rollup trigger"

    def __init__(self, cfg: StackConfig, kind: RollupKind, tenant: str, zone: str, settings: RunSettings,
                 keyspace: str = DEFAULT_KEYSPACE, throttle: Throttle | None = None) -> None:
        job = kind.job(tenant)
        self.settings = authorized(job, settings)  # its own principal: the tenant's results and alerts only
        super().__init__(settings.bootstrap, [alerts_topic(tenant)], f"{job.default_group}.trigger", ALERT_SCHEMA,
                         self.settings.kafka_login)
        self.cfg, self.kind, self.tenant, self.zone, self.keyspace = cfg, kind, tenant, zone, keyspace
        self.throttle = throttle or Throttle()
        self.key_columns = BUILT_IN_JOBS[kind.name].alert.keys
        self.runs: list[Rollup] = []  # every rollup it ran, in order

    def _handle(self, consumer: Consumer, messages: list) -> None:
        alerts = [record for _, record in self.records(messages, logical_types=False)]
        rollups = alert_rollups(self.kind, self.tenant, self.zone, self.key_columns, alerts, self.throttle,
                                time.monotonic())
        if rollups:
            report = run_rollups(rollups, self.cfg, self.settings, self.keyspace)
            self.runs += rollups
            log.info("%s: %d rollups of %d alerts, %d rows in %.1f s", self.name, len(rollups), len(alerts),
                     report.rows_written, report.seconds)
        consumer.commit(asynchronous=False)


# --- the command line -------------------------------------------------------------------------------------------

def _day(text: str) -> date:
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"a date is YYYY-MM-DD such as 2024-02-29, not {text[:40]!r}")


def _keys(text: str) -> tuple[tuple[str, str], ...]:
    """COLUMN=VALUE[,COLUMN=VALUE...]: one key combination (its columns are checked against the kind later)."""
    pairs: list[tuple[str, str]] = []
    for item in text.split(","):
        column, equals, value = item.strip(" ").partition("=")
        if not equals or not column or not value:
            raise argparse.ArgumentTypeError(f"keys are COLUMN=VALUE[,COLUMN=VALUE...] such as "
                                             f"station_id=S1,datapoint_id=D2, not {text[:40]!r}")
        if len(value) > MAX_TEXT_CHARS or not value.isprintable():
            raise argparse.ArgumentTypeError(f"key {column[:40]!r}: a value is printable text of at most "
                                             f"{MAX_TEXT_CHARS} characters")
        if column in dict(pairs):
            raise argparse.ArgumentTypeError(f"key {column[:40]!r} is given twice in {text[:40]!r}; give another "
                                             "--keys for another combination")
        pairs.append((column, value))
    return tuple(pairs)


def _period(text: str) -> Period:
    try:
        return parse_period(text)
    except PeriodError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _rollup(args: argparse.Namespace) -> int:
    kind = ROLLUPS[args.kind]
    if args.on_alerts and (args.period or args.start or args.end or args.keys):
        raise RollupError("--on-alerts recomputes each alerted key's day, week and month: leave out --period, "
                          "--from, --to and --keys")
    if not args.on_alerts and args.period is None:
        raise RollupError(f"name the period with --period: {PERIOD_FORMS}")
    if args.start and args.end and args.end < args.start:
        raise RollupError(f"--to {args.end} is before --from {args.start}")
    # The request as asked, checked before any server is asked for anything (its zone comes from the store).
    asked = Rollup(kind, args.tenant, args.period or DAY, DEFAULT_ZONE, only=tuple(args.keys))
    cfg = load_config()
    with MetadataStore(args.mongo_uri or cfg.ferretdb.uri, args.database) as store:
        zone = store.timezone(args.tenant)
    settings = RunSettings(cfg.kafka.bootstrap)
    if args.on_alerts:
        return _follow_alerts(cfg, kind, args.tenant, zone, settings, args)
    start, end = whole_periods(args.period, args.start, args.end, zone)
    rollup = dataclasses.replace(asked, zone=zone, start_ms=start, end_ms=end)
    report = run_rollups([rollup], cfg, settings, args.keyspace, args.parallelism)
    span = (f"periods from {format_time(start) if start is not None else 'the first'} to "
            f"{format_time(end) if end is not None else 'the last'}")
    rows = f"{report.rows_written:,} row{'s' * (report.rows_written != 1)}"
    print(f"{rollup.describe()}, {span}: {rows} into {args.keyspace}.{kind.table.name} and "
          f"{kind.job(args.tenant).topics(args.tenant).results} in {report.seconds:.1f} s "
          f"(Flink job {report.job_seconds:.1f} s)")
    return 0


def _follow_alerts(cfg: StackConfig, kind: RollupKind, tenant: str, zone: str, settings: RunSettings,
                   args: argparse.Namespace) -> int:
    if problem := missing_source(settings.bootstrap, kind, tenant):
        raise RollupError(problem)
    ensure_topics(settings.bootstrap, [alerts_topic(tenant)], cfg.kafka.partitions)
    trigger = RollupTrigger(cfg, kind, tenant, zone, settings, args.keyspace)
    thread = threading.Thread(target=trigger.run, name="rollup-trigger", daemon=True)
    thread.start()
    print(f"recomputing {kind.name} rollups of {tenant} ({zone}) on the alerts of {alerts_topic(tenant)}"
          + ("" if args.until_caught_up else "; Ctrl-C stops"))
    try:
        if args.until_caught_up:
            trigger.drain(timeout=3600)
        else:
            while thread.is_alive():
                thread.join(0.5)
    finally:
        trigger.stop()
        thread.join(timeout=60)
    print(f"ran {len(trigger.runs)} rollups")
    return 0


_EXAMPLES = """examples:
  tenantstream rollup alarm_rate --tenant acme --period day --from 2024-03-01 --to 2024-03-31
  tenantstream rollup alarm_rate --tenant acme --period 12h --keys station_id=S1,datapoint_id=D2
  tenantstream rollup flow_aggregates --tenant acme --period month
  tenantstream rollup alarm_rate --tenant acme --on-alerts
  tenantstream query alarm_rate_rollup --tenant acme --key station_id=S1 --key datapoint_id=D2 \\
      --key period=day --after 2024-03-01

exit status: 0 when done, 2 for a bad argument or a tenant without results (the message says which),
1 if a server cannot be reached or the Flink job fails."""


def add_command(commands: argparse._SubParsersAction) -> None:
    """The `rollup` command."""
    rollup = commands.add_parser(
        "rollup", help="sum a tenant's result windows per day, week, month or N hours of its time zone (Flink, "
                       "batch mode)", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EXAMPLES,
        description=textwrap.fill(
            "Sum the committed result windows of one tenant per period of its local calendar, by a Flink job in "
            "batch mode that reads the tenant's results topic (kept without a time limit): alarm_rate gives "
            "fires, events and rate per station and datapoint; flow_aggregates gives readings, breaches, sums, "
            "increases and kWh added up, means weighted by readings, and min and max, per sensor. Periods follow "
            "the tenant's `timezone` from the metadata store (UTC without one): days, ISO weeks (from Monday) "
            "and months start at local midnight, N-hour periods are N hours of the local clock from midnight, "
            "so days of a daylight-saving change have 23 or 25 hours. A window counts in the period holding its "
            "start. The rows are upserted into the Cassandra table <kind>_rollup and written exactly once to "
            "<tenant>.results.<kind>_rollup; a rerun writes the same rows. With --on-alerts it instead follows "
            "<tenant>.alerts and recomputes each alerted key's day, week and month, each at most once a "
            "minute.", 79))
    rollup.add_argument("kind", choices=sorted(ROLLUPS), help="whose windows: alarm_rate or flow_aggregates")
    rollup.add_argument("--tenant", type=Name(), required=True, help="the tenant (its own results only)")
    rollup.add_argument("--period", type=_period, metavar="day|week|month|Nh", help=f"the period: {PERIOD_FORMS}")
    rollup.add_argument("--from", dest="start", type=_day, metavar="DATE",
                        help="the first local day (YYYY-MM-DD) whose periods to compute (default: from the first "
                             "window); widened to whole periods")
    rollup.add_argument("--to", dest="end", type=_day, metavar="DATE",
                        help="the last local day (YYYY-MM-DD, included) whose periods to compute (default: to the "
                             "last window); widened to whole periods")
    rollup.add_argument("--keys", type=_keys, action="append", default=[], metavar="COLUMN=VALUE[,...]",
                        help="only windows of this key combination (repeat for more): alarm_rate: station_id, "
                             "datapoint_id; flow_aggregates: sensor_id, element_id, kind")
    rollup.add_argument("--on-alerts", action="store_true",
                        help="follow <tenant>.alerts and recompute each alerted key's day, week and month")
    rollup.add_argument("--until-caught-up", action="store_true",
                        help="with --on-alerts: stop once every alert so far is handled")
    rollup.add_argument("--keyspace", type=KEYSPACE_NAME, default=DEFAULT_KEYSPACE,
                        help=f"the Cassandra keyspace of the rollup table (default {DEFAULT_KEYSPACE})")
    rollup.add_argument("--parallelism", type=PARALLELISM, default=1, help="Flink parallelism (default 1)")
    rollup.add_argument("--mongo-uri", help="MongoDB URI of the tenant's time zone (default: the stack's FerretDB)")
    rollup.add_argument("--database", type=Name("database"), default="tenantstream",
                        help="metadata database name (default tenantstream)")
    rollup.set_defaults(func=_rollup)
