"""The dashboard's pure parts: routing by the topic's tenant, the resume's dedup, client frames, page tokens,
token words, and the range query's keyset page. No server is involved."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import time
from datetime import timedelta

import pytest
from starlette.requests import Request

from connectors.cassandra import CassandraUnavailableError
from dashboard.app import decode_page, encode_page, failed
from dashboard.feed import LOOKBACK_MS, RESULT_TOPICS, Connection, Hub, decode, reason_kind, sent_key
from dashboard.metrics import CommitTimes, Metrics, PushDelays
from dashboard.stream import REORDER_MS, FrameError, Resume, _resume, parse_frame, parse_resume
from dashboard.tokens import TokenError, hash_token, parse_duration, token_id
from jobs.tables import RESULT_TABLES
from operators.ranges import QueryError, RangeQuery, parse_query
from schemas import codec

T0 = 1767240000000


def _result(tenant: str, start: int = T0, station: str = "S1") -> dict:
    return {"tenant": tenant, "station_id": station, "datapoint_id": "D1", "window_start": start,
            "window_end": start + 60_000, "fires": 1, "events": 2, "rate": 0.5}


def test_every_result_table_has_its_results_topic():
    assert sorted(t.name for t in RESULT_TOPICS.values()) == sorted(RESULT_TABLES)
    assert RESULT_TOPICS["flow"].name == "flow_aggregates" and RESULT_TOPICS["health"].name == "sensor_health"
    assert RESULT_TOPICS["alarm_rate_rollup"].name == "alarm_rate_rollup"


def test_a_record_is_routed_by_its_topic_and_refused_if_it_names_another_tenant():
    ours = decode("acme.results.alarm_rate", codec.encode("alarm_rate_result.v1", _result("acme")), 5)
    assert (ours.tenant, ours.kind, ours.table.name, ours.committed_ms) == ("acme", "window", "alarm_rate", 5)
    assert json.loads(ours.frame)["row"]["window_start"] == T0
    assert decode("acme.results.alarm_rate", codec.encode("alarm_rate_result.v1", _result("globex")), 5) is None
    assert decode("acme.results.alarm_rate", b"\x00garbage", 5) is None
    assert decode("acme.sensors.alarms", codec.encode("alarm_rate_result.v1", _result("acme")), 5) is None


def test_a_dead_letter_frame_carries_the_payload_size_not_the_payload():
    letter = {"tenant": "acme", "source_topic": "acme.sensors.alarms", "partition": 0, "offset": 7,
              "kafka_timestamp": T0, "reason": "missing station_id", "payload": b"secret bytes"}
    event = decode("acme.deadletter", codec.encode("dead_letter.v1", letter), 9)
    frame = json.loads(event.frame)
    assert frame["type"] == "deadletter" and frame["row"]["payload_bytes"] == len(b"secret bytes")
    assert "secret" not in event.frame


def test_the_hub_hands_an_event_only_to_its_tenant_and_operators():
    async def run() -> tuple[Connection, Connection, Connection]:
        hub, acme, globex, operator = Hub(), Connection("acme"), Connection("globex"), Connection(None)
        for c in (acme, globex, operator):
            hub.add(c)
            c.go_live(set())
        hub.publish([decode("acme.results.alarm_rate", codec.encode("alarm_rate_result.v1", _result("acme")), 1)])
        return acme, globex, operator

    acme, globex, operator = asyncio.run(run())
    assert (acme.queue.qsize(), globex.queue.qsize(), operator.queue.qsize()) == (1, 0, 1)


def test_go_live_sends_the_buffer_less_the_windows_the_history_held():
    async def run() -> list[dict]:
        hub, connection = Hub(), Connection("acme")
        hub.add(connection)
        events = [decode("acme.results.alarm_rate", codec.encode("alarm_rate_result.v1", _result("acme", T0 + i)), 1)
                  for i in range(3)]
        hub.publish(events)
        assert connection.queue.qsize() == 0  # buffered until the history is sent
        connection.go_live({sent_key("alarm_rate", events[0].key), sent_key("alarm_rate", events[2].key),
                            sent_key("flow_aggregates_rollup", events[1].key)})  # another table's key alike
        hub.publish([decode("acme.results.alarm_rate",
                            codec.encode("alarm_rate_result.v1", _result("acme", T0 + 9)), 1)])
        return [json.loads(connection.queue.get_nowait()[0])["row"] for _ in range(connection.queue.qsize())]

    assert [row["window_start"] for row in asyncio.run(run())] == [T0 + 1, T0 + 9]


def test_recent_rows_keep_the_look_back_and_filter_by_time():
    async def run() -> Hub:
        hub = Hub()
        hub.publish([decode("acme.results.alarm_rate", codec.encode("alarm_rate_result.v1", _result("acme", T0 + i)),
                            committed) for i, committed in ((0, 1), (1, 10**15), (2, 10**15))])
        return hub

    hub = asyncio.run(run())
    assert [r["window_start"] for r in hub.recent_rows("acme", "alarm_rate", T0 + 2)] == [T0 + 2]
    assert sorted(r["window_start"] for r in hub.recent_rows("acme", "alarm_rate", None)) == [T0 + 1, T0 + 2]
    assert hub.recent_rows("globex", "alarm_rate", None) == []


@pytest.mark.parametrize(("frame", "reason"), [
    ({"type": "ping"}, "the first frame is"),
    ({"type": "resume", "after": {"nope": 1}}, "no table"),
    ({"type": "resume", "after": {"alarm_rate": "1"}}, "epoch milliseconds"),
    ({"type": "resume", "after": {"alarm_rate": True}}, "epoch milliseconds"),
    ({"type": "resume", "after": {"alarm_rate": -1}}, "epoch milliseconds"),
    ({"type": "resume", "after": [], "history": True}, "after is an object"),
    ({"type": "resume", "history": "yes"}, "history and batch true or false"),
    ({"type": "resume", "batch": 1}, "history and batch true or false"),
    ({"type": "resume", "tenant": "globex"}, "no field 'tenant'"),
    ({"type": "resume", "committed_after": "1"}, "committed_after is epoch milliseconds"),
    ({"type": "resume", "committed_after": False}, "committed_after is epoch milliseconds"),
    ({"type": "resume", "committed_after": 1.5}, "committed_after is epoch milliseconds"),
    ({"type": "resume", "committed_after": -1}, "committed_after is epoch milliseconds"),
    ({"type": "resume", "committed_after": 10**40}, "committed_after is epoch milliseconds"),
    ({"type": "resume", "committed_after": {"alarm_rate": 1}}, "committed_after is epoch milliseconds"),
])
def test_a_bad_resume_is_refused_with_its_reason(frame, reason):
    with pytest.raises(FrameError, match=reason):
        parse_resume(frame)


def test_a_good_resume():
    assert parse_resume({"type": "resume", "after": {"alarm_rate": T0}}) == Resume({"alarm_rate": T0}, True, False,
                                                                                   None)
    assert parse_resume({"type": "resume", "history": False, "batch": True, "committed_after": T0}) == Resume(
        {}, False, True, T0)
    assert parse_resume({"type": "resume", "committed_after": None}).committed_after is None


@pytest.mark.parametrize(("message", "code"), [
    ({"type": "websocket.receive", "text": "not json"}, 1008),
    ({"type": "websocket.receive", "text": "[1, 2]"}, 1008),
    ({"type": "websocket.receive", "bytes": b"{}"}, 1008),
    ({"type": "websocket.receive", "text": json.dumps({"type": "ping", "pad": "x" * 5000})}, 1009),
])
def test_a_malformed_or_oversized_frame_closes_with_its_code(message, code):
    with pytest.raises(FrameError) as caught:
        parse_frame(message)
    assert caught.value.code == code


def _query(table: str = "alarm_rate", **words) -> RangeQuery:
    keys = {"alarm_rate": ["station_id=S1", "datapoint_id=D1"], "sensor_silence": ["sensor_id=H1"]}[table]
    return parse_query(RESULT_TABLES, table, keyspace="ks", tenant="acme", keys=keys, **words)


def test_a_page_token_round_trips_and_a_forged_one_is_refused():
    query = _query("sensor_silence", after=str(T0))
    token = encode_page(query, {"at": T0 + 5, "state": "silent", "sensor_id": "H1"})
    assert decode_page(query, token) == (T0 + 5, "silent")
    for forged in ("", "!!!", encode_page(_query(after=str(T0)), {"window_start": T0})):
        with pytest.raises(QueryError, match="not a next_page"):
            decode_page(query, forged)
    with pytest.raises(QueryError, match="outside the query's range"):
        decode_page(query, encode_page(query, {"at": T0 - 1, "state": "silent"}))


def test_the_next_page_starts_after_the_last_row_of_the_one_before():
    text, params = RangeQuery(RESULT_TABLES["sensor_silence"], "ks", (("tenant", "acme"), ("sensor_id", "H1")),
                              T0, T0 + 10, limit=3, page_after=(T0 + 5, "silent")).cql()
    assert "(at, state) > (?, ?)" in text and "at >= ?" not in text and "at < ?" in text
    assert params == ["acme", "H1", T0 + 5, "silent", T0 + 10, 3]


def test_token_words():
    assert parse_duration("30d") == timedelta(days=30) and parse_duration("90m") == timedelta(minutes=90)
    for bad in ("30", "d", "0d", "-1d", "400d", "1y", "1e3s"):
        with pytest.raises(TokenError):
            parse_duration(bad)
    good = "tst_0123456789ab_" + "A" * 43
    assert token_id(good) == "0123456789ab"
    assert token_id(good + "x") is None and token_id("tst_0123456789ab_" + "A" * 42 + "=") is None
    salt = b"s" * 16
    assert hash_token(good, salt) == hash_token(good, salt) != hash_token(good, b"t" * 16)


def test_dead_letters_are_counted_by_the_kind_of_their_reason():
    assert reason_kind("bad timestamp: event_time 1990-01-01 00:00:00.000 is before 2000") == "bad timestamp"
    assert reason_kind("not Avro single-object encoding (first bytes 0x68656c6c)") == "not Avro single-object encoding"
    assert reason_kind("unknown schema fingerprint 0x0000000000000000 (not one of") == "unknown schema fingerprint"
    assert reason_kind("missing sensor_id") == "missing sensor_id"


def test_a_batching_connection_gets_a_reads_events_in_one_frame_the_others_one_each():
    async def run() -> tuple[list, list]:
        hub, single, batched = Hub(), Connection("acme"), Connection("acme")
        batched.batch = True
        for c in (single, batched):
            hub.add(c)
            c.go_live(set())
        hub.publish([decode("acme.results.alarm_rate", codec.encode("alarm_rate_result.v1", _result("acme", T0 + i)),
                            100 + i) for i in range(3)])
        return ([single.queue.get_nowait() for _ in range(single.queue.qsize())],
                [batched.queue.get_nowait() for _ in range(batched.queue.qsize())])

    single, batched = asyncio.run(run())
    assert [json.loads(frame)["row"]["window_start"] for frame, _, _ in single] == [T0, T0 + 1, T0 + 2]
    ((frame, committed, _),) = batched
    assert [f["row"]["window_start"] for f in json.loads(frame)["frames"]] == [T0, T0 + 1, T0 + 2]
    assert committed.times == (0.1, 0.101, 0.102)


def test_a_server_that_did_not_answer_is_503_and_a_bug_500_in_one_line_without_details():
    request = Request({"type": "http", "method": "GET", "path": "/api/v1/tables", "headers": [], "query_string": b""})
    unavailable = asyncio.run(failed(request, CassandraUnavailableError("Cassandra at 127.0.0.1:9042: secret")))
    bug = asyncio.run(failed(request, KeyError("secret")))
    assert (unavailable.status_code, bug.status_code) == (503, 500)
    for response in (unavailable, bug):
        assert b"secret" not in response.body and len(json.loads(response.body)["error"].splitlines()) == 1


def test_push_delays_count_each_result_of_a_frame_in_the_buckets_its_delay_is_within():
    delays = PushDelays("x_seconds", "x", (0.1, 1, 10))
    delays.observe(100.0, CommitTimes.of([99_500, 95_000, 99_950]))  # 0.5, 5 and 0.05 s before
    delays.observe(100.0, CommitTimes.of([70_000]))  # 30 s
    (metric,) = delays.collect()
    samples = {(s.name, s.labels.get("le")): s.value for s in metric.samples}
    assert [samples[("x_seconds_bucket", le)] for le in ("0.1", "1.0", "10.0", "+Inf")] == [1, 2, 3, 4]
    assert samples[("x_seconds_count", None)] == 4 and samples[("x_seconds_sum", None)] == pytest.approx(35.55)


def test_the_hub_times_a_reads_live_results_and_not_the_look_backs_replays():
    async def run() -> Metrics:
        metrics = Metrics()
        hub = Hub(metrics)
        live = decode("acme.results.alarm_rate", codec.encode("alarm_rate_result.v1", _result("acme", T0)), 10_000)
        replayed = decode("acme.results.alarm_rate", codec.encode("alarm_rate_result.v1", _result("acme", T0 + 1)),
                          1_000)
        hub.publish([dataclasses.replace(replayed, replay=True), live], received=12.5)
        return metrics

    metrics = asyncio.run(run())
    value = metrics.public.get_sample_value
    assert value("tenantstream_dashboard_receive_delay_seconds_count") == 1
    assert value("tenantstream_dashboard_receive_delay_seconds_sum") == pytest.approx(2.5)  # read 2.5 s after
    assert value("tenantstream_dashboard_handoff_delay_seconds_count") == 1


def _window(start: int, committed: int, station: str = "S1"):
    return decode("acme.results.alarm_rate", codec.encode("alarm_rate_result.v1", _result("acme", start, station)),
                  committed)


def _alert(start: int, committed: int):
    alert = {"tenant": "acme", "job": "alarm_rate", "key": "S1/D1", "window_start": start, "window_end": start + 60_000,
             "metric": "rate", "value": 0.9, "threshold": 0.5}
    return decode("acme.alerts", codec.encode("alert.v1", alert), committed)


class _State:
    """What _resume reads: the hub, and a Cassandra that holds nothing yet (the writer is behind)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.reader = self

    def since(self, table, tenant, since_ms):
        return []

    async def visible(self, principal):
        return ["acme"]


def _resumed(events: list, resume: Resume) -> list[dict]:
    """The frames a connection resuming with `resume` gets from a hub that read `events` (the look-back)."""
    async def run() -> list[dict]:
        hub = Hub()
        hub.ready.set()
        hub.publish(events)
        connection = Connection("acme")
        hub.add(connection)
        sender = asyncio.create_task(asyncio.sleep(60))
        await _resume(_State(hub), None, connection, sender, resume)
        sender.cancel()
        return [json.loads(connection.queue.get_nowait()[0]) for _ in range(connection.queue.qsize())]

    return asyncio.run(run())


def test_a_resume_after_the_newest_commit_it_received_gets_an_older_window_read_after_it():
    """k2@W1 committed first, in partition 1; k1@W2 after it, in partition 0, read first. A page gone between
    the two holds k1@W2: its `after` (W2) alone skips k2@W1; with the commit time of k1@W2 it comes again."""
    now = int(time.time() * 1000)
    w1, w2 = _window(T0, now - 2_000, "S2"), _window(T0 + 60_000, now - 1_000)
    older = _window(T0 - 60_000, now - REORDER_MS - 5_000, "S2")  # committed well before: the page holds it
    by_time = Resume({"alarm_rate": T0 + 60_000}, True, False, None)
    assert [(f["row"]["station_id"], f["row"]["window_start"]) for f in _resumed([older, w2, w1], by_time)
            if f["type"] == "window"] == [("S1", T0 + 60_000)]
    frames = _resumed([older, w2, w1], by_time._replace(committed_after=w2.committed_ms))
    assert [(f["row"]["station_id"], f["row"]["window_start"], f["source"]) for f in frames
            if f["type"] == "window"] == [("S2", T0, "history"), ("S1", T0 + 60_000, "history")]


def test_a_commit_time_the_look_back_no_longer_covers_brings_the_whole_history():
    now = int(time.time() * 1000)
    events = [_window(T0 + i * 60_000, now - 2 * REORDER_MS) for i in range(3)]
    resume = Resume({"alarm_rate": T0 + 120_000}, True, False, now - LOOKBACK_MS)
    assert [f["row"]["window_start"] for f in _resumed(events, resume) if f["type"] == "window"] == [
        T0, T0 + 60_000, T0 + 120_000]
    assert len(_resumed(events, resume._replace(committed_after=now - 1_000))) == 1


def test_a_resume_gets_the_alerts_of_the_look_back_once():
    now = int(time.time() * 1000)
    alerts = [_alert(T0, now - 2_000), _alert(T0 + 60_000, now - 1_000), _alert(T0, now - 500)]  # T0's twice
    frames = _resumed([_window(T0, now - 3_000), *alerts], Resume({"alarm_rate": T0 + 60_000}, True, False, None))
    assert sorted(f["row"]["window_start"] for f in frames if f["type"] == "alert") == [T0, T0 + 60_000]
    assert not [f for f in _resumed(alerts, Resume({}, False, False, None)) if f["type"] == "alert"]


def test_an_alert_read_while_the_history_loads_is_not_sent_twice():
    async def run() -> list[dict]:
        hub, connection = Hub(), Connection("acme")
        hub.add(connection)
        alert = _alert(T0, 5)
        hub.publish([alert, _alert(T0 + 60_000, 6)])  # buffered: the connection is loading its history
        connection.go_live({sent_key(None, alert.key)})
        return [json.loads(connection.queue.get_nowait()[0]) for _ in range(connection.queue.qsize())]

    assert [f["row"]["window_start"] for f in asyncio.run(run())] == [T0 + 60_000]


def test_recent_rows_committed_since_whatever_their_time():
    async def run() -> Hub:
        hub = Hub()
        hub.publish([_window(T0 + i, committed) for i, committed in ((0, 10**15 + 5), (1, 10**15), (2, 10**15))])
        return hub

    hub = asyncio.run(run())
    assert sorted(r["window_start"] for r in hub.recent_rows("acme", "alarm_rate", T0 + 2, 10**15 + 5)) == [T0, T0 + 2]
    assert [r["window_start"] for r in hub.recent_rows("acme", "alarm_rate", T0 + 2)] == [T0 + 2]


def test_what_the_hub_holds_is_nothing_the_garbage_collector_walks():
    """A look-back holds 100,000 rows; had they been tracked objects, every full collection walked them all."""
    async def run() -> Hub:
        hub = Hub()
        now = int(time.time() * 1000)
        hub.publish([_window(T0 + i * 60_000, now, station) for i in range(3) for station in ("S1", "S2")]
                    + [_alert(T0, now)])
        return hub

    hub = asyncio.run(run())
    gc.collect()  # the collector untracks a tuple of plain values when it looks at it once those inside are:
    gc.collect()  # a second collection, as the tuples of a row's key may come later in its list than the arrival
    held = [*hub.recent.values(), *hub.committed.values()]
    assert sum(len(rows) for rows in hub.recent.values()) == 7 and len(hub._arrivals) == 7
    assert not [value for rows in held for item in rows.items() for value in item if gc.is_tracked(value)]
    assert not [arrival for arrival in hub._arrivals if gc.is_tracked(arrival)]
    assert [a["metric"] for a, _ in hub.recent_alerts("acme")] == ["rate"]
