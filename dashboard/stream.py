"""The WebSocket `/api/v1/stream`: live windows, alerts, dead letters and late records of the caller's tenant.

A connection is registered with the hub before anything is read, so every event from then on is
buffered; the resume's history (Cassandra, and the hub's recent rows not yet there) is sent next, then
the buffer less the windows the history already held (by primary key), then live events. Read together
with the page's dedup by the same key (PROTOCOL.md), nothing is missed and nothing held twice.

A page's newest window is not where its gap begins: the consumer reads partitions independently (and a
partition waits behind an open transaction), so it can push a window of a later transaction before an older
window of an earlier one, and a page gone between the two holds the newer. So a resume may also name the
newest commit time it received (`committed_after`); every recent row committed from REORDER_MS before it
comes again, whatever its window time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import NamedTuple

from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from dashboard.app import State, authenticate, own_origin, session_cookie
from dashboard.feed import LOOKBACK_MS, Connection, alert_key, diverted_frame, primary_key, sent_key, window_frame
from dashboard.tokens import Principal
from jobs.tables import RESULT_TABLES
from pipeline.errors import DashboardError

MAX_FRAME = 4096
RESUME_WAIT_S = 30.0
RECHECK_S = 10.0  # how often the open connections' sessions are rechecked
HISTORY_QUEUED = 1000  # history frames queued for a page at most (its live events wait in the buffer meanwhile)
LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
# How much older than the newest result a page received one that the server reads after it can be: a job's
# checkpoint appends its results over one interval (2 s by default) in every partition and commits them at once,
# and the consumer may read one partition a checkpoint or two ahead of another; 30 s also covers slow
# checkpoints. A partition held back longer (a transaction left open until a failed job's restart aborts it)
# is beyond it.
REORDER_MS = 30_000

log = logging.getLogger(__name__)


class FrameError(DashboardError):
    """The client sent a frame the protocol does not allow; the message is the close reason."""

    def __init__(self, reason: str, code: int = 1008) -> None:
        super().__init__(reason)
        self.code = code


class Resume(NamedTuple):
    after: dict[str, int]  # per table, the newest time the page holds
    history: bool  # whether to send the whole history of the tables not named
    batch: bool  # whether to batch live events
    committed_after: int | None  # the newest commit time of a live window the page received


def _is_ms(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= LAST_MS


def parse_resume(frame: dict) -> Resume:
    """What a resume frame asks for."""
    if frame.get("type") != "resume":
        raise FrameError('the first frame is {"type": "resume", "after": {...}}')
    extra = set(frame) - {"type", "after", "history", "batch", "committed_after"}
    if extra:
        raise FrameError(f"resume has no field {sorted(extra)[0][:40]!r}")
    after, history, batch = frame.get("after", {}), frame.get("history", True), frame.get("batch", False)
    if not isinstance(after, dict) or not isinstance(history, bool) or not isinstance(batch, bool):
        raise FrameError("resume: after is an object of table: epoch milliseconds, history and batch true or "
                         "false")
    for table, ms in after.items():
        if table not in RESULT_TABLES:
            raise FrameError(f"resume: no table {table[:40]!r}")
        if not _is_ms(ms):
            raise FrameError(f"resume: after[{table}] is epoch milliseconds from 0 to {LAST_MS}")
    committed_after = frame.get("committed_after")
    if committed_after is not None and not _is_ms(committed_after):
        raise FrameError(f"resume: committed_after is epoch milliseconds from 0 to {LAST_MS}, or null")
    return Resume(after, history, batch, committed_after)


def parse_frame(message: dict) -> dict:
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:
        raise FrameError("frames are JSON text, not binary")
    if len(text) > MAX_FRAME:
        raise FrameError(f"a frame is at most {MAX_FRAME} bytes", 1009)
    try:
        frame = json.loads(text)
    except ValueError:
        raise FrameError("a frame is a JSON object") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise FrameError('a frame is a JSON object with a "type"')
    return frame


async def _send_loop(websocket: WebSocket, connection: Connection, state: State) -> None:
    while True:
        frame, committed, received = await connection.queue.get()
        if connection.overrun.is_set():
            await websocket.close(1013, "the page fell too far behind; reconnect and resume")
            return
        if frame is None:  # logged out, revoked or expired meanwhile (watch_sessions)
            await websocket.close(1008, "the session ended")
            return
        await websocket.send_text(frame)
        now = time.time()
        if committed is not None:
            state.metrics.push_delay.observe(now, committed)
        if received is not None:
            state.metrics.fanout_delay.observe(max(0.0, now - received))


async def watch_sessions(state: State) -> None:
    """Every RECHECK_S, whether the sessions and tokens of all open connections still hold, in one look-up for
    all (a look-up per connection was 100 queries a second for 500 pages, and their threads took the event
    loop's turn); ends the connections whose session ended, which close once they have sent what was queued."""
    while True:
        await asyncio.sleep(RECHECK_S)
        connections = [c for group in list(state.hub.connections.values()) for c in group]
        if not connections:
            continue
        try:
            sessions, tokens = await run_in_threadpool(state.tokens.live, {c.session_id for c in connections
                                                                           if c.session_id is not None},
                                                       {c.token_id for c in connections})
        except Exception:
            log.exception("dashboard: the sessions of open connections could not be rechecked; trying again")
            continue
        for connection in connections:
            session = connection.session_id
            if connection.token_id not in tokens or (session is not None and session not in sessions):
                connection.end()


async def _paced(connection: Connection, sender: asyncio.Task, frame: str) -> None:
    """Queue a history frame, at the pace the page reads them."""
    connection.send(frame)
    while connection.queue.qsize() >= HISTORY_QUEUED:
        if sender.done():
            raise WebSocketDisconnect(1006)
        await asyncio.sleep(0.01)


async def _resume(state: State, principal: Principal, connection: Connection, sender: asyncio.Task,
                  resume: Resume) -> dict[str, int]:
    """Send the history the resume asks for and the alerts of the look-back, then the buffer less what they
    held; rows sent per table."""
    try:
        await asyncio.wait_for(state.hub.ready.wait(), RESUME_WAIT_S)
    except TimeoutError:
        raise FrameError("the server is still reading its look-back; reconnect and resume", 1013) from None
    after = resume.after
    committed_since = None if resume.committed_after is None else resume.committed_after - REORDER_MS
    if committed_since is not None and committed_since < time.time() * 1000 - LOOKBACK_MS:
        after = {}  # the hub has forgotten rows committed then: the named tables' whole history comes again
    sent: set[tuple] = set()
    counts: dict[str, int] = {}
    for tenant in await state.visible(principal):
        for name, table in sorted(RESULT_TABLES.items()):
            if name not in resume.after and not resume.history:
                continue
            since = after.get(name)
            rows = {primary_key(table, row): row for row in await run_in_threadpool(state.reader.since, table,
                                                                                       tenant, since)}
            rows.update((primary_key(table, row), row)
                        for row in state.hub.recent_rows(tenant, name, since, committed_since))
            for key, row in sorted(rows.items(), key=lambda item: item[1][table.clustering[0]]):
                await _paced(connection, sender, window_frame(tenant, table, row, None, "history"))
                sent.add(sent_key(name, key))
            counts[name] = counts.get(name, 0) + len(rows)
        if resume.after or resume.history:
            for row, committed_ms in state.hub.recent_alerts(tenant):
                await _paced(connection, sender, diverted_frame("alert", tenant, row, committed_ms))
                sent.add(sent_key(None, alert_key(row)))
    connection.go_live(sent)
    return counts


async def stream(websocket: WebSocket) -> None:
    state: State = websocket.app.state.dashboard
    principal = await authenticate(state, websocket)
    if principal is None or websocket.headers.get("origin") != own_origin(websocket):
        await websocket.close(1008)  # before accept: the handshake is refused with HTTP 403
        return
    await websocket.accept()
    connection = Connection(None if principal.operator else principal.tenant, principal.token_id,
                            session_cookie(websocket))
    state.hub.add(connection)
    state.metrics.clients.inc()
    sender = asyncio.create_task(_send_loop(websocket, connection, state))
    try:
        message = await asyncio.wait_for(websocket.receive(), RESUME_WAIT_S)
        resume = parse_resume(parse_frame(message))
        connection.batch = resume.batch
        counts = await _resume(state, principal, connection, sender, resume)
        connection.send(json.dumps({"type": "synced", "rows": counts}))
        # Only pings from now on; an ended session is closed by the sender. (A wait with a timeout here made
        # a task a connection every RECHECK_S: for 500 pages, garbage that made the collector walk them all.)
        while True:
            frame = parse_frame(await websocket.receive())
            if frame["type"] != "ping":
                raise FrameError(f"after resume a client sends only ping, not {frame['type'][:40]!r}")
            connection.send('{"type":"pong"}')
    except FrameError as err:
        await websocket.close(err.code, str(err))
    except TimeoutError:
        await websocket.close(1008, "no resume frame within 30 s")
    except (WebSocketDisconnect, RuntimeError):
        pass  # the page went away (RuntimeError: it did while the server was closing it)
    finally:
        state.hub.remove(connection)
        state.metrics.clients.dec()
        sender.cancel()
