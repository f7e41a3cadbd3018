"""`/metrics` in Prometheus' text format: the operations figures, connected clients, and the delay from a
result's commit (its Kafka record's timestamp) to its push to a page."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dashboard.operations import JobFigures

PREFIX = "tenantstream_dashboard"


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
        self.push_delay = Histogram(f"{PREFIX}_push_delay_seconds", "From a result's commit (its Kafka record's "
                                    "timestamp) to its push to a page", registry=self.public,
                                    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.figures = _Figures()
        self.full = CollectorRegistry()
        self.full.register(_Also(self.public))
        self.full.register(self.figures)
