"""The dashboard's ASGI app (Starlette): logins, the REST API, the WebSocket push, metrics, the pages.

dashboard/PROTOCOL.md is the contract with the pages. A caller is a Principal (dashboard.tokens) from
a session cookie or a bearer token; every path naming a tenant answers the same 404 for a tenant the
caller may not see and for one that does not exist. Blocking calls (CQL, the metadata store, scrypt,
the broker's admin API) run in the thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import gc
import hashlib
import json
import logging
import re
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cassandra import DriverException
from cassandra.cluster import NoHostAvailable
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo.errors import PyMongoError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from connectors.cassandra import CassandraUnavailableError
from connectors.kafka_access import authorize_dashboard
from connectors.metadata import MetadataStore
from dashboard.feed import Feed, Hub
from dashboard.history import Reader
from dashboard.metrics import Metrics
from dashboard.openapi import OPENAPI
from dashboard.operations import Operations, job_figures
from dashboard.tokens import Principal, TokenStore
from jobs.sensor_health import HEALTH_TABLE, SILENCE_TABLE
from jobs.tables import RESULT_TABLES
from operators.health_figures import health_figures, silent_now
from operators.ranges import NUMERIC_TYPES, QueryError, RangeQuery, parse_query

log = logging.getLogger(__name__)

COOKIE = "tenantstream_session"
STATIC = Path(__file__).parent / "static"
MAX_BODY = 4096
PAGE_DEFAULT, PAGE_MAX = 500, 1000
LOGIN_FAILURES = 10  # a client's failed logins a minute before it is answered 429
REGISTRY_CACHE_S = 5.0
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")
NOT_FOUND = {"error": "not found"}


@dataclass(frozen=True)
class Settings:
    bootstrap: str
    cassandra_port: int
    keyspace: str
    mongo_uri: str
    database: str
    flink_url: str
    tenant_pattern: str = ""  # read only the topics of tenants whose name matches (a regex); "" reads all
    https: bool = False  # browsers reach it over https (a TLS proxy in front): Secure cookie, https origin


class State:
    """What the app's handlers share: built in the lifespan, on the event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = MetadataStore(settings.mongo_uri, settings.database)
        self.tokens = TokenStore(self.store.db)
        self.reader = Reader(settings.cassandra_port, settings.keyspace)
        self.metrics = Metrics()
        self.hub = Hub(self.metrics)
        self.operations = Operations(settings.bootstrap, settings.flink_url)
        self.feed: Feed | None = None
        self.failures: dict[str, deque] = defaultdict(deque)  # client address -> failed login times
        self.bearers: dict[str, Principal] = {}  # SHA-256 of a verified token -> its principal
        self._tenants: tuple[float, list[str]] = (0.0, [])

    async def registered(self) -> list[str]:
        at, tenants = self._tenants
        if time.monotonic() - at > REGISTRY_CACHE_S:
            tenants = await run_in_threadpool(self.tokens.tenants)
            self._tenants = (time.monotonic(), tenants)
        return tenants

    async def visible(self, principal: Principal) -> list[str]:
        return await self.registered() if principal.operator else [principal.tenant]

    async def may_see(self, principal: Principal, tenant: str) -> bool:
        return tenant in await self.registered() if principal.operator else tenant == principal.tenant


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers={"Cache-Control": "no-store"})


def answer(body: object, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status, headers={"Cache-Control": "no-store"})


def own_origin(connection: HTTPConnection) -> str:
    """The origin a page of this server has: what a same-origin request's Origin header says."""
    state: State = connection.app.state.dashboard
    secure = state.settings.https or connection.url.scheme in ("https", "wss")
    return f"{'https' if secure else 'http'}://{connection.headers.get('host', '')}"


async def authenticate(state: State, connection: HTTPConnection) -> Principal | None:
    """The caller's principal from `Authorization: Bearer` or else the session cookie; None if neither is live."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme:
        if scheme.lower() != "bearer" or len(token) > 200:
            return None
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        known = state.bearers.get(digest)
        if known is not None:  # verified before: only ask whether it is still live (no scrypt again)
            return known if await run_in_threadpool(state.tokens.still_live, known) else None
        principal = await run_in_threadpool(state.tokens.verify, token.strip())
        if principal is not None:
            state.bearers[digest] = principal
        return principal
    session_id = session_cookie(connection)
    return None if session_id is None else await run_in_threadpool(state.tokens.session, session_id)


def session_cookie(connection: HTTPConnection) -> str | None:
    """The session id `authenticate` goes by: the cookie's, unless an Authorization header speaks instead."""
    if connection.headers.get("authorization", "").partition(" ")[0]:
        return None
    session_id = connection.cookies.get(COOKIE, "")
    return session_id if _SESSION_ID.fullmatch(session_id) else None


def _rest_words(err: QueryError) -> str:
    """A query's message in the API's words: its parameters have no `--`."""
    return re.sub(r"--(\w+)", r"\1", str(err))


async def _json_body(request: Request) -> dict | Response:
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        return error(413, f"the body is over {MAX_BODY} bytes")
    body = await request.body()
    if len(body) > MAX_BODY:
        return error(413, f"the body is over {MAX_BODY} bytes")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return error(400, 'the body is not JSON; send {"token": "tst_..."}')
    return data if isinstance(data, dict) else error(400, 'send a JSON object: {"token": "tst_..."}')


def _foreign_post(request: Request) -> bool:
    """A POST whose Origin is another site's (a browser always sends Origin on a cross-site POST)."""
    origin = request.headers.get("origin")
    return origin is not None and origin != own_origin(request)


async def login(request: Request) -> Response:
    state: State = request.app.state.dashboard
    if _foreign_post(request):
        return error(403, "a login from another origin is refused")
    client = request.client.host if request.client else ""
    failures = state.failures[client]
    while failures and failures[0] < time.monotonic() - 60:
        failures.popleft()
    if len(failures) >= LOGIN_FAILURES:
        return error(429, f"{LOGIN_FAILURES} failed logins in a minute; wait a minute")
    data = await _json_body(request)
    if isinstance(data, Response):
        return data
    token = data.get("token")
    if not isinstance(token, str) or not token:
        return error(400, 'name the token: {"token": "tst_..."}')
    principal = await run_in_threadpool(state.tokens.verify, token) if len(token) <= 200 else None
    if principal is None:
        failures.append(time.monotonic())
        return error(401, "invalid token")
    session_id, ends = await run_in_threadpool(state.tokens.open_session, principal)
    response = answer(await _me(state, principal))
    response.set_cookie(COOKIE, session_id, max_age=max(1, int(ends.timestamp() - time.time())), path="/",
                        httponly=True, samesite="strict", secure=state.settings.https)
    return response


async def logout(request: Request) -> Response:
    state: State = request.app.state.dashboard
    if _foreign_post(request):
        return error(403, "a logout from another origin is refused")
    session_id = request.cookies.get(COOKIE, "")
    if _SESSION_ID.fullmatch(session_id):
        await run_in_threadpool(state.tokens.close_session, session_id)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=state.settings.https)
    return response


async def _me(state: State, principal: Principal) -> dict:
    return {"tenant": principal.tenant, "operator": principal.operator, "tenants": await state.visible(principal)}


async def me(request: Request) -> Response:
    state: State = request.app.state.dashboard
    principal = await authenticate(state, request)
    if principal is None:
        return error(401, "not logged in")
    return answer(await _me(state, principal))


def _describe(table: str) -> dict:
    t = RESULT_TABLES[table]
    columns = t.columns()
    return {"name": t.name, "time": t.clustering[0], "keys": list(t.partition_key[1:]),
            "primary_key": list(t.primary_key),
            "columns": [{"name": name, "type": cql_type} for name, cql_type in columns],
            "numeric": [name for name, cql_type in columns if cql_type in NUMERIC_TYPES]}


async def tables(request: Request) -> Response:
    state: State = request.app.state.dashboard
    if await authenticate(state, request) is None:
        return error(401, "not logged in")
    return answer({"tables": [_describe(name) for name in sorted(RESULT_TABLES)]})


async def _tenant_scope(request: Request, table: bool, params: tuple[str, ...] = ()
                        ) -> tuple[State, Principal, str] | Response:
    """The caller, and the tenant (and table) of the path it may see, asked with only `params`; else the
    response to give."""
    state: State = request.app.state.dashboard
    principal = await authenticate(state, request)
    if principal is None:
        return error(401, "not logged in")
    tenant = request.path_params["tenant"]
    if not await state.may_see(principal, tenant):
        return answer(NOT_FOUND, 404)
    if table and request.path_params["table"] not in RESULT_TABLES:
        return error(404, f"no result table {request.path_params['table'][:60]!r}; the tables are "
                          f"{', '.join(sorted(RESULT_TABLES))}")
    return _check_params(request, params) or (state, principal, tenant)


def _check_params(request: Request, allowed: tuple[str, ...]) -> Response | None:
    params = request.query_params
    for name in params:
        if name not in allowed:
            return error(400, f"unknown parameter {name[:40]!r}; the parameters are {', '.join(allowed)}"
                         if allowed else f"unknown parameter {name[:40]!r}; this takes none")
        if name != "key" and len(params.getlist(name)) > 1:
            return error(400, f"give {name} once")
    return None


def _query(request: Request, state: State, tenant: str, total: str | None = None,
           mean: str | None = None) -> RangeQuery:
    params = request.query_params
    within = params.get("within")
    return parse_query(RESULT_TABLES, request.path_params["table"], keyspace=state.settings.keyspace, tenant=tenant,
                       keys=params.getlist("key"), before=params.get("before"), after=params.get("after"),
                       within=within.split(",") if within is not None else None, total=total, mean=mean)


def encode_page(query: RangeQuery, row: dict) -> str:
    values = [row[c] for c in query.table.clustering]
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_page(query: RangeQuery, text: str) -> tuple[object, ...]:
    """The clustering values a page token holds, checked against the query; QueryError if it is not one of its."""
    types = dict(query.table.columns())
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        values = None
    wanted = [types[c] for c in query.table.clustering]
    if (not isinstance(values, list) or len(values) != len(wanted) or not all(
            (isinstance(v, int) and not isinstance(v, bool)) if t == "timestamp" else isinstance(v, str)
            for v, t in zip(values, wanted, strict=True))):
        raise QueryError("page is not a next_page of this query; leave it out for the first page")
    first = values[0]
    if (query.start_ms is not None and first < query.start_ms) or (query.end_ms is not None and first >= query.end_ms):
        raise QueryError("page is outside the query's range; leave it out for the first page")
    return tuple(values)


async def windows(request: Request) -> Response:
    scope = await _tenant_scope(request, True, ("key", "before", "after", "within", "limit", "page"))
    if isinstance(scope, Response):
        return scope
    state, _, tenant = scope
    text = request.query_params.get("limit", str(PAGE_DEFAULT))
    if not re.fullmatch(r"[0-9]{1,9}", text) or not 1 <= int(text) <= PAGE_MAX:
        return error(400, f"limit is a whole number of rows from 1 to {PAGE_MAX}, not {text[:20]!r}")
    limit = int(text)
    try:
        query = _query(request, state, tenant)
        page = request.query_params.get("page")
        query = dataclasses.replace(query, limit=limit + 1,
                                    page_after=decode_page(query, page) if page is not None else None)
    except QueryError as err:
        return error(400, _rest_words(err))
    rows = await run_in_threadpool(state.reader.windows, query)
    more = len(rows) > limit
    rows = rows[:limit]
    return answer({"table": query.table.name, "tenant": tenant, "key": dict(query.partition[1:]), "rows": rows,
                   "next_page": encode_page(query, rows[-1]) if more else None})


async def aggregate(request: Request) -> Response:
    scope = await _tenant_scope(request, True, ("key", "before", "after", "within", "field"))
    if isinstance(scope, Response):
        return scope
    state, _, tenant = scope
    function = request.url.path.rsplit("/", 1)[-1]
    field = request.query_params.get("field")
    if not field:
        return error(400, f"name the numeric field to {function}: field=NAME")
    try:
        query = _query(request, state, tenant, **{"total" if function == "sum" else "mean": field})
    except QueryError as err:
        return error(400, _rest_words(err))
    rows = await run_in_threadpool(state.reader.windows, query)
    return answer({"table": query.table.name, "tenant": tenant, "key": dict(query.partition[1:]),
                   "function": function, "field": field, "value": query.aggregate.of(rows), "windows": len(rows)})


async def keys(request: Request) -> Response:
    scope = await _tenant_scope(request, table=True)
    if isinstance(scope, Response):
        return scope
    state, _, tenant = scope
    table = RESULT_TABLES[request.path_params["table"]]
    return answer({"table": table.name, "tenant": tenant,
                   "keys": await run_in_threadpool(state.reader.keys, table, tenant)})


async def health(request: Request) -> Response:
    scope = await _tenant_scope(request, table=False)
    if isinstance(scope, Response):
        return scope
    state, _, tenant = scope
    whole = RangeQuery(HEALTH_TABLE, state.settings.keyspace, (("tenant", tenant),), None, None)
    rows = await run_in_threadpool(state.reader.windows, whole)
    latest = await run_in_threadpool(state.reader.latest, SILENCE_TABLE, tenant)
    return answer({"tenant": tenant, **health_figures(rows).as_dict(), "silent_now": silent_now(latest)})


async def _job_figures(state: State, principal: Principal | None) -> list:
    lags, flink = await run_in_threadpool(state.operations.external)
    visible = None if principal is None or principal.operator else {principal.tenant}
    return job_figures(dict(state.hub.figures), lags, flink, visible)


async def operations(request: Request) -> Response:
    state: State = request.app.state.dashboard
    principal = await authenticate(state, request)
    if principal is None:
        return error(401, "not logged in")
    refused = _check_params(request, ())
    if refused:
        return refused
    return answer({"jobs": [f.as_dict() for f in await _job_figures(state, principal)]})


async def metrics(request: Request) -> Response:
    """Prometheus' scrape. The figures per job and tenant name every tenant, so only an operator's token (as
    the bearer) gets them; anyone else gets the figures that name none (clients, push delays)."""
    state: State = request.app.state.dashboard
    state.metrics.clients.set(state.hub.count())
    principal = await authenticate(state, request)
    if principal is None or not principal.operator:
        return Response(generate_latest(state.metrics.public), media_type=CONTENT_TYPE_LATEST)
    state.metrics.figures.figures = await _job_figures(state, None)
    return Response(generate_latest(state.metrics.full), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return answer(OPENAPI)


async def no_pages(request: Request) -> Response:
    return PlainTextResponse("the dashboard's pages are not built: run the front end's build (dashboard/frontend)",
                             404)


async def failed(request: Request, exc: Exception) -> Response:
    """A server the answer needs did not answer (or a bug): 503 or 500 in one line, no traceback, nothing of
    the request echoed; the traceback goes to the server's log."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    if isinstance(exc, (CassandraUnavailableError, DriverException, NoHostAvailable, PyMongoError)):
        return error(503, "a server the dashboard reads (Cassandra or the metadata store) did not answer; try again")
    return error(500, "the dashboard failed to answer; its log says why")


class SecurityHeaders:
    """Headers every answer carries: no framing, no sniffing, scripts and connections only from here."""

    HEADERS: ClassVar[list[tuple[bytes, bytes]]] = [
        (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", b"default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                                     b"style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")]

    def __init__(self, app: object) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: object, send: object) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


def quiet_garbage_collector() -> None:
    """Keep the garbage collector's pauses off the push. What the server loaded to start (70,000 objects: its
    modules, the drivers' connections) lives as long as it does: frozen, a full collection no longer walks it.
    And the young generation is collected after 50,000 new objects, not 700: a page's objects that live from
    one checkpoint to the next (its sender's wait) then mostly die young instead of reaching the old
    generation, whose growth starts a full collection of everything left (500 pages' 70,000 objects: 50-75 ms
    each time with the event loop and the consumer held; 190 ms in a checkpoint's burst, in bench.dashboard)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, *gc.get_threshold()[1:])


def create_app(settings: Settings) -> Starlette:
    from dashboard.stream import stream, watch_sessions

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = await run_in_threadpool(State, settings)
        login_ = await run_in_threadpool(authorize_dashboard, settings.bootstrap)
        quiet_garbage_collector()
        state.feed = Feed(settings.bootstrap, login_, state.hub, asyncio.get_running_loop(), settings.tenant_pattern)
        state.feed.start()
        app.state.dashboard = state
        sessions = asyncio.create_task(watch_sessions(state))
        try:
            yield
        finally:
            sessions.cancel()
            await run_in_threadpool(state.feed.stop)
            state.reader.close()
            state.store.close()

    tenant_path = "/api/v1/tenants/{tenant}"
    table_path = tenant_path + "/tables/{table}"
    routes = [Route("/api/v1/login", login, methods=["POST"]), Route("/api/v1/logout", logout, methods=["POST"]),
              Route("/api/v1/me", me), Route("/api/v1/tables", tables), Route(f"{table_path}/keys", keys),
              Route(f"{table_path}/windows", windows), Route(f"{table_path}/windows/sum", aggregate),
              Route(f"{table_path}/windows/mean", aggregate), Route(f"{tenant_path}/health", health),
              Route("/api/v1/operations", operations), Route("/api/v1/openapi.json", openapi),
              Route("/metrics", metrics), WebSocketRoute("/api/v1/stream", stream)]
    routes.append(Mount("/", StaticFiles(directory=STATIC, html=True)) if STATIC.is_dir() else Route("/", no_pages))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={Exception: failed})
    app.add_middleware(SecurityHeaders)
    return app
