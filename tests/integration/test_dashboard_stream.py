"""The dashboard's WebSocket push against the real stack: results committed in Kafka transactions and copied into
Cassandra by the real results writer; two tenants' clients at once; the server killed with SIGKILL mid-stream
and restarted. Tenant B never receives a frame of A (asserted on the frames), and A's client, resuming from
the newest window it holds, ends holding exactly A's rows in Cassandra: none missing, none received twice
(except the window at the resume point, which the protocol sends again on purpose); an operator's client
ends holding both tenants' rows. And the gap a window time alone leaves: the server reads a later transaction's
window of partition 0 before an earlier transaction's window of partition 1, held back behind a transaction still
open there (as a job's next checkpoint leaves one); a client gone between the two resumes with the commit time it
received and gets the earlier window again, one without it never does."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter

from websockets.exceptions import ConnectionClosed, InvalidHandshake

from connectors.cassandra import connect
from connectors.kafka import ensure_topics, producer
from connectors.results import ResultsWriter
from jobs.alarm_rate import ALARM_RATE_TABLE
from operators.ranges import epoch_ms
from schemas import codec
from tests.dashboard_server import Served, login, make_token, open_stream, register, request

T0 = 1767240000000
MINUTE = 60_000
PRIMARY_KEY = ("tenant", "station_id", "datapoint_id", "window_start")


def _result(tenant: str, i: int) -> dict:
    start = T0 + i * MINUTE
    return {"tenant": tenant, "station_id": f"S{i % 2}", "datapoint_id": "D1", "window_start": start,
            "window_end": start + MINUTE, "fires": i, "events": 100, "rate": i / 100}


class Committer:
    """A transactional producer of alarm_rate results: one transaction per call, as a job's checkpoint does."""

    def __init__(self, bootstrap: str, transactional_id: str) -> None:
        self.producer = producer(bootstrap, **{"transactional.id": transactional_id})
        self.producer.init_transactions(30)

    def commit(self, records: list[dict], partitions: list[int] | None = None) -> None:
        """Commit `records`, each into its partition of `partitions` (the key's partition if not given)."""
        self.producer.begin_transaction()
        for r, partition in zip(records, partitions or [-1] * len(records), strict=True):
            self.producer.produce(f"{r['tenant']}.results.alarm_rate", codec.encode("alarm_rate_result.v1", r),
                                  key=r["station_id"].encode(), partition=partition)
        self.producer.commit_transaction(30)


class Client:
    """A page's part of the protocol: hold rows by primary key, resume from the newest held after a reconnect."""

    def __init__(self, base: str, cookie: str) -> None:
        self.base, self.cookie = base, cookie
        self.held: dict[tuple, dict] = {}
        self.frames: list[dict] = []
        self.resumed_at: list[int] = []  # the `after` of every resume after the first
        self.synced = asyncio.Event()
        self.connections = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                ws = await open_stream(self.base, self.cookie)
            except (OSError, InvalidHandshake, TimeoutError):  # the server is down or starting
                await asyncio.sleep(0.3)
                continue
            self.connections += 1
            after = {}
            if self.held:
                after = {"alarm_rate": max(row["window_start"] for row in self.held.values())}
                self.resumed_at.append(after["alarm_rate"])
            await ws.send(json.dumps({"type": "resume", "after": after}))
            try:
                while not stop.is_set():
                    try:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    except TimeoutError:
                        continue
                    self.frames.append(frame)
                    if frame["type"] == "synced":
                        self.synced.set()
                    elif frame["type"] == "window":
                        self.held[tuple(frame["row"][c] for c in PRIMARY_KEY)] = frame["row"]
            except ConnectionClosed:
                continue
            await ws.close()


def _cassandra_rows(port: int, keyspace: str, tenant: str, stations: tuple[str, ...] = ("S0", "S1")
                    ) -> dict[tuple, dict]:
    cluster, session = connect(port, keyspace)
    try:
        rows = {}
        for station in stations:
            for row in session.execute(
                    "SELECT * FROM alarm_rate WHERE tenant = %s AND station_id = %s AND datapoint_id = 'D1'",
                    (tenant, station)):
                found = {**row._asdict(), "window_start": epoch_ms(row.window_start),
                         "window_end": epoch_ms(row.window_end)}
                rows[tuple(found[c] for c in PRIMARY_KEY)] = found
        return rows
    finally:
        cluster.shutdown()


async def _until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout:g} s"
        await asyncio.sleep(0.1)


def test_b_never_sees_a_and_a_resumes_after_a_kill_holding_exactly_cassandras_rows(stack, unique, keyspace, store,
                                                                                 tmp_path):
    a, b = f"a{unique}", f"b{unique}"
    bootstrap = stack.kafka.bootstrap
    ensure_topics(bootstrap, [f"{t}.results.alarm_rate" for t in (a, b)], partitions=2)
    writer = ResultsWriter(bootstrap, stack.cassandra.port, ALARM_RATE_TABLE,
                           [f"{t}.results.alarm_rate" for t in (a, b)], f"it.{unique}.writer", keyspace)
    writer_thread = threading.Thread(target=writer.run, daemon=True)
    writer_thread.start()
    committer = Committer(bootstrap, f"it.{unique}.results")
    committer.commit([_result(t, i) for i in range(6) for t in (a, b)])  # history before anyone connects
    register(store, a, b)
    served = Served(store.db.name, keyspace, f".*{unique}", tmp_path / "serve.log")
    served.start()
    try:
        clients = {t: Client(served.base, login(served.base, make_token(store, t)[1])) for t in (a, b)}
        clients["operator"] = Client(served.base, login(served.base, make_token(store, a, operator=True)[1]))

        async def scenario() -> None:
            stop = asyncio.Event()
            tasks = [asyncio.create_task(c.run(stop)) for c in clients.values()]
            await asyncio.wait_for(asyncio.gather(*(c.synced.wait() for c in clients.values())), 30)
            for i in range(6, 12):  # live, one transaction a window
                await asyncio.to_thread(committer.commit, [_result(a, i), _result(b, i)])
            await _until(lambda: len(clients[a].held) == 12, 20, "A's 12 windows")
            for i in range(12, 40):  # the server dies at the 18th and starts again while this goes on
                await asyncio.to_thread(committer.commit, [_result(a, i), _result(b, i)])
                if i == 18:
                    await asyncio.to_thread(served.kill)
                if i == 24:
                    await asyncio.to_thread(served.start)
                await asyncio.sleep(0.05)
            await asyncio.to_thread(writer.drain, 120)
            await _until(lambda: len(clients[a].held) >= 40 and len(clients[b].held) >= 40
                         and len(clients["operator"].held) >= 80, 60, "every window")
            await asyncio.sleep(2)  # anything still to come would come now
            stop.set()
            await asyncio.gather(*tasks)

        asyncio.run(scenario())
        status, _, body = request(served.base, "GET", "/api/v1/operations", cookie=clients[a].cookie)
        assert status == 200 and b not in body
        (figures,) = json.loads(body)["jobs"]  # what the restarted server read: its look-back held all 40
        assert (figures["job"], figures["tenant"], figures["results"]) == ("alarm_rate", a, 40)
    finally:
        served.stop()
        writer.stop()
        writer_thread.join(30)

    in_cassandra = {t: _cassandra_rows(stack.cassandra.port, keyspace, t) for t in (a, b)}
    assert clients["operator"].held == {**in_cassandra[a], **in_cassandra[b]}  # an operator sees every tenant
    for tenant, other in ((a, b), (b, a)):
        client = clients[tenant]
        assert all(frame.get("tenant") in (None, tenant) for frame in client.frames)
        assert other not in json.dumps(client.frames), f"{tenant} received a frame of {other}"
        assert client.held == in_cassandra[tenant]
    for client in clients.values():
        assert client.connections >= 2, "the client reconnected after the kill"
        received = Counter(tuple(f["row"][c] for c in PRIMARY_KEY) for f in client.frames if f["type"] == "window")
        twice = {key for key, n in received.items() if n > 1}
        assert all(key[3] in client.resumed_at for key in twice), f"windows received twice: {sorted(twice)}"
        assert all(n <= 1 + client.resumed_at.count(key[3]) for key, n in received.items())


def _window(tenant: str, station: str, minute: int) -> dict:
    start = T0 + minute * MINUTE
    return {"tenant": tenant, "station_id": station, "datapoint_id": "D1", "window_start": start,
            "window_end": start + MINUTE, "fires": minute + 1, "events": 100, "rate": (minute + 1) / 100}


async def _receive(base: str, cookie: str, resume: dict, held: dict[tuple, dict], until,
                   synced: asyncio.Event | None = None) -> list[dict]:
    """One connection: send `resume`, hold the windows received by primary key (set `synced` on the `synced`
    frame), and close once `until(frame)`; the frames received."""
    frames = []
    async with await open_stream(base, cookie) as ws:
        await ws.send(json.dumps({"type": "resume", **resume}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            frames.append(frame)
            if frame["type"] == "window":
                held[tuple(frame["row"][c] for c in PRIMARY_KEY)] = frame["row"]
            if frame["type"] == "synced" and synced is not None:
                synced.set()
            if until(frame):
                return frames


def test_a_window_read_after_a_newer_one_reaches_a_client_resuming_with_the_commit_time_it_received(
        stack, unique, keyspace, store, tmp_path):
    tenant = f"r{unique}"
    bootstrap = stack.kafka.bootstrap
    topic = f"{tenant}.results.alarm_rate"
    ensure_topics(bootstrap, [topic, f"{tenant}.alerts"], partitions=2)
    writer = ResultsWriter(bootstrap, stack.cassandra.port, ALARM_RATE_TABLE, [topic], f"it.{unique}.writer",
                           keyspace)
    writer_thread = threading.Thread(target=writer.run, daemon=True)
    writer_thread.start()
    committer = Committer(bootstrap, f"it.{unique}.results")
    register(store, tenant)
    served = Served(store.db.name, keyspace, f".*{unique}", tmp_path / "serve.log")
    served.start()
    open_transaction = producer(bootstrap, **{"transactional.id": f"it.{unique}.open"})
    open_transaction.init_transactions(30)
    k1_w1, k2_w1, k1_w2 = _window(tenant, "S1", 0), _window(tenant, "S2", 0), _window(tenant, "S1", 1)
    alert = {"tenant": tenant, "job": "alarm_rate", "key": "S2/D1", "window_start": k2_w1["window_start"],
             "window_end": k2_w1["window_end"], "metric": "rate", "value": 0.9, "threshold": 0.5}
    try:
        cookie = login(served.base, make_token(store, tenant)[1])
        held = {"new": {}, "old": {}}  # resumes with committed_after / as a client before it did

        async def scenario() -> dict[str, list[dict]]:
            def synced(frame: dict) -> bool:
                return frame["type"] == "synced"

            def got_k1_w2(frame: dict) -> bool:
                return frame["type"] == "window" and frame["row"]["window_start"] == k1_w2["window_start"]

            live = {name: asyncio.Event() for name in held}
            clients = {name: asyncio.create_task(_receive(served.base, cookie, {}, held[name], got_k1_w2,
                                                          live[name])) for name in held}
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in live.values())), 30)
            # Partition 1 waits behind a transaction left open, as a job's next checkpoint leaves one ...
            open_transaction.begin_transaction()
            open_transaction.produce(topic, codec.encode("alarm_rate_result.v1", _window(tenant, "S9", 9)),
                                     partition=1)
            assert open_transaction.flush(30) == 0
            # ... so W1 of one transaction in partitions 0 and 1 and then W2 in partition 0 come as k1@W1, k1@W2:
            # each client leaves on receiving k1@W2, before k2@W1 is read
            await asyncio.to_thread(committer.commit, [k1_w1, k2_w1], [0, 1])
            await asyncio.to_thread(committer.commit, [k1_w2], [0])
            first = dict(zip(held, await asyncio.wait_for(asyncio.gather(*clients.values()), 30), strict=True))
            alerts = producer(bootstrap)  # an alert while the clients are away (read before k2@W1 is)
            alerts.produce(f"{tenant}.alerts", codec.encode("alert.v1", alert))
            assert alerts.flush(30) == 0
            open_transaction.abort_transaction(30)  # the server reads k2@W1 with no client to push it to
            await asyncio.to_thread(writer.drain, 120)
            await _until(lambda: _results_read(served.base, cookie) == 3, 30, "the server's read of the 3 windows")
            resumed = {}
            for name, frames in first.items():
                committed = max(f["committed_ms"] for f in frames if f["type"] == "window" and f["source"] == "live")
                resume = {"after": {"alarm_rate": max(row["window_start"] for row in held[name].values())},
                          **({"committed_after": committed} if name == "new" else {})}
                resumed[name] = await _receive(served.base, cookie, resume, held[name], synced)
            resumed["reload"] = await _receive(served.base, cookie, {}, held.setdefault("reload", {}), synced)
            return resumed

        resumed = asyncio.run(scenario())
    finally:
        served.stop()
        writer.stop()
        writer_thread.join(30)

    in_cassandra = _cassandra_rows(stack.cassandra.port, keyspace, tenant, ("S1", "S2"))
    assert sorted(in_cassandra) == sorted(tuple(w[c] for c in PRIMARY_KEY) for w in (k1_w1, k2_w1, k1_w2))
    k2 = tuple(k2_w1[c] for c in PRIMARY_KEY)
    assert k2 in in_cassandra and k2 not in held["old"], "k2@W1 reached the client without committed_after: " \
        "the server did not read it after k1@W2, and the test shows nothing"
    assert held["new"] == in_cassandra and held["reload"] == in_cassandra
    for name, frames in resumed.items():  # the alert committed while away, once, in the resume's history
        assert [f["row"] for f in frames if f["type"] == "alert"] == [
            {k: v for k, v in alert.items() if k != "tenant"}], name


def _results_read(base: str, cookie: str) -> int:
    """The results of the alarm_rate job the server has read (its operations figures)."""
    status, _, body = request(base, "GET", "/api/v1/operations", cookie=cookie)
    assert status == 200, body
    return sum(job["results"] for job in json.loads(body)["jobs"] if job["job"] == "alarm_rate")
