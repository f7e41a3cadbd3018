"""Submit jobs to a Flink cluster and manage them through its REST API.

The job is planned here, in the submitting Python process, exactly as for a local run; what
goes to the cluster is the job graph and the jars it needs (the Kafka connector and our Avro
format with the schemas bundled), uploaded by Flink's client through the REST endpoint. All
per-event work is Flink SQL, so no Python runs on the TaskManagers and no Python code needs
to be shipped there.

What a plan was made with beyond its SQL (Job.parameters, e.g. the health job's silence minutes) goes
with the job as its global job parameters, so that a resubmit from one of its savepoints can be checked
against it (Job.restore_problem) while the cluster still knows the job.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from connectors.flink import CheckpointSettings, streaming_table_env
from connectors.kafka import ensure_topics
from connectors.kafka_access import authorized
from pipeline.errors import SubmitError
from pipeline.execute import execute
from pipeline.job import Job, RunSettings

log = logging.getLogger(__name__)

TERMINAL_STATES = frozenset({"FINISHED", "CANCELED", "FAILED"})


class ClusterError(SubmitError, RuntimeError):
    """The cluster is unreachable, refused a request, a job failed, or a savepoint does not fit a job; the
    message says which."""


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    name: str
    state: str
    started_ms: int
    duration_ms: int


class FlinkRest:
    """A few calls of Flink's REST API (https://nightlies.apache.org/flink/flink-docs-stable/docs/ops/rest_api/)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            with contextlib.suppress(ValueError, AttributeError):
                detail = "; ".join(json.loads(detail).get("errors", [detail]))
            raise ClusterError(f"{method} {path} on {self.url}: HTTP {err.code}: {detail.strip()[:500]}") from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ClusterError(f"no Flink cluster answers at {self.url} ({reason}); start the local one with "
                               "`tenantstream stack up` or name another with --cluster") from None
        return json.loads(text) if text else {}

    def overview(self) -> dict:
        return self._call("GET", "/overview")

    def jobs(self) -> list[JobInfo]:
        return [JobInfo(j["jid"], j["name"], j["state"], j["start-time"], j["duration"])
                for j in self._call("GET", "/jobs/overview")["jobs"]]

    def state(self, job_id: str) -> str:
        return self._call("GET", f"/jobs/{job_id}")["state"]

    def root_cause(self, job_id: str) -> str:
        """The first line of the exception that failed the job, or '' if there is none."""
        history = self._call("GET", f"/jobs/{job_id}/exceptions").get("exceptionHistory", {})
        entries = history.get("entries") or []
        if not entries:
            return ""
        trace = entries[0].get("stacktrace", "")
        causes = [line for line in trace.splitlines() if line.startswith("Caused by:")]
        return (causes[-1].removeprefix("Caused by: ") if causes else trace.splitlines()[0] if trace
                else entries[0].get("exceptionName", ""))

    def wait_for(self, job_id: str, states: set[str], timeout: float = 120.0) -> str:
        """Wait until the job is in one of `states`; a job that fails instead raises with its root cause."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.state(job_id)
            if state in states:
                return state
            if state in TERMINAL_STATES:
                cause = self.root_cause(job_id)
                raise ClusterError(f"job {job_id} is {state}" + (f": {cause}" if cause else ""))
            time.sleep(0.5)
        raise ClusterError(f"job {job_id} still {state or 'unknown'} after {timeout:.0f} s (waited for "
                           f"{' or '.join(sorted(states))})")

    def parameters(self, job_id: str) -> dict[str, str]:
        """The job's global job parameters: what submit_job recorded with it."""
        return self._call("GET", f"/jobs/{job_id}/config")["execution-config"].get("user-config", {})

    def savepoint_job(self, location: str) -> str | None:
        """The id of the job that took the savepoint at `location`, or None if the cluster does not know it
        (a standalone cluster forgets finished jobs after `jobstore.expiration-time`, an hour by default)."""
        wanted = _folder(location)
        for job in sorted(self.jobs(), key=lambda j: -j.started_ms):
            stats: dict = {}
            with contextlib.suppress(ClusterError):  # a job without checkpointing has no statistics (HTTP 404)
                stats = self._call("GET", f"/jobs/{job.job_id}/checkpoints")
            taken = [(stats.get("latest") or {}).get("savepoint") or {}, *stats.get("history", [])]
            if any(c.get("external_path") and _folder(c["external_path"]) == wanted for c in taken):
                return job.job_id
        return None

    def cancel(self, job_id: str) -> None:
        self._call("PATCH", f"/jobs/{job_id}?mode=cancel")
        self.wait_for(job_id, {"CANCELED"}, timeout=60)

    def stop_with_savepoint(self, job_id: str, directory: str | None = None, timeout: float = 120.0) -> str:
        """Take a savepoint and stop the job (its sinks commit first); return the savepoint's location."""
        body = {"drain": False, **({"targetDirectory": directory} if directory else {})}
        trigger = self._call("POST", f"/jobs/{job_id}/stop", body)["request-id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self._call("GET", f"/jobs/{job_id}/savepoints/{trigger}")
            if answer["status"]["id"] == "COMPLETED":
                operation = answer.get("operation", {})
                if "failure-cause" in operation:
                    trace = operation["failure-cause"].get("stack-trace", "")
                    raise ClusterError(f"savepoint of job {job_id} failed: {trace.splitlines()[0] if trace else ''}")
                return operation["location"]
            time.sleep(0.5)
        raise ClusterError(f"savepoint of job {job_id} not done after {timeout:.0f} s")


def _folder(location: str) -> str:
    """A savepoint's location as one spelling of its folder: file:/x, file:///x and /x/ are /x."""
    return re.sub(r"^file:(//)?", "", location).rstrip("/")


def remote_settings(url: str, job_name: str) -> dict[str, str]:
    """Flink settings that send the job to the cluster at `url` and return once it is submitted."""
    parts = urlsplit(url if "//" in url else f"http://{url}")
    return {"execution.target": "remote", "rest.address": parts.hostname or "127.0.0.1",
            "rest.port": str(parts.port or 8081), "execution.attached": "false", "pipeline.name": job_name}


def submit_job(job: Job, settings: RunSettings, rest: FlinkRest, parallelism: int = 1,
               from_savepoint: str | None = None, partitions: int = 2) -> str:
    """Plan `job`, submit it to the cluster, wait until it runs; return its Flink job id.

    From a savepoint whose state would not restore into the same operators of `job`'s plan, it is not
    submitted (ClusterError).
    """
    rest.overview()  # a plain error now rather than a Java stack trace from the client later
    if from_savepoint:
        _check_savepoint(job, rest, from_savepoint)
    ensure_topics(settings.bootstrap, [name for t in job.tenants for name in job.topics(t).all()], partitions)
    name = f"{job.name}[{','.join(job.tenants)}]"
    extra = remote_settings(rest.url, name)
    if job.parameters():
        extra["pipeline.global-job-parameters"] = ",".join(f"{k}:{v}" for k, v in sorted(job.parameters().items()))
    env = streaming_table_env(CheckpointSettings(None), parallelism=parallelism, restore_from=from_savepoint,
                              extra=extra)
    job_id = str(execute(job, authorized(job, settings), env).get_job_client().get_job_id())
    log.info("submitted %s as Flink job %s to %s%s", name, job_id, rest.url,
             f" from savepoint {from_savepoint}" if from_savepoint else "")
    rest.wait_for(job_id, {"RUNNING"})
    return job_id


def _check_savepoint(job: Job, rest: FlinkRest, location: str) -> None:
    """Refuse a savepoint whose job was planned so that its state would not restore into the same operators;
    a savepoint of a job the cluster no longer knows (or that recorded nothing) is taken as it is."""
    if not job.parameters():
        return
    source = rest.savepoint_job(location)
    planned = rest.parameters(source) if source else {}
    if not planned:
        log.warning("savepoint %s: no job on %s that took it recorded what it was planned with, so whether its "
                    "state fits %s's plan is not checked", location, rest.url, job.name)
        return
    problem = job.restore_problem(planned)
    if problem:
        raise ClusterError(f"{job.name} for {', '.join(job.tenants)} not submitted from savepoint {location} "
                           f"(of job {source}): {problem}")
