"""The operations figures per job and tenant: consumer lag, results per second, dead letters by reason,
late records, last checkpoint.

Lag is what a job's consumer group (`tenantstream.<job>.<tenant+tenant...>`, pipeline.plan) has not
committed of its tenants' sensor topics; the checkpoint comes from Flink's REST API for jobs named
`<job>[<tenant>,...]` (submit.cluster); results, dead letters and late records are what this server's
feed read (feed.Hub). Asked of the broker and Flink at most every CACHE_S seconds.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from connectors.kafka import admin_client
from submit.cluster import ClusterError, FlinkRest

log = logging.getLogger(__name__)

CACHE_S = 5.0
# The job writing a result table, where it is not named as the table (a rollup's job is named as its table).
JOB_OF_TABLE = {"flow_aggregates": "flow", "sensor_health": "sensor_health", "sensor_silence": "sensor_health"}
JOB_OF_STREAM = {"alarms": "alarm_rate", "flow": "flow", "heartbeats": "sensor_health"}
_GROUP = re.compile(r"tenantstream\.([A-Za-z0-9_]+)\.([A-Za-z0-9_+-]+)")
_FLINK_NAME = re.compile(r"([A-Za-z0-9_]+)\[([A-Za-z0-9_,-]+)\]")


@dataclass
class JobFigures:
    job: str
    tenant: str
    flink_job_id: str | None = None
    state: str | None = None
    consumer_lag: int | None = None
    results_per_second: float = 0.0
    results: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    late: int = 0
    last_checkpoint: dict | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def job_of_source(source_topic: str) -> str:
    """The job that reads a sensor topic `<tenant>.sensors.<stream>` (the stream for a tenant app's)."""
    stream = source_topic.rsplit(".", 1)[-1]
    return JOB_OF_STREAM.get(stream, stream)


class _Flink(FlinkRest):
    def latest_checkpoint(self, job_id: str) -> dict | None:
        """The job's newest completed checkpoint: id, when its last acknowledgement came, how long it took."""
        done = self._call("GET", f"/jobs/{job_id}/checkpoints").get("latest", {}).get("completed")
        return {"id": done["id"], "completed_ms": done["latest_ack_timestamp"],
                "duration_ms": done["end_to_end_duration"]} if done else None


class Operations:
    """The figures only the broker and Flink know (lag, job state, checkpoints), asked at most every CACHE_S."""

    def __init__(self, bootstrap: str, flink_url: str) -> None:
        self.bootstrap, self.flink = bootstrap, _Flink(flink_url, timeout=3.0)
        self._lock = threading.Lock()
        self._at = 0.0
        self._lags: dict[tuple[str, str], int] = {}
        self._flink: dict[tuple[str, str], tuple[str, str, dict | None]] = {}

    def external(self) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], tuple[str, str, dict | None]]]:
        """(job, tenant) -> lag, and (job, tenant) -> (Flink job id, state, last checkpoint); cached."""
        with self._lock:
            if time.monotonic() - self._at > CACHE_S:
                self._lags, self._flink = self._ask_lags(), self._ask_flink()
                self._at = time.monotonic()
            return self._lags, self._flink

    def _ask_lags(self) -> dict[tuple[str, str], int]:
        try:
            admin = admin_client(self.bootstrap)
            groups = [g.group_id for g in admin.list_consumer_groups(request_timeout=5).result().valid
                      if _GROUP.fullmatch(g.group_id)]
            lags: dict[tuple[str, str], int] = {}
            for group in groups:
                job = _GROUP.fullmatch(group)[1]
                request = [ConsumerGroupTopicPartitions(group)]
                answer = admin.list_consumer_group_offsets(request, request_timeout=5)[group].result()
                committed = [tp for tp in answer.topic_partitions if ".sensors." in tp.topic and tp.offset >= 0]
                if not committed:
                    continue
                ends = admin.list_offsets({TopicPartition(tp.topic, tp.partition): OffsetSpec.latest()
                                           for tp in committed}, isolation_level=IsolationLevel.READ_COMMITTED,
                                          request_timeout=5)
                for tp in committed:
                    end = ends[TopicPartition(tp.topic, tp.partition)].result().offset
                    tenant = tp.topic.split(".", 1)[0]
                    lags[(job, tenant)] = lags.get((job, tenant), 0) + max(0, end - tp.offset)
            return lags
        except KafkaException as err:
            log.warning("operations: consumer lag unknown: %s", err)
            return {}

    def _ask_flink(self) -> dict[tuple[str, str], tuple[str, str, dict | None]]:
        try:
            found = {}
            for job in sorted(self.flink.jobs(), key=lambda j: j.started_ms):  # the newest of a name wins
                match = _FLINK_NAME.fullmatch(job.name)
                if not match:
                    continue
                checkpoint = self.flink.latest_checkpoint(job.job_id) if job.state == "RUNNING" else None
                for tenant in match[2].split(","):
                    found[(match[1], tenant)] = (job.job_id, job.state, checkpoint)
            return found
        except ClusterError as err:
            log.warning("operations: Flink jobs unknown: %s", err)
            return {}


def job_figures(seen: dict, lags: dict[tuple[str, str], int], flink: dict[tuple[str, str], tuple],
                visible: set[str] | None) -> list[JobFigures]:
    """One JobFigures per (job, tenant) known to the feed (`seen`: tenant -> feed.TenantFigures), the broker
    or Flink, of the `visible` tenants (every tenant for None), sorted."""
    pairs = {(job, tenant) for tenant, f in seen.items() for job in (*f.results_total, *f.late,
                                                                    *(job for job, _ in f.dead_letters))}
    pairs |= set(lags) | set(flink)
    out = []
    for job, tenant in sorted(p for p in pairs if visible is None or p[1] in visible):
        figures = JobFigures(job, tenant, consumer_lag=lags.get((job, tenant)))
        if (job, tenant) in flink:
            figures.flink_job_id, figures.state, figures.last_checkpoint = flink[(job, tenant)]
        if tenant in seen:
            f = seen[tenant]
            figures.results = f.results_total[job]
            figures.results_per_second = f.rate(job)
            figures.dead_letters = {reason: n for (j, reason), n in sorted(f.dead_letters.items()) if j == job}
            figures.late = f.late[job]
        out.append(figures)
    return out
