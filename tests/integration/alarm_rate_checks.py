"""What the alarm-rate integration tests read back and compare with the oracle."""

from __future__ import annotations

from connectors.cassandra import connect
from connectors.kafka import read_all
from schemas import codec


def _ms(value) -> int:
    from datetime import UTC

    return int(value.replace(tzinfo=UTC).timestamp() * 1000)


def committed_windows(bootstrap: str, topic: str, group: str) -> list[tuple]:
    """Every committed result record as ((station, datapoint, start, end), (fires, events, rate))."""
    out = []
    for m in read_all(bootstrap, [topic], group):
        r = codec.decode(m.value(), "alarm_rate_result.v1")
        out.append(((r["station_id"], r["datapoint_id"], _ms(r["window_start"]), _ms(r["window_end"])),
                    (r["fires"], r["events"], r["rate"])))
    return out


def cassandra_windows(port: int, keyspace: str, tenant: str) -> dict[tuple, tuple]:
    cluster, session = connect(port, keyspace)
    try:
        rows = session.execute("SELECT station_id, datapoint_id, window_start, window_end, fires, events, rate "
                               "FROM alarm_rate WHERE tenant = %s ALLOW FILTERING", (tenant,))
        return {(r.station_id, r.datapoint_id, _ms(r.window_start), _ms(r.window_end)): (r.fires, r.events, r.rate)
                for r in rows}
    finally:
        cluster.shutdown()


def diverted(bootstrap: str, topic: str, group: str) -> list[dict]:
    return [codec.decode(m.value(), "dead_letter.v1") for m in read_all(bootstrap, [topic], group)]
