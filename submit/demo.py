"""`tenantstream demo`: the built-in jobs end to end on the local stack, results printed.

stack up -> simulate two tenants -> run the alarm-rate job (bounded, exactly once) -> read
the rows back from Cassandra and from the committed results topics -> compare -> the same
for the flow aggregates job over a simulated plant -> sensor health from heartbeats ->
stop what the demo started.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from connectors.cassandra import connect
from connectors.kafka import delete_topics, read_all
from connectors.metadata import MetadataStore
from jobs.alarm_rate import ALARM_RATE_TABLE, alarm_rate_job
from jobs.flow_aggregates import FLOW_TABLE, flow_aggregates_job
from jobs.sensor_health import HEALTH_TABLE, SENSOR_HEALTH_TABLES, SILENCE_TABLE, sensor_health_job
from operators.flow import metadata_from_assets
from pipeline.job import Job, ResultTable, RunSettings
from schemas import codec
from stack import control
from stack.config import StackConfig
from submit.local import RunReport, run_job
from submit.simulate import (
    FLOW_WINDOW_MS,
    HeartbeatSpec,
    SimRecord,
    SimulationSpec,
    alarm_events,
    flow_readings,
    flow_topology,
    heartbeats,
    produce,
)

DEMO_KEYSPACE = "tenantstream_demo"
ROW_FIELDS = ("tenant", "station_id", "datapoint_id", "window_start", "fires", "events", "rate")


def reset_tenants(cfg: StackConfig, tenants: tuple[str, ...]) -> None:
    """Delete the demo tenants' topics and the demo keyspace, so each demo starts from nothing."""
    delete_topics(cfg.kafka.bootstrap, lambda topic: topic.split(".", 1)[0] in tenants)
    cluster, session = connect(cfg.cassandra.port)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {DEMO_KEYSPACE}", timeout=60)
    finally:
        cluster.shutdown()


def _produce(records: Iterator[SimRecord], total: int, cfg: StackConfig, out: TextIO) -> None:
    sent = produce(records, cfg.kafka.bootstrap, total)
    out.write("   " + ", ".join(f"{kind}: {n:,}" for kind, n in sorted(sent.items())) + "\n")


def _run(job: Job, tables: ResultTable | Sequence[ResultTable], cfg: StackConfig) -> RunReport:
    """The job over what its topics hold now (bounded), its results written into the demo keyspace."""
    with tempfile.TemporaryDirectory(prefix="tenantstream-demo-") as checkpoints:
        return run_job(job, tables, cfg, RunSettings(cfg.kafka.bootstrap, stop_at="latest"), Path(checkpoints),
                       keyspace=DEMO_KEYSPACE)


def _row_key(row: dict) -> tuple:
    return tuple(row[f].replace(tzinfo=None) if f == "window_start" else row[f] for f in ROW_FIELDS)


def run_demo(cfg: StackConfig, spec: SimulationSpec, keep_stack: bool, out: TextIO = sys.stdout,
             serve: tuple[str, int] | None = None) -> int:
    """The demo; with `serve` (host, port) it ends with the dashboard over the demo's results until Ctrl-C."""
    started = control.up(cfg)
    try:
        out.write(f"\n== fresh topics for tenants {', '.join(spec.tenants)}\n")
        reset_tenants(cfg, spec.tenants)
        out.write(f"== simulating {spec.events:,} alarm events per tenant\n")
        _produce(alarm_events(spec), spec.events * len(spec.tenants), cfg, out)

        out.write("== running the alarm-rate job (bounded, exactly-once checkpoints)\n")
        job = alarm_rate_job(spec.tenants)
        report = _run(job, ALARM_RATE_TABLE, cfg)
        out.write(f"   read {report.events:,} records in {report.seconds:.1f} s "
                  f"({report.events_per_second:,.0f} records/s with start-up), "
                  f"{report.results_written:,} result rows written to Cassandra\n")

        from_topic = {_row_key(codec.decode(m.value(), "alarm_rate_result.v1"))
                      for m in read_all(cfg.kafka.bootstrap, [job.topics(t).results for t in spec.tenants],
                                        "tenantstream.demo.reader")}
        cluster, session = connect(cfg.cassandra.port, DEMO_KEYSPACE, role="reader")
        try:
            from_cassandra = {tuple(getattr(r, f) for f in ROW_FIELDS)
                              for r in session.execute(f"SELECT {', '.join(ROW_FIELDS)} FROM alarm_rate")}
        finally:
            cluster.shutdown()
        _print_table(sorted(from_cassandra), out)
        diverted = {t: (len(read_all(cfg.kafka.bootstrap, [f"{t}.deadletter"], "tenantstream.demo.reader")),
                        len(read_all(cfg.kafka.bootstrap, [f"{t}.late"], "tenantstream.demo.reader")))
                    for t in spec.tenants}
        for tenant, (dead, late) in diverted.items():
            out.write(f"   {tenant}: {dead} records in {tenant}.deadletter, {late} in {tenant}.late\n")
        agree = from_topic == from_cassandra
        out.write(f"== {len(from_cassandra)} rows in Cassandra, {len(from_topic)} committed on the results topics: "
                  f"{'they agree' if agree else 'THEY DIFFER'}\n")
        flow_agree = _flow(cfg, dataclasses.replace(spec, events=spec.events // 4, window_ms=FLOW_WINDOW_MS), out)
        health_agree = _health(cfg, HeartbeatSpec(tenants=spec.tenants, events=spec.events // 4, seed=spec.seed,
                                                  outage=0.01), out)
        if serve is not None:
            _serve(cfg, spec.tenants, *serve, out)
        return 0 if agree and flow_agree and health_agree else 1
    finally:
        if started and not keep_stack:
            control.down(cfg)


def _serve(cfg: StackConfig, tenants: Sequence[str], host: str, port: int, out: TextIO) -> None:
    """Register the demo's tenants (if they are not), make a day's dashboard token of the first, and serve
    the demo keyspace's results until interrupted."""
    from dashboard.server import run, settings_of
    from dashboard.tokens import TokenStore
    from submit.tenants import REGISTRY, register

    with MetadataStore(cfg.ferretdb.uri) as store:
        for tenant in tenants:
            if store.db[REGISTRY].find_one({"_id": tenant}) is None:
                register(cfg, store, tenant)
        document, token = TokenStore(store.db).create(tenants[0], operator=False, lifetime=timedelta(days=1))
    out.write(f"== the dashboard: open http://{host}:{port}/ and log in as tenant {tenants[0]} with\n"
              f"   {token}\n   (token {document['_id']}, valid for a day; `tenantstream tenant token revoke "
              f"{document['_id']}` ends it)\n")
    out.flush()
    run(settings_of(cfg, DEMO_KEYSPACE), host, port)  # uvicorn stops on Ctrl-C and returns


FLOW_FIELDS = ("tenant", "sensor_id", "kind", "window_end", "readings", "breaches", "sum", "mean", "increase",
               "energy_kwh")


def _flow(cfg: StackConfig, spec: SimulationSpec, out: TextIO) -> bool:
    """Flow readings of each tenant's simulated plant through the flow aggregates job; True if the
    Cassandra rows and the committed results agree."""
    out.write(f"== simulating {spec.events:,} flow readings per tenant (pumps, pipe, valve, basin, ship power)\n")
    _produce(flow_readings(spec), spec.events * len(spec.tenants), cfg, out)
    out.write("== running the flow aggregates job (15-minute windows, bounded, exactly once)\n")
    job = flow_aggregates_job(spec.tenants, metadata_from_assets(flow_topology(spec.tenants), spec.tenants))
    report = _run(job, FLOW_TABLE, cfg)
    out.write(f"   read {report.events:,} readings in {report.seconds:.1f} s, "
              f"{report.results_written:,} result rows written to Cassandra\n")
    committed = read_all(cfg.kafka.bootstrap, [job.topics(t).results for t in spec.tenants], "tenantstream.demo.reader")
    cluster, session = connect(cfg.cassandra.port, DEMO_KEYSPACE, role="reader")
    try:
        rows = list(session.execute(f"SELECT {', '.join(FLOW_FIELDS)} FROM {FLOW_TABLE.name}"))
    finally:
        cluster.shutdown()
    out.write(f"\n{'tenant':<8} {'sensor':<18} {'kind':<15} {'window end (UTC)':<17} {'n':>4} {'breach':>6} "
              f"{'sum':>8} {'mean':>8} {'increase':>8} {'kWh':>8}\n")
    sensor_of_kind: dict[tuple[str, str], str] = {}  # one sensor per tenant and kind, two windows of it
    shown: dict[str, int] = {}
    for r in sorted(rows, key=lambda r: (r.tenant, r.kind, r.sensor_id, r.window_end)):
        if sensor_of_kind.setdefault((r.tenant, r.kind), r.sensor_id) != r.sensor_id:
            continue
        shown[r.sensor_id] = shown.get(r.sensor_id, 0) + 1
        if shown[r.sensor_id] <= 2:
            values = " ".join(f"{v:>8.2f}" if v is not None else f"{'-':>8}"
                              for v in (r.sum, r.mean, r.increase, r.energy_kwh))
            out.write(f"{r.tenant:<8} {r.sensor_id:<18} {r.kind:<15} {r.window_end:%m-%d %H:%M:%S}   "
                      f"{r.readings:>4} {r.breaches:>6} {values}\n")
    agree = len(rows) == len(committed)
    out.write(f"== {len(rows)} flow rows in Cassandra, {len(committed)} committed on the results topics: "
              f"{'they agree' if agree else 'THEY DIFFER'}\n")
    return agree


def _health(cfg: StackConfig, spec: HeartbeatSpec, out: TextIO) -> bool:
    """Heartbeats with outages through the sensor health job; True if Cassandra and the topics agree."""
    out.write(f"== simulating {spec.events:,} heartbeats per tenant ({spec.sensors} sensors each, "
              "some falling silent)\n")
    _produce(heartbeats(spec), spec.events * len(spec.tenants), cfg, out)
    out.write("== running the sensor health job (silent after 10 minutes without a heartbeat, 10-minute windows)\n")
    job = sensor_health_job(spec.tenants)
    report = _run(job, SENSOR_HEALTH_TABLES, cfg)
    out.write(f"   read {report.events:,} heartbeats in {report.seconds:.1f} s, "
              f"{report.results_written:,} rows written to Cassandra\n")
    cluster, session = connect(cfg.cassandra.port, DEMO_KEYSPACE, role="reader")
    try:
        silences = list(session.execute(f"SELECT tenant, sensor_id, state, at FROM {SILENCE_TABLE.name}"))
        health = list(session.execute(f"SELECT tenant, window_end, known_sensors, silent_sensors, silent_share, "
                                      f"mean_interval_ms FROM {HEALTH_TABLE.name}"))
    finally:
        cluster.shutdown()
    out.write(f"\n{'tenant':<8} {'sensor':<12} {'state':<10} at (UTC)\n")
    for r in sorted(silences, key=lambda r: (r.tenant, r.at))[:8]:
        out.write(f"{r.tenant:<8} {r.sensor_id:<12} {r.state:<10} {r.at:%m-%d %H:%M:%S}\n")
    out.write(f"\n{'tenant':<8} {'window end (UTC)':<17} {'known':>5} {'silent':>6} {'share':>6} "
              f"{'mean interval s':>15}\n")
    for r in sorted(health, key=lambda r: (r.tenant, r.window_end))[:8]:
        interval = f"{r.mean_interval_ms / 1000:>15.1f}" if r.mean_interval_ms is not None else f"{'-':>15}"
        out.write(f"{r.tenant:<8} {r.window_end:%m-%d %H:%M:%S}   {r.known_sensors:>5} {r.silent_sensors:>6} "
                  f"{r.silent_share:>6.2f} {interval}\n")
    committed = sum(len(read_all(cfg.kafka.bootstrap, [job.topics(t).output(table.topic) for t in spec.tenants],
                                 "tenantstream.demo.reader")) for table in SENSOR_HEALTH_TABLES)
    agree = committed == len(silences) + len(health)
    out.write(f"== {len(silences)} silence events and {len(health)} health rows in Cassandra, {committed} committed on "
              f"the results topics: {'they agree' if agree else 'THEY DIFFER'}\n")
    return agree


def _print_table(rows: list[tuple], out: TextIO, limit: int = 12) -> None:
    out.write(f"\n{'tenant':<8} {'station':<9} {'datapoint':<9} {'window start (UTC)':<20} "
              f"{'fires':>5} {'events':>6} {'rate':>6}\n")
    per_tenant: dict[str, int] = {}
    for tenant, station, datapoint, start, fires, events, rate in rows:
        per_tenant[tenant] = per_tenant.get(tenant, 0) + 1
        if per_tenant[tenant] <= limit // 2:
            out.write(f"{tenant:<8} {station:<9} {datapoint:<9} {start:%Y-%m-%d %H:%M:%S}  "
                      f"{fires:>5} {events:>6} {rate:>6.3f}\n")
    out.write("   (" + ", ".join(f"{n:,} rows of {t}" for t, n in per_tenant.items()) + "; first rows shown)\n\n")
