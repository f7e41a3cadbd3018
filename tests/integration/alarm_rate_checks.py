"""What the alarm-rate integration tests read back and compare with the oracle."""

from __future__ import annotations

from connectors.kafka import read_all
from faults.run import cassandra_windows
from schemas import codec

__all__ = ["cassandra_windows", "committed_windows", "diverted"]


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


def diverted(bootstrap: str, topic: str, group: str) -> list[dict]:
    return [codec.decode(m.value(), "dead_letter.v1") for m in read_all(bootstrap, [topic], group)]
