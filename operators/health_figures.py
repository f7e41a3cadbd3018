"""The three Sensors 360 figures of a tenant, from its sensor_health windows: pure, no I/O.

The health job emits one row per tenant and window (health_result.v1) whose counts are cumulative
over the tenant's history (known sensors, silent sensors, lifespan) or of the window alone
(heartbeats, mean interval). The dashboard shows the figures as of the newest window:
- the share of known sensors with no heartbeat for more than N minutes (`silent_share`),
- a sensor's mean lifespan, last minus first heartbeat (`mean_lifespan_ms`),
- the mean time between two heartbeats of a sensor over its whole history: the sum of every sensor's
  lifespan (mean lifespan x known sensors) over the number of intervals (every heartbeat but each
  sensor's first), which is the mean of all intervals ever seen, not a mean of window means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

Row = Mapping[str, object]


@dataclass(frozen=True)
class HealthFigures:
    windows: int
    window_start: int | None
    window_end: int | None
    silence_minutes: int | None
    known_sensors: int | None
    silent_sensors: int | None
    silent_share: float | None
    mean_interval_ms: float | None  # over the whole history
    window_mean_interval_ms: float | None  # of the newest window alone, as its row has it
    mean_lifespan_ms: float | None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def health_figures(windows: Sequence[Row]) -> HealthFigures:
    """The figures of a tenant's health windows, all of them since its first, in any order."""
    if not windows:
        return HealthFigures(0, None, None, None, None, None, None, None, None, None)
    newest = max(windows, key=lambda row: row["window_start"])
    known = newest["known_sensors"]
    intervals = sum(row["heartbeats"] for row in windows) - known
    lifespans = newest["mean_lifespan_ms"] * known
    return HealthFigures(len(windows), newest["window_start"], newest["window_end"], newest["silence_minutes"],
                         known, newest["silent_sensors"], newest["silent_share"],
                         lifespans / intervals if intervals > 0 else None, newest["mean_interval_ms"],
                         newest["mean_lifespan_ms"])


def silent_now(latest: Sequence[Row]) -> list[dict[str, object]]:
    """The sensors whose newest sensor_silence row says `silent`, by sensor: when and since which heartbeat."""
    return [{"sensor_id": row["sensor_id"], "since": row["at"], "last_heartbeat": row["last_heartbeat"]}
            for row in sorted(latest, key=lambda row: row["sensor_id"]) if row["state"] == "silent"]
