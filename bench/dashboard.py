"""The dashboard under load: many WebSocket clients over several tenants while result windows are committed.

    python -m bench.dashboard --clients 500 --tenants 10 --keys 80 --period 5 --periods 12
    python -m bench.dashboard --job --clients 500 --tenants 10 --rate 2000 --seconds 60

A real `tenantstream serve` process. The results come either from the alarm-rate job itself (`--job`: run
live by bench.flink_job on simulated alarm events at `rate` a second over all tenants) or as it would commit
them: every `period` seconds one Kafka transaction (a checkpoint) with one window per key of every tenant
(`keys` a tenant: 80 are 20 stations x 4 datapoints, 800 windows a window length over 10 tenants). Clients
log in once per tenant (one session shared by the tenant's clients: the bench measures the push, not
scrypt), resume live-only (batch frames unless --single-frames) in `workers` processes, and record each
frame's arrival. Reports: whether every client holds exactly the windows committed on its tenant's results
topic (read back from Kafka), each received once, and nothing of another tenant; p50/p99/max of the delay
from a result's commit to its arrival at the client, the commit being the moment a read_committed watcher in
a process of its own, fetching as the server does, first saw the result;
the same from the result record's Kafka timestamp (its append, before its transaction commits), and the
server's own histograms of that, whole and by stage (`stages_ms`); the server's CPU seconds and peak resident
memory; every process's CPU seconds over the run, how long the bench's own processes waited for a core, and
the machine's load, which every figure here shares (`machine`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from datetime import timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TextIO

import uvloop
from websockets.asyncio.client import ClientConnection, connect

from bench.measure import READY, _cpu, _idle, _process_table, _tree
from connectors.kafka import committed_consumer, delete_topics, ensure_topics, producer, read_all, read_arrived
from connectors.metadata import MetadataStore
from dashboard.feed import FETCH_WAIT_MS
from dashboard.tokens import TokenStore
from schemas import codec
from stack.config import load_config
from submit.local import pending_records
from submit.simulate import SimulationSpec, alarm_events, produce

ROOT = Path(__file__).parents[1]
T0 = 1767240000000
JOB_CATCH_UP_S = 600.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen, sig: signal.Signals, wait_s: float) -> None:
    """Ask a child to end with `sig`; kill it if it has not within `wait_s`."""
    process.send_signal(sig)
    try:
        process.wait(wait_s)
    except subprocess.TimeoutExpired:
        process.kill()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _label(pid: int) -> str:
    """A process outside the bench as a reader of the CPU table knows it: a JVM by its main class and the state
    folder of its stack (tenantstream or tenantstream-cluster), anything else by its first arguments."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    if args and args[0].endswith("java"):
        main = next((a for i, a in enumerate(args) if i and not a.startswith("-") and args[i - 1] not in (
            "-cp", "-classpath")), "java").rsplit(".", 1)[-1]
        stack = next((part for a in args for part in a.split("/") if part.startswith("tenantstream")), "")
        return f"other: java {main} ({stack})" if stack else f"other: java {main}"
    return "other: " + " ".join(Path(args[0]).name if i == 0 else a for i, a in enumerate(args[:4]) if a)[:80]


class MachineCpu:
    """Every process's CPU seconds over the measured span, sampled each second (so a process that ends keeps
    what it used), grouped by role: the bench's own processes by name, the rest by `_label`; the load; and how
    long the bench's own processes' threads waited, runnable, for a core (/proc/PID/task/*/schedstat): the
    delay the machine's other work adds to theirs."""

    def __init__(self) -> None:
        self.roles: dict[int, str] = {}  # a root pid -> its role; its process tree counts for it
        self._start: dict[int, float] = {}
        self._seen: dict[int, float] = {}
        self._labels: dict[int, str] = {}
        # a bench process's thread -> (waited, times run) at start and last seen
        self._waited: dict[tuple[int, int], list[tuple[float, int]]] = {}
        self._worst_second: dict[str, float] = {}  # a role -> the most a main thread of it waited in one sample
        self.load: list[float] = []
        self._idle0, self._t0 = _idle(), time.monotonic()
        self._stop = threading.Event()
        self._sample(first=True)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _sample(self, first: bool = False) -> None:
        children, stats = _process_table()
        for root, role in list(self.roles.items()):
            for pid in _tree(root, children):
                self._labels[pid] = role
        for pid, fields in stats.items():
            cpu = _cpu(fields)
            if first:
                self._start[pid] = cpu
            self._seen[pid] = cpu
            if pid not in self._labels:
                self._labels[pid] = _label(pid)
            if self._labels[pid].startswith("bench:"):
                for tid, waited in _run_queue_waits(pid).items():  # a thread that starts later waited 0 before
                    seen = self._waited.setdefault((pid, tid), [waited if first else (0.0, 0), waited])
                    if tid == pid:  # the main thread's wait in the last second: a wait at a burst shows here
                        worst = self._worst_second.get(self._labels[pid], 0.0)
                        self._worst_second[self._labels[pid]] = max(worst, waited[0] - seen[1][0])
                    seen[1] = waited
        self.load.append(os.getloadavg()[0])

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self._sample()

    def stop(self, top: int = 14) -> dict:
        self._stop.set()
        self._thread.join(5)
        self._sample()
        wall = time.monotonic() - self._t0
        used: Counter = Counter()
        for pid, cpu in self._seen.items():
            used[self._labels.get(pid, "?")] += cpu - self._start.get(pid, 0.0)
        waited: Counter = Counter()
        main_waited: Counter = Counter()
        main_runs: Counter = Counter()
        for (pid, tid), ((wait0, runs0), (wait1, runs1)) in self._waited.items():
            waited[self._labels[pid]] += wait1 - wait0
            if tid == pid:  # the main thread: the event loop of the server and of each client process
                main_waited[self._labels[pid]] += wait1 - wait0
                main_runs[self._labels[pid]] += runs1 - runs0
        waits = {name: {"all_threads_s": round(waited[name], 1), "main_thread_s": round(main_waited[name], 1),
                        "main_thread_mean_wait_ms": round(1000 * main_waited[name] / max(1, main_runs[name]), 2),
                        "main_thread_most_in_one_second_s": round(self._worst_second.get(name, 0.0), 2)}
                 for name in sorted(waited)}
        return {"wall_seconds": round(wall, 1), "idle_core_seconds": round(_idle() - self._idle0, 1),
                "load_average_1m": {"min": min(self.load), "max": max(self.load), "end": self.load[-1]},
                "cpu_seconds_by_process": {name: round(v, 1) for name, v in used.most_common(top) if v >= 0.05},
                "run_queue_wait_by_process": waits}


def _run_queue_waits(pid: int) -> dict[int, tuple[float, int]]:
    """Per thread of a process: seconds it has waited runnable for a core, and how many times it got one
    (the second and third fields of its schedstat)."""
    waits = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            _, waited, runs = stat.read_text().split()
            waits[int(stat.parent.name)] = (int(waited) / 1e9, int(runs))
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
    return waits


def _renice(pid: int, niceness: int) -> None:
    """Give every thread of a process (threads it starts later inherit it) this niceness, and its session's
    autogroup too when it leads one: the kernel shares the cores between autogroups first, so a thread's own
    niceness orders it only against the threads of its session."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)
    if os.getsid(pid) == pid and Path(f"/proc/{pid}/autogroup").exists():
        Path(f"/proc/{pid}/autogroup").write_text(str(niceness))


def _own_session() -> None:
    """Run this process of the bench in a session of its own, as it would be on a machine of its own (the
    server and the job are started so too): on a kernel that groups processes by session (autogroup), the
    clients, the watcher and the server then do not share one group's part of the cores with the producer."""
    os.setsid()


def _login(base: str, token: str) -> str:
    request = urllib.request.Request(f"{base}/api/v1/login", data=json.dumps({"token": token}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]


def _server_delays(exposition: str, stage: str = "push") -> dict[str, float]:
    """p50 and p99 of one of the server's delay histograms (push, receive, handoff, fanout) as the bucket bound
    they fall in, milliseconds."""
    buckets = []
    for line in exposition.splitlines():
        if line.startswith(f"tenantstream_dashboard_{stage}_delay_seconds_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0
    return {name: next((bound * 1000 for bound, count in buckets if count >= share * total), float("nan"))
            for name, share in (("p50", 0.5), ("p99", 0.99))}


def _spread(values: list[float]) -> dict[str, float | None]:
    """min, p50, p99 and max of `values`, rounded to 0.1."""
    if not values:
        return {"min": None, "p50": None, "p99": None, "max": None}
    return {"min": round(min(values), 1), "p50": round(_percentile(values, 0.5), 1),
            "p99": round(_percentile(values, 0.99), 1), "max": round(max(values), 1)}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


class BenchClient:
    """One page's connection. It notes when each frame arrived and keeps the frame's text (identical frames of a
    process once: a tenant's clients get the same batches), and reads the windows from them only after the
    run: the clients share two cores with everything they measure, so what they do on arrival is part of the
    delay they report."""

    def __init__(self, tenant: str, batch: bool, texts: dict[str, str]) -> None:
        self.tenant, self.batch, self.texts = tenant, batch, texts
        self.received: list[tuple[float, str]] = []
        self.synced = asyncio.Event()
        self.ws: ClientConnection | None = None

    async def run(self, base: str, cookie: str) -> None:
        """Follow the stream until the connection is closed."""
        async with connect(base.replace("http", "ws", 1) + "/api/v1/stream", origin=base, proxy=None,
                           additional_headers={"Cookie": f"tenantstream_session={cookie}"}, open_timeout=60,
                           max_queue=None) as ws:
            self.ws = ws
            await ws.send(json.dumps({"type": "resume", "history": False, "batch": self.batch}))
            async for text in ws:
                if not self.synced.is_set() and json.loads(text)["type"] == "synced":
                    self.synced.set()
                else:
                    self.received.append((time.time() * 1000, self.texts.setdefault(text, text)))

    def report(self, visible: dict[tuple, float], parsed: dict[str, dict]) -> dict:
        """What it received: its windows (how many, their digest, doubles, another tenant's), the delay of each
        from its append (`committed_ms`) and from when the watcher saw it committed (`visible`)."""
        windows: Counter = Counter()
        arrivals: dict[tuple, float] = {}
        delays_ms: list[float] = []
        foreign = 0
        for arrived, text in self.received:
            frame = parsed.get(text) or parsed.setdefault(text, json.loads(text))
            for one in frame["frames"] if frame["type"] == "batch" else [frame]:
                if one["type"] != "window":
                    continue
                foreign += one["tenant"] != self.tenant
                row = one["row"]
                key = (row["station_id"], row["datapoint_id"], row["window_start"])
                windows[key] += 1
                arrivals.setdefault(key, arrived)
                delays_ms.append(arrived - one["committed_ms"])
        return {"tenant": self.tenant, "frames": len(self.received), "windows": len(windows),
                "digest": _digest(windows), "duplicates": sum(n - 1 for n in windows.values()), "foreign": foreign,
                "delays_ms": delays_ms,
                "commit_delays_ms": [(visible[key], arrived - visible[key]) for key, arrived in arrivals.items()
                                     if key in visible]}

    def count(self, expected: int) -> bool:
        """Whether it holds at least `expected` windows (by the frames' sizes: a cheap check while waiting)."""
        return sum(text.count('"type":"window"') for _, text in self.received) >= expected


def _digest(keys: object) -> str:
    return hashlib.sha256(repr(sorted(keys)).encode()).hexdigest()


def _client_worker(base: str, assignments: list[tuple[str, str]], batch: bool, pipe: Connection) -> None:
    """A process of clients: says "ready" once all are synced, then takes ({tenant: windows committed},
    {tenant: {window: when it became visible}}) and sends the clients' figures once each holds its tenant's
    count (or after a minute)."""
    _own_session()

    async def main() -> list[dict]:
        texts: dict[str, str] = {}
        clients = [BenchClient(tenant, batch, texts) for tenant, _ in assignments]
        tasks = []
        for client, (_, cookie) in zip(clients, assignments, strict=True):
            tasks.append(asyncio.create_task(client.run(base, cookie)))
            await asyncio.sleep(0.005)  # a few handshakes at a time: their burst is not what is measured
        await asyncio.wait_for(asyncio.gather(*(c.synced.wait() for c in clients)), 120)
        pipe.send("ready")
        while not pipe.poll():
            await asyncio.sleep(0.2)
        (expected, visible), deadline = pipe.recv(), time.monotonic() + 60
        while not all(c.count(expected[c.tenant]) for c in clients) and time.monotonic() < deadline:
            await asyncio.sleep(1)
        await asyncio.sleep(1)  # duplicates, if any, would arrive now
        await asyncio.gather(*(c.ws.close() for c in clients if c.ws is not None), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
        parsed: dict[str, dict] = {}
        return [c.report(visible[c.tenant], parsed) for c in clients]

    pipe.send(uvloop.run(main()))  # the server's loop too: asyncio's own took the clients twice the CPU


class _Worker:
    def __init__(self, base: str, assignments: list[tuple[str, str]], batch: bool) -> None:
        self.pipe, child = multiprocessing.get_context("fork").Pipe()
        self.process = multiprocessing.get_context("fork").Process(
            target=_client_worker, args=(base, assignments, batch, child), daemon=True)
        self.process.start()

    def ready(self, timeout: float = 180) -> None:
        if not self.pipe.poll(timeout) or self.pipe.recv() != "ready":
            raise RuntimeError("a client process did not connect its clients")

    def results(self, expected: dict[str, int], visible: dict[str, dict[tuple, float]]) -> list[dict]:
        self.pipe.send((expected, visible))
        if not self.pipe.poll(120):
            raise RuntimeError("a client process did not report")
        found = self.pipe.recv()
        self.process.join(10)
        return found


def _watch(bootstrap: str, run_id: str, tenants: list[str], pipe: Connection) -> None:
    """Note when each result first becomes visible to a read_committed consumer fetching as the server does
    (says "assigned" once it has partitions; on "stop" sends {tenant: {window: epoch ms}}); the results that
    come together are seen at once."""
    _own_session()
    consumer = committed_consumer(bootstrap, f"bench.{run_id}.watch", **{"fetch.wait.max.ms": FETCH_WAIT_MS})
    consumer.subscribe([f"{t}.results.alarm_rate" for t in tenants])
    visible: dict[str, dict[tuple, float]] = {t: {} for t in tenants}
    waits: list[float] = []  # from each result's append to its commit
    assigned = False
    try:
        while not pipe.poll():
            messages = read_arrived(consumer, 0.1)
            seen = time.time() * 1000
            if not assigned and consumer.assignment():
                assigned = True
                pipe.send("assigned")
            for msg in messages:
                if msg.error():
                    continue
                row = codec.decode(msg.value(), "alarm_rate_result.v1", logical_types=False)
                visible[row["tenant"]].setdefault((row["station_id"], row["datapoint_id"], row["window_start"]),
                                                  seen)
                waits.append(seen - msg.timestamp()[1])
    finally:
        consumer.close()
    pipe.send((visible, waits))


class CommitWatcher:
    """_watch in a process of its own, so that the bench's producers and the clients' processes do not delay
    what it notes: the moment each result's transaction committed, as near as a client can tell."""

    def __init__(self, bootstrap: str, run_id: str, tenants: list[str]) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_watch, args=(bootstrap, run_id, tenants, child), daemon=True)
        self.process.start()
        if not self.pipe.poll(90) or self.pipe.recv() != "assigned":
            raise RuntimeError("the commit watcher got no partitions of the results topics")

    def stop(self) -> tuple[dict[str, dict[tuple, float]], list[float]]:
        """({tenant: {window: when it became visible}}, the milliseconds from each append to that)."""
        self.pipe.send("stop")
        if not self.pipe.poll(60):
            raise RuntimeError("the commit watcher did not report")
        visible = self.pipe.recv()
        self.process.join(10)
        return visible


def _commit_emulated(bootstrap: str, run_id: str, tenants: list[str], args: argparse.Namespace) -> None:
    """Commit what the job would: every `period` seconds a transaction of one window per key and tenant."""
    committer = producer(bootstrap, **{"transactional.id": f"bench.{run_id}.results"})
    committer.init_transactions(30)
    for period in range(args.periods):
        committer.begin_transaction()
        for tenant in tenants:
            for window in _windows(tenant, args.keys, period):
                committer.produce(f"{tenant}.results.alarm_rate", codec.encode("alarm_rate_result.v1", window),
                                  key=window["station_id"].encode())
        committer.commit_transaction(30)
        time.sleep(args.period)


def _run_job(bootstrap: str, run_id: str, tenants: list[str], keyspace: str, args: argparse.Namespace,
             log: TextIO, meter: MachineCpu) -> float:
    """The alarm-rate job, live, while simulated alarm events arrive at `rate` a second for `warmup` and then
    `seconds` seconds; when the warm-up ended (epoch ms)."""
    ensure_topics(bootstrap, [f"{t}.{s}" for t in tenants for s in ("sensors.alarms", "deadletter", "late",
                                                                     "alerts")], partitions=2)
    job = subprocess.Popen([sys.executable, "-m", "bench.flink_job", "job", "--tenants", ",".join(tenants),
                            "--group", f"bench.{run_id}.job", "--keyspace", keyspace, "--live"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    meter.roles[job.pid] = "bench: the alarm-rate job (mini cluster)"
    try:
        if job.stdout.readline().strip() != READY:
            raise RuntimeError(f"the alarm-rate job did not start; see {log.name}")
        spec = SimulationSpec(tenants=tuple(tenants), events=int(args.rate * (args.warmup + args.seconds))
                              // len(tenants), rate=args.rate, malformed=0.0, old_schema=0.0,
                              start_ms=int(time.time() * 1000))
        # Made before they are sent, and sent in batches of 200 ms: the load, not its making or a request every
        # few records, shares the cores (the broker spent 0.15 core on the requests at 50 ms, 0.06 at 200 ms).
        events = list(alarm_events(spec))
        warmed_ms = time.time() * 1000 + args.warmup * 1000
        produce(iter(events), bootstrap, len(events), rate=args.rate, progress=None, linger_ms=200)
        deadline = time.monotonic() + JOB_CATCH_UP_S  # a loaded machine's job falls behind the events
        sources = [f"{t}.sensors.alarms" for t in tenants]
        while pending_records(bootstrap, sources, f"bench.{run_id}.job") and time.monotonic() < deadline:
            time.sleep(2)
        time.sleep(args.period)  # the job's next checkpoints commit the windows that closed
    finally:
        _stop(job, signal.SIGINT, 120)
    return warmed_ms


def _committed(bootstrap: str, run_id: str, tenants: list[str]) -> dict[str, set]:
    """The windows committed on each tenant's results topic, as the clients key them."""
    found: dict[str, set] = {t: set() for t in tenants}
    for msg in read_all(bootstrap, [f"{t}.results.alarm_rate" for t in tenants], f"bench.{run_id}.check"):
        row = codec.decode(msg.value(), "alarm_rate_result.v1", logical_types=False)
        found[row["tenant"]].add((row["station_id"], row["datapoint_id"], row["window_start"]))
    return found


def _windows(tenant: str, keys: int, period: int) -> list[dict]:
    start = T0 + period * 60_000
    return [{"tenant": tenant, "station_id": f"bts-{k // 4:04d}", "datapoint_id": f"dp-{k % 4}",
             "window_start": start, "window_end": start + 60_000, "fires": k % 7, "events": 25,
             "rate": (k % 7) / 25} for k in range(keys)]


def run(args: argparse.Namespace) -> dict:
    cfg = load_config()
    run_id = uuid.uuid4().hex[:8]
    tenants = [f"bench{run_id}t{i}" for i in range(args.tenants)]
    database, keyspace = f"bench_dash_{run_id}", f"bench_dash_{run_id}"
    bootstrap = cfg.kafka.bootstrap
    ensure_topics(bootstrap, [f"{t}.results.alarm_rate" for t in tenants], partitions=2)
    store = MetadataStore(cfg.ferretdb.uri, database)
    tokens = TokenStore(store.db)
    for tenant in tenants:
        store.db["registry"].insert_one({"_id": tenant, "principal": f"tenant-{tenant}"})
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(Path(args.log), "a")  # noqa: SIM115 - the server and the job write to it while they live
    server = subprocess.Popen([sys.executable, "-m", "submit.cli", "serve", "--port", str(port), "--database",
                               database, "--keyspace", keyspace, "--tenants-matching", f"bench{run_id}t[0-9]+"],
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/v1/tables", timeout=2).read()
                break
            except urllib.error.HTTPError:  # 401: it answers
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"serve did not start; see {args.log}") from None
                time.sleep(0.3)
        cookies = {t: _login(base, tokens.create(t, False, timedelta(hours=2))[1]) for t in tenants}
        assignments = [(tenants[i % len(tenants)], cookies[tenants[i % len(tenants)]]) for i in range(args.clients)]
        workers = [_Worker(base, assignments[w::args.workers], not args.single_frames) for w in range(args.workers)]
        for worker in workers:
            worker.ready()
        ensure_topics(bootstrap, [f"{t}.results.alarm_rate" for t in tenants], partitions=2)
        watcher = CommitWatcher(bootstrap, run_id, tenants)
        if args.nice:  # the measured processes and the measuring ones ahead of the rest of the machine
            for pid in (server.pid, watcher.process.pid, *(w.process.pid for w in workers)):
                _renice(pid, args.nice)
        cpu_before, wall_before = _cpu_seconds(server.pid), time.monotonic()
        meter = MachineCpu()
        meter.roles.update({os.getpid(): "bench: producer, checks", server.pid: "bench: tenantstream serve",
                            watcher.process.pid: "bench: commit watcher",
                            **{w.process.pid: "bench: client processes" for w in workers}})
        warmed_ms = 0.0
        if args.job:  # the producers and the job's client start after the forks
            warmed_ms = _run_job(bootstrap, run_id, tenants, keyspace, args, log, meter)
        else:
            _commit_emulated(bootstrap, run_id, tenants, args)
        committed = _committed(bootstrap, run_id, tenants)
        visible, commit_waits = watcher.stop()
        machine = meter.stop()
        results = [r for worker in workers
                   for r in worker.results({t: len(k) for t, k in committed.items()}, visible)]
        measured = {"cpu_seconds": _cpu_seconds(server.pid) - cpu_before,
                    "wall_seconds": time.monotonic() - wall_before}
        scrape = urllib.request.Request(f"{base}/metrics", headers={
            "Authorization": f"Bearer {tokens.create(tenants[0], True, timedelta(hours=1))[1]}"})
        exposition = urllib.request.urlopen(scrape, timeout=10).read().decode()
        delays = [d for r in results for d in r["delays_ms"]]
        warmup_delays: list[float] = []
        bursts: dict[float, list[float]] = defaultdict(list)  # a watcher's read: the results one commit made visible
        for r in results:
            for seen, d in r["commit_delays_ms"]:
                (warmup_delays if seen < warmed_ms else bursts[seen]).append(d)
        commit_delays = [d for delays_of_read in bursts.values() for d in delays_of_read]
        report = {
            "clients": args.clients, "tenants": args.tenants, "batch_frames": not args.single_frames,
            "source": "the alarm-rate job" if args.job else "emulated checkpoints",
            "windows_committed": sum(len(k) for k in committed.values()),
            "windows_received": len(delays),
            "frames_received": sum(r["frames"] for r in results),
            "every_window_exactly_once": len(results) == args.clients and any(committed.values()) and all(
                r["digest"] == _digest(committed[r["tenant"]]) and r["duplicates"] == 0 for r in results),
            "clients_missing_windows": sum(r["windows"] < len(committed[r["tenant"]]) for r in results),
            "duplicate_frames": sum(r["duplicates"] for r in results),
            "foreign_frames": sum(r["foreign"] for r in results),
            "commit_to_client_ms": _spread(commit_delays),
            # Of each batch of results the watcher read at once after the warm-up (a commit's, or its share of a
            # partition): when its first client had it, and how much later its last did (the fan-out to every
            # page and the clients' reading).
            "batches_seen": len(bursts),
            "commit_to_first_client_ms": _spread([min(d) for d in bursts.values()]),
            "first_to_last_client_ms": _spread([max(d) - min(d) for d in bursts.values()]),
            "warmup_seconds": args.warmup if args.job else 0,
            "commit_to_client_ms_in_warmup": _spread(warmup_delays),
            "windows_seen_committing": sum(len(v) for v in visible.values()),
            "append_to_client_ms": _spread(delays),
            # The server's own histograms (bucket bounds: at most), from the result's append to the end of its
            # send, and by stage: append to the server's consumer reading it, that read to the event loop taking
            # it, and that read to the end of its send to each page.
            "server_push_delay_ms_at_most": _server_delays(exposition),
            "niceness": args.nice,
            "stages_ms": {
                "append_to_commit_seen_by_watcher": _spread(commit_waits),
                "append_to_server_read_at_most": _server_delays(exposition, "receive"),
                "server_read_to_event_loop_at_most": _server_delays(exposition, "handoff"),
                "server_read_to_sent_at_most": _server_delays(exposition, "fanout"),
                "append_to_client": _spread(delays),
                "commit_to_client": _spread(commit_delays),
            },
            "machine": machine,
            "server_cpu_seconds": round(measured["cpu_seconds"], 1),
            "server_cpu_share_of_one_core": round(measured["cpu_seconds"] / measured["wall_seconds"], 2),
            "server_peak_rss_mib": round(_peak_rss_bytes(server.pid) / 2**20, 1),
            "wall_seconds": round(measured["wall_seconds"], 1),
            "load_average_1m_at_end": round(os.getloadavg()[0], 1),  # the machine's other work competes for it
            "cores": os.cpu_count(),
        }
        return report
    finally:
        _stop(server, signal.SIGTERM, 20)
        log.close()
        store.client.drop_database(database)
        store.close()
        delete_topics(bootstrap, lambda topic: run_id in topic)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--keys", type=int, default=80, help="windows a tenant a period (stations x datapoints)")
    parser.add_argument("--period", type=float, default=5.0, help="seconds between commits (one window length)")
    parser.add_argument("--periods", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--job", action="store_true", help="run the alarm-rate job on simulated alarm events "
                        "instead of committing emulated windows")
    parser.add_argument("--rate", type=float, default=2000.0, help="alarm events a second over all tenants (--job)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long events are produced (--job)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds of events before those --seconds "
                        "(--job) whose results' delays are reported apart (`..._in_warmup`): a new job's JVM "
                        "compiles its hot code then, on the cores the dashboard shares")
    parser.add_argument("--single-frames", action="store_true",
                        help="one frame a window, as the page asks (default: the resume asks for batch frames)")
    parser.add_argument("--nice", type=int, default=0, help="run the server, the clients and the commit watcher "
                        "at this niceness (negative: ahead of the job and the stack; needs root): how much of the "
                        "delay is the wait for a core")
    parser.add_argument("--log", default="/tmp/bench-dashboard-serve.log")
    args = parser.parse_args(argv)
    print(json.dumps(run(args), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
