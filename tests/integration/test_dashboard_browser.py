"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright against a real
`tenantstream serve` process, a real job and the real stack.

What a person sees is checked on the page (rows, figures, the connection state) and what the server
sent on the WebSocket frames themselves (Playwright's `framereceived`), so a record of another tenant
that the page happens not to draw still fails the test. Each test leaves a screenshot of the pages it
opened in $TENANTSTREAM_SCREENSHOTS, by default a folder under the system's temporary directory; point it at
docs/screenshots to renew the README's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from connectors.cassandra import connect
from connectors.kafka import ensure_topics, producer
from jobs.alarm_rate import alarm_rate_job
from jobs.flow_aggregates import FLOW_TABLE, flow_aggregates_job
from jobs.sensor_health import SENSOR_HEALTH_TABLES, sensor_health_job
from operators.alerts import ALARM_RATE_ALERT, alert_for
from operators.flow import metadata_from_assets
from operators.windows import tumbling
from pipeline.job import RunSettings
from schemas import codec
from stack.browser import LAUNCH_ARGS, chromium
from stack.frontend import dashboard_assets
from submit.local import pending_records, run_job
from submit.simulate import SimulationSpec, alarm_events, flow_readings, flow_topology, produce
from tests.health_oracle import beats_from, sensor_health
from tests.health_patterns import OUT_OF_ORDERNESS, scripted

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("TENANTSTREAM_SCREENSHOTS", Path(tempfile.gettempdir()) / "tenantstream-screenshots"))
CLI = Path(sys.executable).with_name("tenantstream")
TOKEN = re.compile(r"^token: (tst_\S+)$", re.MULTILINE)
TOKEN_ID = re.compile(r"token ([0-9a-f]{12}) of tenant")
# Frames as the page received them, each with the browser's clock: the commit-to-page delay is measured
# where the page is, not where the test happens to read Playwright's events.
STAMP_FRAMES = """
window.__frames = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (e) => window.__frames.push([Date.now(), e.data]));
  }
};
"""
LIVE_WITHIN_MS = 10_000
# The alarm-rate job of two tenants, unbounded, in a child process as `tenantstream run` runs it (a bounded
# Kafka source of two topics cannot stop at given offsets), writing into the test's keyspace; Ctrl-C
# (SIGINT) cancels it and its writers copy what it committed.
JOB_CHILD = """
import sys
import tempfile
from pathlib import Path
from jobs.alarm_rate import ALARM_RATE_TABLE, alarm_rate_job
from pipeline.job import RunSettings
from operators.windows import tumbling
from stack.config import load_config
from submit.local import run_job
cfg = load_config()
job = alarm_rate_job(sys.argv[1].split(","), window=tumbling(seconds=int(sys.argv[2])))
run_job(job, ALARM_RATE_TABLE, cfg, RunSettings(cfg.kafka.bootstrap), Path(sys.argv[4]), keyspace=sys.argv[3],
        on_running=lambda: print("RUNNING", flush=True))
"""


def flat(frame: dict) -> list[dict]:
    """The frames one server frame carries: a `batch` holds several (PROTOCOL.md, resume's `batch`)."""
    return frame["frames"] if frame["type"] == "batch" else [frame]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args: str) -> str:
    """Run a tenantstream command; its stdout, or a failure with its stderr."""
    done = subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, f"tenantstream {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}"
    return done.stdout


class Server:
    """`tenantstream serve` as a child process, started, killed with SIGKILL and started again on one port."""

    def __init__(self, keyspace: str, database: str, tenants: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--keyspace", keyspace,
                     "--database", database, "--tenants-matching", tenants]
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        out = self.log.open("a")
        self.process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited {self.process.returncode}: {self.tail()}"
            try:
                with urllib.request.urlopen(f"{self.url}/metrics", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        raise AssertionError(f"serve did not answer on {self.url} within {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class Tab:
    """One logged-in page of one browser context, with every WebSocket frame the server sent it."""

    def __init__(self, browser, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1360, "height": 900})
        self.page = self.context.new_page()
        self.frames: list[str] = []
        self.sockets = 0
        self.errors: list[str] = []
        self.page.add_init_script(STAMP_FRAMES)
        self.page.on("websocket", self._socket)
        self.page.on("pageerror", lambda err: self.errors.append(str(err)))
        self.page.goto(url)
        self.page.wait_for_selector("#login:not([hidden])")

    def _socket(self, ws) -> None:
        self.sockets += 1
        ws.on("framereceived", lambda payload: self.frames.append(payload if isinstance(payload, str)
                                                                   else payload.decode()))

    def login(self, token: str) -> None:
        self.page.fill("#token", token)
        self.page.click("#login-form button")

    def wait(self, condition: str, timeout_s: float = 30) -> None:
        """Until the expression is true in the page. (Playwright's wait_for_function evaluates its predicate
        with eval, which the server's Content-Security-Policy refuses, as it should.)"""
        deadline = time.monotonic() + timeout_s
        while not self.page.evaluate(condition):
            assert time.monotonic() < deadline, f"not true within {timeout_s:g} s: {condition}"
            self.page.wait_for_timeout(200)

    def rows(self, table: str) -> list[dict]:
        return self.page.evaluate("t => window.dashboard.rows(t)", table)

    def stamped(self) -> list[tuple[int, dict]]:
        """Every frame with the browser's clock when its server frame arrived."""
        return [(at, one) for at, data in self.page.evaluate("window.__frames") for one in flat(json.loads(data))]

    def show(self, page: str, ready: str, shot: str) -> None:
        """Open one of the pages, wait until it is drawn, and keep a screenshot of it."""
        self.page.evaluate("p => { location.hash = p }", page)
        self.wait(ready)
        self.page.wait_for_timeout(400)  # the charts draw on the next animation frame
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / shot), full_page=True)

    def close(self) -> None:
        """Close the page's context; a script error the page raised meanwhile fails the test."""
        self.context.close()
        assert self.errors == [], f"the page raised: {self.errors}"


@pytest.fixture(scope="module")
def browser(stack) -> Iterator:
    """Debian's Chromium (installed on first use), headless; every launch gets a fresh profile folder."""
    executable = chromium(stack.cache_dir)
    dashboard_assets(stack.cache_dir)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), args=list(LAUNCH_ARGS), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def server(stack, unique, keyspace, store, tmp_path) -> Iterator[Server]:
    """The dashboard over this test's keyspace, metadata database and tenants (named with `unique`)."""
    server = Server(keyspace, store.db.name, f"[a-z]+{unique}", tmp_path / "serve.log")
    server.start()
    yield server
    server.stop()


def tenant_with_token(bootstrap: str, database: str, tenant: str, *jobs) -> tuple[str, str]:
    """Register `tenant` with single-partition topics of `jobs` (so its record order is known); its token
    and the token's id."""
    ensure_topics(bootstrap, sorted({topic for job in jobs for topic in job.topics(tenant).all()}), partitions=1)
    cli("tenant", "create", tenant, "--database", database)
    made = cli("tenant", "token", "create", tenant, "--database", database)
    return TOKEN.search(made)[1], TOKEN_ID.search(made)[1]


def cassandra_rows(port: int, keyspace: str, table: str, tenant: str) -> list[dict]:
    """A tenant's rows of a result table, timestamps as epoch milliseconds, as the page holds them."""
    cluster, session = connect(port, keyspace, role="reader")
    try:
        rows = session.execute(f"SELECT * FROM {table} WHERE tenant = %s ALLOW FILTERING", (tenant,))
        return [{k: int(v.replace(tzinfo=UTC).timestamp() * 1000) if isinstance(v, datetime) else v
                 for k, v in r._asdict().items()} for r in rows]
    finally:
        cluster.shutdown()


def by_window(rows: list[dict]) -> list[tuple]:
    """Rows as sorted comparable tuples: a row held twice appears twice."""
    return sorted(tuple(sorted(r.items())) for r in rows)


def in_background(target: Callable[[], object]) -> tuple[threading.Thread, list]:
    """Run `target` on a thread (the browser's events are served on this one); its error lands in the list."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as err:  # handed back to the test, which fails with it
            errors.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def eventually(check: Callable[[], bool], timeout_s: float, tab: Tab, what: Callable[[], str] = lambda: "") -> None:
    """Until `check()` holds, serving the browser's events meanwhile; `what()` says what was wrong at the end."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"not so within {timeout_s:g} s {what()}"
        tab.page.wait_for_timeout(500)


def difference(held: list[dict], expected: list[dict]) -> str:
    have, want = by_window(held), by_window(expected)
    return (f"({len(have)} rows held, {len(want)} in Cassandra: {len(set(want) - set(have))} missing, "
            f"{len(set(have) - set(want))} not in Cassandra, {len(have) - len(set(have))} held twice)")


def test_live_windows_reach_only_their_tenant_and_survive_a_killed_server(stack, unique, keyspace, store,
                                                                           server, browser, tmp_path):
    a, b = f"da{unique}", f"db{unique}"
    window = tumbling(seconds=10)
    job = alarm_rate_job([a, b], window=window)
    tokens = {t: tenant_with_token(stack.kafka.bootstrap, store.db.name, t, job)[0] for t in (a, b)}
    tabs = {t: Tab(browser, server.url) for t in (a, b)}
    for t, tab in tabs.items():
        tab.login(tokens[t])
        tab.wait("window.dashboard.state() === 'live'")
        assert tab.page.text_content("#who") == t

    # The job runs first and the events stream in at 200/s over 40 s: 10 s windows of event time close
    # about once a second, while the pages watch.
    spec = SimulationSpec(tenants=(a, b), events=4000, stations=3, datapoints=2, out_of_order=0.05,
                          late=0.01, malformed=0.02, seed=23, window_ms=window.size_ms)
    records = list(alarm_events(spec))
    job_log = tmp_path / "job.log"
    with job_log.open("w") as out:
        child = subprocess.Popen([sys.executable, "-c", JOB_CHILD, f"{a},{b}", str(window.size_ms // 1000), keyspace,
                                  str(tmp_path / "checkpoints")], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        eventually(lambda: "RUNNING" in job_log.read_text() or child.poll() is not None, 180, tabs[a])
        assert child.poll() is None, f"the job exited {child.returncode}: {job_log.read_text()[-2000:]}"
        producing, produce_errors = in_background(
            lambda: produce(iter(records), stack.kafka.bootstrap, len(records), rate=200, progress=None))

        # Mid-stream: the pages follow live windows, then the server dies without a word and comes back.
        # B reconnects at once; A is kept offline until the new server has read its look-back, so that what
        # was committed meanwhile reaches A only through its resume (from the newest window it holds).
        tabs[a].wait("window.dashboard.rows('alarm_rate').length >= 30", timeout_s=120)
        assert producing.is_alive(), "the events were all sent before the server was killed: not mid-stream"
        connects = tabs[a].page.evaluate("window.dashboard.connects()")
        killed_at = tabs[a].page.evaluate("Date.now()")
        server.kill()
        tabs[a].context.set_offline(True)
        tabs[a].wait("window.dashboard.state() !== 'live'", timeout_s=10)
        held = {(r["station_id"], r["datapoint_id"], r["window_start"]) for r in tabs[a].rows("alarm_rate")}
        server.start()
        tabs[b].wait("window.dashboard.state() === 'live'", timeout_s=30)
        tabs[a].page.wait_for_timeout(4000)
        assert tabs[a].page.evaluate("window.dashboard.connects()") == connects, "A reconnected while offline"
        tabs[a].context.set_offline(False)
        eventually(lambda: not producing.is_alive(), 180, tabs[a])
        assert not produce_errors, produce_errors
        # the job has read everything once its committed offsets (a checkpoint's) reach the topics' ends
        eventually(lambda: pending_records(stack.kafka.bootstrap, [job.topics(t).source for t in (a, b)],
                                           job.default_group) == 0, 120, tabs[a])
    finally:
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=120) == 0, f"the job exited {child.returncode}: {job_log.read_text()[-2000:]}"

    expected = {t: cassandra_rows(stack.cassandra.port, keyspace, "alarm_rate", t) for t in (a, b)}
    assert len(expected[a]) > 60 and len(expected[b]) > 60
    for t, tab in tabs.items():
        tab.wait("window.dashboard.state() === 'live'", timeout_s=30)
        eventually(lambda tab=tab, t=t: by_window(tab.rows("alarm_rate")) == by_window(expected[t]), 30, tab,
                   lambda tab=tab, t=t: difference(tab.rows("alarm_rate"), expected[t]))
        assert tab.page.evaluate("window.dashboard.connects()") >= 2, "the page never reconnected"
    assert tabs[a].page.evaluate("window.dashboard.connects()") == connects + 1
    resumed = {(r["station_id"], r["datapoint_id"], r["window_start"]) for _, f in tabs[a].stamped()
               if f["type"] == "window" and f["source"] == "history" for r in [f["row"]]} - held
    assert len(resumed) >= 6, "A's resume brought no window committed while it was away: the test proves nothing"

    # (a) every window the first server pushed live reached the page within 10 s of its commit (a restarted
    # server replays its look-back, which is older by design)
    live = [(at, f["row"], f["committed_ms"]) for at, f in tabs[a].stamped()
            if f["type"] == "window" and f["source"] == "live" and at < killed_at]
    assert len(live) >= 30
    late = [(row["station_id"], row["datapoint_id"], row["window_start"], at - committed)
            for at, row, committed in live if at - committed > LIVE_WITHIN_MS]
    assert late == [], f"windows on the page more than 10 s after their commit: {late[:5]}"

    # the table draws the newest window of every key with the values of its Cassandra row
    newest: dict[tuple, dict] = {}
    for row in expected[a]:
        key = (row["station_id"], row["datapoint_id"])
        if key not in newest or row["window_start"] > newest[key]["window_start"]:
            newest[key] = row
    drawn = tabs[a].page.eval_on_selector_all(
        "#alarm-table tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.dataset.value ?? td.textContent))")
    assert sorted((c[1], c[2], int(c[3]), int(c[4]), int(c[5]), float(c[6])) for c in drawn) == sorted(
        (k[0], k[1], r["window_start"], r["fires"], r["events"], r["rate"]) for k, r in newest.items())

    # (b) neither tenant was sent a byte of the other's records, on any connection, before or after the kill
    for t, other in ((a, b), (b, a)):
        frames = [one for f in tabs[t].frames for one in flat(json.loads(f))]
        assert sum(f["type"] == "window" for f in frames) >= len(expected[t])
        assert not [f for f in tabs[t].frames if other in f], f"{t} received a frame naming {other}"
        assert {f["tenant"] for f in frames if "tenant" in f} == {t}
        assert tabs[t].sockets >= 2

    tabs[a].show("alarm", "document.querySelectorAll('#alarm-table tbody tr').length > 0", "alarm_rate.png")
    tabs[a].show("operations", "document.querySelectorAll('#ops-table tbody tr').length > 0", "operations.png")
    for tab in tabs.values():
        tab.close()


def test_an_operators_page_highlights_alerts_and_resumes_each_tenant_from_its_own_newest_window(
        stack, unique, store, server, browser):
    a, b = f"oa{unique}", f"ob{unique}"
    for tenant in (a, b):
        tenant_with_token(stack.kafka.bootstrap, store.db.name, tenant, alarm_rate_job([tenant]))
    operator = TOKEN.search(cli("tenant", "token", "create", a, "--operator", "--database", store.db.name))[1]
    results = producer(stack.kafka.bootstrap)

    def commit(tenant: str, start_min: int, rate: float = 0.1) -> dict:
        """A result window of the tenant's station S1 as the job commits it, and its alert if the rate is high."""
        start = 1767240000000 + start_min * 60_000
        row = {"tenant": tenant, "station_id": "S1", "datapoint_id": "D1", "window_start": start,
               "window_end": start + 60_000, "fires": int(rate * 10), "events": 10, "rate": rate}
        results.produce(f"{tenant}.results.alarm_rate", codec.encode("alarm_rate_result.v1", row))
        alert = alert_for(ALARM_RATE_ALERT, row, {"alarm_rate_threshold": 0.5})
        if alert is not None:
            results.produce(f"{tenant}.alerts", codec.encode("alert.v1", alert))
        assert results.flush(30) == 0
        return row

    tab = Tab(browser, server.url)
    tab.login(operator)
    tab.wait("window.dashboard.state() === 'live'")
    # A's newest window is 10 minutes after B's, and alerted
    expected = [commit(a, 10, rate=0.9), commit(b, 0)]
    tab.page.evaluate("p => { location.hash = p }", "alarm")
    tab.wait("document.querySelectorAll('#alarm-table tbody tr').length === 2 && "
             "document.querySelectorAll('#alert-list li').length === 1")
    drawn = tab.page.eval_on_selector_all("#alarm-table tbody tr", "trs => trs.map(tr => [tr.cells[0].textContent, "
                                          "tr.classList.contains('alert'), tr.cells[6].classList.contains('hot')])")
    assert sorted(drawn) == [[a, True, True], [b, False, False]]
    assert f"{a} alarm_rate S1/D1" in tab.page.text_content("#alert-list li")

    # While the page is away, B commits a window between its newest and A's: a resume after the greatest time
    # held (A's) would skip it.
    server.kill()
    tab.wait("window.dashboard.state() !== 'live'", timeout_s=10)
    expected += [commit(b, 5), commit(a, 11)]
    server.start()
    tab.wait("window.dashboard.state() === 'live'", timeout_s=60)
    eventually(lambda: by_window(tab.rows("alarm_rate")) == by_window(expected), 30, tab,
               lambda: difference(tab.rows("alarm_rate"), expected))
    # A reload starts from nothing; the alert (it has no table), read again in the restarted server's look-back,
    # comes with the history, so the page still lists it.
    tab.page.reload()
    tab.wait("window.dashboard.state() === 'live'", timeout_s=60)
    eventually(lambda: by_window(tab.rows("alarm_rate")) == by_window(expected), 30, tab,
               lambda: difference(tab.rows("alarm_rate"), expected))
    tab.wait("document.querySelectorAll('#alert-list li').length === 1")
    assert f"{a} alarm_rate S1/D1" in tab.page.text_content("#alert-list li")
    tab.close()


def test_a_wrong_or_revoked_token_shows_an_error_and_no_data(stack, unique, store, server, browser):
    tenant = f"dr{unique}"
    token, ident = tenant_with_token(stack.kafka.bootstrap, store.db.name, tenant, alarm_rate_job([tenant]))

    tab = Tab(browser, server.url)
    tab.login(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    tab.wait("!document.getElementById('login-error').hidden")
    assert "Invalid token" in tab.page.text_content("#login-error")
    assert tab.sockets == 0 and tab.page.evaluate("window.dashboard.state()") == "offline"
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.page.screenshot(path=str(SHOTS / "login_error.png"))

    tab.login(token)  # the right one works: the wrong one failed for being wrong
    tab.wait("window.dashboard.state() === 'live'")
    assert tab.page.is_hidden("#login") and tab.page.is_hidden("#login-error")
    cli("tenant", "token", "revoke", ident, "--database", store.db.name)
    # the open page's session dies with its token: the server closes its WebSocket (within 30 s), and the
    # page, refused on reconnecting, asks to log in again and drops what it held
    tab.wait("!document.getElementById('login').hidden", timeout_s=60)
    assert "session has ended" in tab.page.text_content("#login-error")
    assert tab.page.evaluate("window.dashboard.state()") == "offline"
    tab.page.reload()
    tab.wait("!document.getElementById('login').hidden")
    tab.login(token)
    tab.wait("!document.getElementById('login-error').hidden")
    assert "Invalid token" in tab.page.text_content("#login-error")
    assert tab.page.evaluate("window.dashboard.state()") == "offline"
    assert tab.page.evaluate("['alarm_rate', 'flow_aggregates', 'sensor_health'].map(t => "
                             "window.dashboard.rows(t).length)") == [0, 0, 0]
    assert tab.page.eval_on_selector_all("table.data tbody tr", "trs => trs.length") == 0
    assert tab.sockets == 1, "a WebSocket was opened without a good token"
    tab.close()


def test_the_health_page_shows_the_oracles_figures_and_the_flow_page_the_newest_windows(
        stack, unique, keyspace, store, server, browser, tmp_path):
    tenant, minutes = f"dh{unique}", 2
    window = tumbling(minutes=5)
    job = sensor_health_job([tenant], window=window, silence_minutes=lambda t: minutes)
    flow = flow_aggregates_job([tenant], metadata_from_assets(flow_topology([tenant]), [tenant]))
    token, _ = tenant_with_token(stack.kafka.bootstrap, store.db.name, tenant, job, flow)
    records = scripted({tenant: minutes})
    produce(iter(records), stack.kafka.bootstrap, len(records), progress=None)
    run_job(job, SENSOR_HEALTH_TABLES, stack,
            RunSettings(stack.kafka.bootstrap, out_of_orderness_s=OUT_OF_ORDERNESS // 1000, stop_at="latest",
                        watermark_emit="on-event"), tmp_path / "health", keyspace=keyspace)
    readings = list(flow_readings(SimulationSpec(tenants=(tenant,), events=3000, malformed=0.0, late=0.0,
                                                 seed=29)))
    produce(iter(readings), stack.kafka.bootstrap, len(readings), progress=None)
    run_job(flow, FLOW_TABLE, stack, RunSettings(stack.kafka.bootstrap, stop_at="latest"), tmp_path / "flow",
            keyspace=keyspace)

    oracle = sensor_health(beats_from(records), {tenant: minutes}, window.size_ms, OUT_OF_ORDERNESS)
    windows = [fields for (t, _, _), fields in sorted(oracle.health.items()) if t == tenant]
    assert len(windows) >= 3
    newest = windows[-1]
    # The mean time between heartbeats over the whole history: each window's mean weighted by its intervals
    # (its heartbeats but those of sensors first seen in it).
    known_before, weighted, intervals = 0, 0.0, 0
    for w in windows:
        n = w["heartbeats"] - (w["known_sensors"] - known_before)
        known_before = w["known_sensors"]
        if n:
            weighted += w["mean_interval_ms"] * n
            intervals += n
    expected = {"fig-silent-share": newest["silent_share"], "fig-mean-interval": weighted / intervals,
                "fig-mean-lifespan": newest["mean_lifespan_ms"]}
    newest_silence = {s.sensor_id: s for s in oracle.silences if s.tenant == tenant}  # in event-time order
    silent = {sensor for sensor, s in newest_silence.items() if s.state == "silent"}
    assert silent, "the scripted heartbeats leave no sensor silent: the list below would prove nothing"

    tab = Tab(browser, server.url)
    tab.login(token)
    tab.wait("window.dashboard.state() === 'live'")
    tab.show("health", "document.querySelector('#fig-silent-share').dataset.value !== undefined", "health.png")
    shown = tab.page.evaluate("ids => ids.map(id => document.getElementById(id).dataset.value)", list(expected))
    for (figure, value), text in zip(expected.items(), shown, strict=True):
        assert float(text) == pytest.approx(value, rel=1e-9), figure
    drawn = set(tab.page.eval_on_selector_all("#silent-table tbody tr", "trs => trs.map(tr => tr.dataset.sensor)"))
    assert drawn == silent

    # the flow page: a chart per kind, and the newest window of every sensor as Cassandra holds it
    rows = cassandra_rows(stack.cassandra.port, keyspace, FLOW_TABLE.name, tenant)
    newest: dict[str, dict] = {}
    for row in rows:
        if row["sensor_id"] not in newest or row["window_start"] > newest[row["sensor_id"]]["window_start"]:
            newest[row["sensor_id"]] = row
    assert {r["kind"] for r in newest.values()} == {"additive", "non_additive", "energy_counter", "power"}
    tab.show("flow", f"document.querySelectorAll('#flow-table tbody tr').length === {len(newest)}", "flow.png")
    drawn = tab.page.eval_on_selector_all(
        "#flow-table tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.dataset.value ?? td.textContent))")
    numbers = ("readings", "breaches", "sum", "mean", "increase", "energy_kwh")
    assert sorted((c[1], int(c[4]), *(None if v == "" else float(v) for v in c[5:])) for c in drawn) == sorted(
        (r["sensor_id"], r["window_end"], *(None if r[f] is None else float(r[f]) for f in numbers))
        for r in newest.values())
    assert tab.page.eval_on_selector_all("#flow-charts .panel .u-wrap", "charts => charts.length") == 4
    tab.close()
