"""The dashboard's REST API and WebSocket handshake against a real `tenantstream serve` process, the stack's
Cassandra (reader role) and FerretDB: what tenant A may read, and hostile requests, each answered with its
status and nothing of tenant B (its name and its marker values never appear in A's answers)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import uuid
from datetime import timedelta

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from connectors.cassandra import connect, ensure_result_table, insert_statement, upsert
from connectors.kafka import delete_topics
from connectors.metadata import MetadataStore
from dashboard.stream import RECHECK_S
from dashboard.tokens import TokenStore
from jobs.alarm_rate import ALARM_RATE_TABLE
from jobs.rollup import ALARM_RATE_ROLLUP_TABLE
from jobs.sensor_health import HEALTH_TABLE
from tests.dashboard_server import Served, login, make_token, open_stream, register, request

T0 = 1767240000000  # 2026-01-01T04:00Z
MINUTE = 60_000
B_MARK = 987654  # B's rows carry it; no answer to A may
A_KEY = "key=station_id=S1&key=datapoint_id=D1"
MANY = 12_000  # A's windows of station S9: a resume's history longer than a connection's queue (10,000 frames)


def _row(tenant: str, i: int, station: str = "S1", fires: int | None = None) -> dict:
    start = T0 + i * MINUTE
    fires = i if fires is None else fires
    return {"tenant": tenant, "station_id": station, "datapoint_id": "D1", "window_start": start,
            "window_end": start + MINUTE, "fires": fires, "events": 10, "rate": fires / 10}


def _day(tenant: str, i: int, fires: int) -> dict:
    """A day rollup row (of Europe/Amsterdam's calendar, whose days start at 23:00 UTC in winter)."""
    start = T0 - 5 * 60 * MINUTE + i * 24 * 60 * MINUTE
    return {"tenant": tenant, "station_id": "S1", "datapoint_id": "D1", "period": "day",
            "time_zone": "Europe/Amsterdam", "window_start": start, "window_end": start + 24 * 60 * MINUTE,
            "fires": fires, "events": 1000, "rate": fires / 1000}


def _health(tenant: str, i: int, known: int, silent: int, heartbeats: int) -> dict:
    start = T0 + i * 5 * MINUTE
    return {"tenant": tenant, "window_start": start, "window_end": start + 5 * MINUTE, "silence_minutes": 10,
            "heartbeats": heartbeats, "reporting_sensors": known, "known_sensors": known, "silent_sensors": silent,
            "silent_share": silent / known, "went_silent": silent, "recovered": 0, "mean_interval_ms": 60000.0,
            "mean_lifespan_ms": 120000.0 * (i + 1), "max_lifespan_ms": 240000 * (i + 1)}


@pytest.fixture(scope="module")
def world(stack, tmp_path_factory):
    """Tenants A and B with alarm_rate and health rows, tokens of every kind, and the server."""
    u = uuid.uuid4().hex[:10]
    a, b = f"a{u}", f"b{u}"
    keyspace, database = f"it_dash_{u}", f"meta_dash_{u}"
    ours = [_row(a, i) for i in range(7)]
    theirs = [_row(b, i, fires=B_MARK) for i in range(3)] + [_row(b, 0, station="SECRETB", fires=B_MARK)]
    health = [_health(a, 0, 4, 1, 9), _health(a, 1, 5, 2, 12)]
    days = [_day(a, i, 10 + i) for i in range(3)]
    cluster, session = connect(stack.cassandra.port)
    store = MetadataStore(stack.ferretdb.uri, database)
    served = Served(database, keyspace, f".*{u}", tmp_path_factory.mktemp("dash") / "serve.log")
    try:
        many = [_row(a, i, station="S9") for i in range(MANY)]  # more history than a page's queue holds
        for table, rows in ((ALARM_RATE_TABLE, ours + theirs + many), (HEALTH_TABLE, health),
                            (ALARM_RATE_ROLLUP_TABLE, [*days, _day(b, 0, B_MARK)])):
            ensure_result_table(session, table, keyspace)
            columns = [c for c, _ in table.columns()]
            upsert(session, insert_statement(session, keyspace, table.name, columns),
                   [[r[c] for c in columns] for r in rows])
        register(store, a, b)
        tokens = {"a": make_token(store, a)[1], "b": make_token(store, b)[1],
                  "operator": make_token(store, a, operator=True)[1],
                  "expired": make_token(store, a, lifetime=timedelta(seconds=1))[1]}
        revoked_id, tokens["revoked"] = make_token(store, a)
        served.start()
        status, _, _ = request(served.base, "GET", "/api/v1/me", token=tokens["revoked"])
        assert status == 200  # live before it is revoked
        TokenStore(store.db).revoke(revoked_id)
        time.sleep(1.1)  # the expired token's second is over
        yield {"a": a, "b": b, "ours": ours, "health": health, "tokens": tokens, "served": served, "u": u,
               "store": store, "days": days}
    finally:
        served.stop()
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        cluster.shutdown()
        store.client.drop_database(database)
        store.close()
        delete_topics(stack.kafka.bootstrap, lambda topic: u in topic)


def get(world, path: str, who: str | None = "a", **kwargs) -> tuple[int, dict | str]:
    token = world["tokens"][who] if who else None
    status, _, body = request(world["served"].base, "GET", path, token=token, **kwargs)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def assert_nothing_of_b(world, body: object) -> None:
    text = json.dumps(body)
    assert world["b"] not in text and str(B_MARK) not in text and "SECRETB" not in text


def windows_path(tenant: str, query: str, table: str = "alarm_rate") -> str:
    return f"/api/v1/tenants/{tenant}/tables/{table}/windows?{query}"


# --- what A may read -------------------------------------------------------------------------------------------

def test_a_reads_exactly_its_rows_in_pages(world):
    a = world["a"]
    first, page = get(world, windows_path(a, f"{A_KEY}&after=2026-01-01T04:01&limit=4"))
    assert first == 200
    assert page["rows"] == world["ours"][1:5] and page["next_page"]
    status, rest = get(world, windows_path(a, f"{A_KEY}&after=2026-01-01T04:01&limit=4&page={page['next_page']}"))
    assert status == 200 and rest["rows"] == world["ours"][5:] and rest["next_page"] is None
    assert_nothing_of_b(world, [page, rest])


def test_sum_mean_and_keys_over_the_same_range_logic(world):
    a = world["a"]
    status, total = get(world, f"/api/v1/tenants/{a}/tables/alarm_rate/windows/sum?{A_KEY}&within={T0 + MINUTE},"
                               f"{T0 + 4 * MINUTE}&field=fires")
    assert status == 200 and (total["value"], total["windows"]) == (1 + 2 + 3, 3)
    status, mean = get(world, f"/api/v1/tenants/{a}/tables/alarm_rate/windows/mean?{A_KEY}&before={T0 + 2 * MINUTE}"
                              "&field=rate")
    assert status == 200 and mean["value"] == pytest.approx((0.0 + 0.1) / 2)
    status, keys = get(world, f"/api/v1/tenants/{a}/tables/alarm_rate/keys")
    assert status == 200 and keys["keys"] == [{"station_id": s, "datapoint_id": "D1"} for s in ("S1", "S9")]
    assert_nothing_of_b(world, [total, mean, keys])


def test_rollup_rows_are_read_like_any_result_table(world):
    a = world["a"]
    key = "key=station_id=S1&key=datapoint_id=D1&key=period=day"
    status, page = get(world, windows_path(a, f"{key}&after={world['days'][1]['window_start']}", "alarm_rate_rollup"))
    assert status == 200 and page["rows"] == world["days"][1:]
    status, total = get(world, f"/api/v1/tenants/{a}/tables/alarm_rate_rollup/windows/sum?{key}&after=2025-12-01"
                               "&field=fires")
    assert status == 200 and total["value"] == 10 + 11 + 12
    assert_nothing_of_b(world, [page, total])


def test_health_figures_of_the_rows(world):
    status, figures = get(world, f"/api/v1/tenants/{world['a']}/health")
    newest = world["health"][-1]
    assert status == 200 and figures["windows"] == 2 and figures["silent_share"] == newest["silent_share"]
    assert figures["mean_interval_ms"] == newest["mean_lifespan_ms"] * 5 / (9 + 12 - 5)


def test_an_operator_sees_every_tenant_and_a_tenant_only_its_own(world):
    status, me = get(world, "/api/v1/me", "operator")
    assert status == 200 and me["operator"] and {world["a"], world["b"]} <= set(me["tenants"])
    status, theirs = get(world, windows_path(world["b"], f"{A_KEY}&after=0"), "operator")
    assert status == 200 and {r["fires"] for r in theirs["rows"]} == {B_MARK}
    status, me = get(world, "/api/v1/me", "a")
    assert status == 200 and me == {"tenant": world["a"], "operator": False, "tenants": [world["a"]]}


# --- hostile requests ------------------------------------------------------------------------------------------

def test_no_credentials_is_401(world):
    status, body = get(world, windows_path(world["a"], f"{A_KEY}&after=0"), who=None)
    assert status == 401 and body == {"error": "not logged in"}


def test_another_tenants_path_is_the_same_404_as_an_unknown_tenant(world):
    foreign = get(world, windows_path(world["b"], f"{A_KEY}&after=0"))
    unknown = get(world, windows_path(f"nosuch{world['u']}", f"{A_KEY}&after=0"))
    foreign_table = get(world, windows_path(world["b"], f"{A_KEY}&after=0", table="nosuch"))
    health = get(world, f"/api/v1/tenants/{world['b']}/health")
    assert foreign == unknown == foreign_table == health == (404, {"error": "not found"})


@pytest.mark.parametrize("who", ["revoked", "expired"])
def test_revoked_and_expired_tokens_are_refused_for_the_api_and_the_login(world, who):
    status, body = get(world, windows_path(world["a"], f"{A_KEY}&after=0"), who=who)
    assert status == 401 and "rows" not in body
    status, _, body = request(world["served"].base, "POST", "/api/v1/login", body={"token": world["tokens"][who]})
    assert status == 401 and json.loads(body) == {"error": "invalid token"}


@pytest.mark.parametrize("token", ["tst_0123456789ab_" + "A" * 43, "x" * 5000, "", "tst_' OR 1=1 --"])
def test_a_forged_or_garbage_bearer_token_is_401(world, token):
    status, _, body = request(world["served"].base, "GET", "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert status == 401 and world["a"] not in body


def test_a_forged_cookie_and_a_cookie_replayed_after_logout_are_401(world):
    base = world["served"].base
    assert request(base, "GET", "/api/v1/me", cookie="A" * 43)[0] == 401
    cookie = login(base, world["tokens"]["a"])
    assert request(base, "GET", "/api/v1/me", cookie=cookie)[0] == 200
    assert request(base, "POST", "/api/v1/logout", cookie=cookie)[0] == 204
    status, _, body = request(base, "GET", windows_path(world["a"], f"{A_KEY}&after=0"), cookie=cookie)
    assert status == 401 and "rows" not in body


def test_a_login_from_another_origin_is_403(world):
    status, headers, body = request(world["served"].base, "POST", "/api/v1/login",
                                    body={"token": world["tokens"]["a"]}, headers={"Origin": "http://evil.example"})
    assert status == 403 and "set-cookie" not in {k.lower() for k in headers} and world["a"] not in body


@pytest.mark.parametrize("value", ["S1' OR tenant='{b}", "S1'; DROP TABLE alarm_rate; --", "S1\" AND 1=1",
                                   "S1) OR (1=1", "{b}"])
def test_cql_metacharacters_in_key_values_are_bound_values(world, value):
    key = urllib.parse.quote(value.format(b=world["b"]))
    status, body = get(world, windows_path(world["a"], f"key=station_id={key}&key=datapoint_id=D1&after=0"))
    assert status == 200 and body["rows"] == []
    assert world["b"] not in json.dumps(body["rows"]) and str(B_MARK) not in json.dumps(body)
    assert get(world, windows_path(world["a"], f"{A_KEY}&after=0"))[1]["rows"] == world["ours"]  # table intact


@pytest.mark.parametrize(("query", "reason"), [
    (f"{A_KEY}&after=yesterday", "is not a time"),
    (f"{A_KEY}&within=2026-01-01T05:00,2026-01-01T04:00", "is not after start"),
    (f"{A_KEY}", "say which windows"),
    (f"{A_KEY}&after=99999999999999999", "out of range"),
    (f"{A_KEY}&after=0&before=5", "give one of"),
    (f"{A_KEY}&within=1", "within takes START END"),
    (f"{A_KEY}&after=0&limit=1000000", "limit is a whole number of rows from 1 to 1000"),
    (f"{A_KEY}&after=0&limit=-1", "limit is a whole number"),
    (f"{A_KEY}&after=0&page=bm90IGEgcGFnZQ", "not a next_page"),
    ("key=station_id=S1&after=0", "add key datapoint_id"),
    (f"{A_KEY}&key=tenant={{b}}&after=0", "given with tenant"),
    (f"{A_KEY}&key=nosuch=1&after=0", "has no key 'nosuch'"),
    (f"{A_KEY}&after=0&tenant={{b}}", "unknown parameter 'tenant'"),
    (f"{A_KEY}&after=0&after=1", "give after once"),
])
def test_bad_queries_are_400_with_the_reason(world, query, reason):
    status, body = get(world, windows_path(world["a"], query.format(b=world["b"])))
    assert status == 400 and reason in body["error"], body
    assert_nothing_of_b(world, body)


def test_an_unknown_table_of_ones_own_tenant_is_404_with_the_tables(world):
    status, body = get(world, windows_path(world["a"], f"{A_KEY}&after=0", table="nosuch"))
    assert status == 404 and "no result table 'nosuch'" in body["error"] and "alarm_rate" in body["error"]


def test_sum_of_a_text_field_is_400(world):
    status, body = get(world, f"/api/v1/tenants/{world['a']}/tables/alarm_rate/windows/sum?{A_KEY}&after=0"
                              "&field=station_id")
    assert status == 400 and "not numbers" in body["error"]


def test_an_oversized_or_malformed_login_body_is_refused(world):
    base = world["served"].base
    assert request(base, "POST", "/api/v1/login", body=b"{" * 100_000)[0] == 413
    assert request(base, "POST", "/api/v1/login", body=b"not json")[0] == 400
    assert request(base, "POST", "/api/v1/login", body={"token": ["a"]})[0] == 400


def _refused_status(base: str, cookie: str | None, origin: str | None) -> int:
    async def run() -> int:
        try:
            await open_stream(base, cookie, origin)
        except InvalidStatus as err:
            return err.response.status_code
        return 101

    return asyncio.run(run())


def test_a_websocket_from_another_origin_or_without_a_session_is_refused(world):
    base = world["served"].base
    cookie = login(base, world["tokens"]["a"])
    assert _refused_status(base, cookie, "http://evil.example") == 403
    assert _refused_status(base, cookie, None) == 403
    assert _refused_status(base, None, "same") == 403
    assert _refused_status(base, "A" * 43, "same") == 403


@pytest.mark.parametrize(("frame", "code"), [("x" * 10_000, 1009), ("not json", 1008),
                                             (json.dumps({"type": "resume", "after": {"alarm_rate": "x"}}), 1008),
                                             (json.dumps({"type": "subscribe", "tenant": "{b}"}), 1008)])
def test_an_oversized_or_malformed_websocket_frame_closes_the_socket(world, frame, code):
    base = world["served"].base
    cookie = login(base, world["tokens"]["a"])

    async def run() -> tuple[int, list[str]]:
        ws = await open_stream(base, cookie)
        await ws.send(frame.replace("{b}", world["b"]))
        received = []
        try:
            while True:
                received.append(await asyncio.wait_for(ws.recv(), 10))
        except ConnectionClosed as closed:
            return closed.rcvd.code, received

    closed_with, received = asyncio.run(run())
    assert closed_with == code
    assert received == [] and world["b"] not in "".join(received)


def test_a_live_websocket_closes_when_its_token_is_revoked_even_while_it_pings(world):
    base = world["served"].base
    store = world["store"]
    ident, token = make_token(store, world["a"])
    cookie = login(base, token)

    async def run() -> tuple[int, float]:
        ws = await open_stream(base, cookie)
        await ws.send(json.dumps({"type": "resume", "after": {}, "history": False}))
        while json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] != "synced":
            pass
        TokenStore(store.db).revoke(ident)
        revoked = time.monotonic()
        try:
            while time.monotonic() - revoked < RECHECK_S + 10:
                await ws.send(json.dumps({"type": "ping"}))
                await asyncio.wait_for(ws.recv(), 2)  # the pong
                await asyncio.sleep(1)
        except ConnectionClosed as closed:
            return closed.rcvd.code, time.monotonic() - revoked
        return 0, time.monotonic() - revoked

    code, after_s = asyncio.run(run())
    assert code == 1008 and after_s <= RECHECK_S + 5


def test_a_quiet_websocket_closes_when_its_session_logs_out_though_its_token_lives(world):
    base = world["served"].base
    cookie = login(base, world["tokens"]["a"])

    async def run() -> tuple[int, float]:
        ws = await open_stream(base, cookie)
        await ws.send(json.dumps({"type": "resume", "after": {}, "history": False}))
        while json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] != "synced":
            pass
        assert request(base, "POST", "/api/v1/logout", cookie=cookie)[0] == 204
        ended = time.monotonic()
        deadline = ended + 2 * RECHECK_S + 5  # the sessions' recheck, then the connection's look at its answer
        try:
            while time.monotonic() < deadline:
                await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
        except ConnectionClosed as closed:
            return closed.rcvd.code, time.monotonic() - ended
        except TimeoutError:
            pass
        return 0, time.monotonic() - ended

    code, after_s = asyncio.run(run())
    assert code == 1008 and after_s <= 2 * RECHECK_S + 1
    assert request(base, "GET", "/api/v1/me", token=world["tokens"]["a"])[0] == 200  # the token was not revoked


def test_metrics_name_tenants_only_to_an_operator(world):
    for who in (None, "a"):
        status, body = get(world, "/metrics", who=who)
        assert status == 200 and "tenantstream_dashboard_push_delay" in body
        assert world["a"] not in body and world["b"] not in body and "tenant=" not in body
    status, body = get(world, "/metrics", who="operator")
    assert status == 200 and "tenantstream_dashboard_clients" in body and "tenantstream_dashboard_results" in body


def test_a_resume_gets_more_history_than_a_queue_holds_at_the_pace_it_reads(world):
    base = world["served"].base
    cookie = login(base, world["tokens"]["a"])

    async def run() -> tuple[dict, list[dict]]:
        ws = await open_stream(base, cookie)
        await ws.send(json.dumps({"type": "resume", "after": {}, "history": True}))
        windows = []
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if frame["type"] == "synced":
                await ws.close()
                return frame, windows
            windows.append(frame)
            if len(windows) % 2000 == 0:
                await asyncio.sleep(0.5)  # a slow page

    synced, windows = asyncio.run(run())
    alarm = [w["row"] for w in windows if w["table"] == "alarm_rate"]
    assert synced["rows"]["alarm_rate"] == len(alarm) == 7 + MANY
    assert len({(r["station_id"], r["window_start"]) for r in alarm}) == len(alarm)
    assert_nothing_of_b(world, windows)
