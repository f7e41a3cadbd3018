"""`/metrics` in Prometheus' text format: the operations figures, connected clients, and the delay from a
result's commit (its Kafka record's timestamp) to its push to a page."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from dashboard.operations import JobFigures

PREFIX = "tenantstream_dashboard"
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.175, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 7.5, 10,
                 15, 30, 60)


class _Figures(Collector):
    """Renders the last figures handed to it (computed on the event loop, which owns what they count)."""

    def __init__(self) -> None:
        self.figures: Sequence[JobFigures] = ()

    def collect(self) -> Iterator[Metric]:
        labels = ["job", "tenant"]
        lag = GaugeMetricFamily(f"{PREFIX}_consumer_lag_records", "Sensor records the job's consumer group "
                                "has not committed", labels=labels)
        rate = GaugeMetricFamily(f"{PREFIX}_results_per_second", "Result windows a second over the last "
                                 "minute, as the server read them", labels=labels)
        results = CounterMetricFamily(f"{PREFIX}_results", "Result windows the server read", labels=labels)
        dead = CounterMetricFamily(f"{PREFIX}_dead_letters", "Dead letters the server read, by reason",
                                   labels=[*labels, "reason"])
        late = CounterMetricFamily(f"{PREFIX}_late_records", "Late records the server read", labels=labels)
        checkpoint = GaugeMetricFamily(f"{PREFIX}_last_checkpoint_timestamp_seconds", "When the job's newest "
                                       "checkpoint completed (Flink's REST API)", labels=labels)
        for f in self.figures:
            key = [f.job, f.tenant]
            if f.consumer_lag is not None:
                lag.add_metric(key, f.consumer_lag)
            rate.add_metric(key, f.results_per_second)
            results.add_metric(key, f.results)
            for reason, count in f.dead_letters.items():
                dead.add_metric([*key, reason], count)
            late.add_metric(key, f.late)
            if f.last_checkpoint is not None:
                checkpoint.add_metric(key, f.last_checkpoint["completed_ms"] / 1000)
        yield from (lag, rate, results, dead, late, checkpoint)


@dataclass(frozen=True)
class CommitTimes:
    """The commit times of a frame's live results (epoch seconds, sorted) and their sum: made once a frame,
    counted for every page it goes to."""

    times: tuple[float, ...]
    total: float

    @classmethod
    def of(cls, committed_ms: Iterable[int]) -> CommitTimes:
        times = tuple(sorted(ms / 1000 for ms in committed_ms))
        return cls(times, sum(times))


class PushDelays(Collector):
    """A histogram of the delay from each result's commit to its push to a page, counted a frame at a time: a
    frame of n results costs a bisection a bucket, not n observations (2 us each, which for 500 pages of 66
    windows held the event loop 70 ms a checkpoint). Observed and collected on the event loop only."""

    def __init__(self, name: str, documentation: str, bounds: Sequence[float]) -> None:
        self.name, self.documentation, self.bounds = name, documentation, tuple(bounds)
        self.at_most = [0] * len(self.bounds)  # results pushed within each bound (cumulative)
        self.count, self.sum = 0, 0.0

    def observe(self, now: float, committed: CommitTimes) -> None:
        times = committed.times
        for i, bound in enumerate(self.bounds):  # a delay within `bound` is a commit at or after now - bound
            self.at_most[i] += len(times) - bisect_left(times, now - bound)
        self.count += len(times)
        self.sum += len(times) * now - committed.total

    def collect(self) -> Iterator[Metric]:
        buckets = [(floatToGoString(b), n) for b, n in zip(self.bounds, self.at_most, strict=True)]
        yield HistogramMetricFamily(self.name, self.documentation, buckets=[*buckets, ("+Inf", self.count)],
                                    sum_value=self.sum)


class _Also(Collector):
    """What another registry collects, collected again here."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


class Metrics:
    """The server's own registries (not the process-wide default, so two apps in one process do not clash):
    `public` names no tenant (clients, push delays), `full` adds the figures per job and tenant."""

    def __init__(self) -> None:
        self.public = CollectorRegistry()
        self.clients = Gauge(f"{PREFIX}_clients", "Connected WebSocket clients", registry=self.public)
        self.push_delay = PushDelays(f"{PREFIX}_push_delay_seconds", "From a result's commit (its Kafka record's "
                                     "timestamp) to its push to a page", STAGE_BUCKETS)
        self.public.register(self.push_delay)
        # The push delay by stage, to tell where it goes: the wait for the commit and the consumer's fetch, the
        # hand-over from the consumer's thread to the event loop, and the fan-out to each page.
        self.receive_delay = Histogram(f"{PREFIX}_receive_delay_seconds", "From a result's Kafka timestamp to "
                                       "the server's consumer reading it (includes the wait for its transaction's "
                                       "commit)", registry=self.public, buckets=STAGE_BUCKETS)
        self.handoff_delay = Histogram(f"{PREFIX}_handoff_delay_seconds", "From the consumer reading a batch of "
                                       "records to the event loop publishing it", registry=self.public,
                                       buckets=STAGE_BUCKETS)
        self.fanout_delay = Histogram(f"{PREFIX}_fanout_delay_seconds", "From the consumer reading a result to "
                                      "the end of its send to a page (each page counts)", registry=self.public,
                                      buckets=STAGE_BUCKETS)
        self.figures = _Figures()
        self.full = CollectorRegistry()
        self.full.register(_Also(self.public))
        self.full.register(self.figures)
