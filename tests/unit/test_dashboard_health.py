"""The dashboard's three Sensors 360 figures (operators/health_figures.py), computed from the health oracle's
windows, equal the same figures counted straight from the heartbeats the oracle accepted."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import pytest

from operators.health_figures import health_figures, silent_now
from tests.health_oracle import beats_from, sensor_health
from tests.health_patterns import OUT_OF_ORDERNESS, randomized, scripted

MINUTES = {"acme": 2, "globex": 3}
WINDOW_MS = 5 * 60_000


def _windows(outcome, tenant: str) -> list[dict]:
    return [{"window_start": start, "window_end": end, **fields}
            for (t, start, end), fields in outcome.health.items() if t == tenant]


def _counted(beats, outcome, tenant: str) -> tuple[float | None, float]:
    """(mean interval, mean lifespan) from each sensor's accepted heartbeats, as the page should say them."""
    rejected = set(outcome.invalid) | set(outcome.late)
    times = defaultdict(list)
    for b in beats:
        if b.topic_tenant == tenant and (b.topic_tenant, b.offset) not in rejected:
            times[b.sensor_id].append(b.event_time)
    intervals = [b - a for ts in times.values() for a, b in itertools.pairwise(sorted(ts))]
    lifespans = [max(ts) - min(ts) for ts in times.values()]
    return (sum(intervals) / len(intervals) if intervals else None), sum(lifespans) / len(lifespans)


@pytest.mark.parametrize("pattern", [lambda: scripted(MINUTES), lambda: randomized(MINUTES, seed=3)],
                         ids=["scripted", "random-3"])
@pytest.mark.parametrize("tenant", sorted(MINUTES))
def test_figures_of_the_oracle_windows_equal_the_figures_of_the_heartbeats(pattern, tenant):
    beats = beats_from(pattern())
    outcome = sensor_health(beats, MINUTES, WINDOW_MS, OUT_OF_ORDERNESS)
    windows = _windows(outcome, tenant)
    assert windows, "the pattern gives the tenant health windows"
    figures = health_figures(list(reversed(windows)))  # in any order
    mean_interval, mean_lifespan = _counted(beats, outcome, tenant)
    newest = max(windows, key=lambda w: w["window_start"])
    assert figures.windows == len(windows)
    assert figures.window_start == newest["window_start"]
    assert math.isclose(figures.mean_interval_ms, mean_interval, rel_tol=1e-9)
    assert math.isclose(figures.mean_lifespan_ms, mean_lifespan, rel_tol=1e-9)
    assert figures.silent_share == newest["silent_sensors"] / newest["known_sensors"]


def test_no_windows_no_figures():
    figures = health_figures([])
    assert figures.windows == 0
    assert figures.silent_share is None and figures.mean_interval_ms is None and figures.mean_lifespan_ms is None


def test_silent_now_are_the_sensors_whose_newest_row_is_silent():
    latest = [{"sensor_id": "B", "state": "silent", "at": 5, "last_heartbeat": 1},
              {"sensor_id": "A", "state": "recovered", "at": 9, "last_heartbeat": 9},
              {"sensor_id": "C", "state": "silent", "at": 7, "last_heartbeat": 2}]
    assert silent_now(latest) == [{"sensor_id": "B", "since": 5, "last_heartbeat": 1},
                                  {"sensor_id": "C", "since": 7, "last_heartbeat": 2}]
