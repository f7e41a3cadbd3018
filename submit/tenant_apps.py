"""Tenant stream apps: planned from data in a sandbox, kept as versions.

A tenant uploads a Python file that defines `app(stream)`: a transformation written against this
library's operators. The platform binds the tenant's own source and sinks around it, so the app has
no business reaching anything else. `validate` checks the file on its syntax tree without running it
(submit/app_check.py). `load` runs the app only in a confined child process (submit/sandbox.py: own
network namespace, unprivileged user, CPU, memory, file and time limits), where it builds its job on a
recording stream and prints a declarative spec (submit/app_stream.py, submit/app_child.py); here the
spec is checked against a schema and allow-lists and the Job is built from it with the library's own
objects (submit/app_spec.py). `upload` does the same before it keeps an app, so a bad app is refused
at upload time. The registry keeps each accepted app as a numbered version with its status, on disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.job import Job
from schemas import names
from submit import app_spec, sandbox
from submit.app_check import (  # noqa: F401 (the contract's names, used by the CLI and tests from here)
    MAX_BYTES,
    AppError,
    AppRejected,
    Violation,
    check_name,
    validate,
)
from submit.sandbox import LIMITS, Limits

STATUSES = ("accepted", "submitted", "running", "failed", "cancelled")
DEFAULT_BASE = "~/.local/state/tenantstream/apps"
ENTRY = "submit.app_child:build"


def bound_stream(tenant: str, app: str) -> Job:
    """What an app's `app(stream)` stands for: a job over the tenant's own alarm events only."""
    return Job(f"app_{check_name(app, 'app')}", tenants=(tenant,)).source(
        "alarms", schema="alarm_event.v2", time="event_time", required=("station_id", "datapoint_id"))


def load(source: str, filename: str, tenant: str, stream_job: Job, limits: Limits = LIMITS, *,
         entry: str = ENTRY) -> Job:
    """The job that the tenant's app makes of `stream_job` (the tenant's bound source), planned in the sandbox.

    Raises AppRejected if the source breaks the contract or the sandbox stopped it (a limit, a crash,
    an answer that is no spec), AppError if the app raised or built a job that the platform cannot run
    as the tenant's own, or if no sandbox can be made on this machine. Nothing else, whatever the file
    holds. `entry` is the function the sandbox
    calls with the source (tests give one that skips the static check, to test what stands behind it).
    """
    if stream_job.tenants != (tenant,):
        raise ValueError(f"the stream given to {tenant}'s app must be bound to {tenant} alone, "
                         f"not {stream_job.tenants}")
    check_name(tenant, "tenant")

    def rejected(message: str, line: int | None = None, col: int | None = None) -> AppRejected:
        return AppRejected([Violation(filename, line, col, message)])

    if len(source.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise rejected(f"the file is larger than {MAX_BYTES // 1024} KiB", 1, 1)
    try:
        stdout = sandbox.run(entry, {"source": source, "tenant": tenant, "stream": stream_job.stream}, limits)
        answer = app_spec.read_output(stdout)
    except (sandbox.SandboxError, app_spec.OutputError) as err:
        raise rejected(str(err)) from None
    except sandbox.SandboxUnavailableError as err:
        raise AppError(filename, str(err)) from None
    if "rejected" in answer:
        raise AppRejected([Violation(filename, _whole(v["line"]), _whole(v["col"]), v["message"])
                           for v in answer["rejected"]])
    if "error" in answer:
        raise AppError(filename, answer["error"]["message"], _whole(answer["error"]["line"]))
    try:
        return app_spec.build(answer["spec"], stream_job)
    except app_spec.SpecProblemsError as err:
        raise AppError(filename, str(err)) from None


def _whole(number: int | float | None) -> int | None:
    """A line or column of the child's answer (JSON Schema's integers include 3.0)."""
    return None if number is None else int(number)


# The registry: <base>/<tenant>/<name>/v<N>/{app.py, meta.json}, one folder per accepted content.

@dataclass(frozen=True)
class AppVersion:
    """One accepted version of a tenant's app and where it stands."""

    tenant: str
    name: str
    version: int
    sha256: str
    uploaded_at: str
    status: str
    detail: str
    directory: Path

    @property
    def app_file(self) -> Path:
        return self.directory / "app.py"

    def meta(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "directory"}


def upload(path: Path | str, tenant: str, name: str | None = None, *, base: Path | str | None = None,
           limits: Limits = LIMITS) -> AppVersion:
    """Plan the app file in the sandbox as `load` does and keep it as the tenant's next version; the same
    content is the same version.

    The name defaults to the file name without `.py`. Raises AppRejected or AppError as `load` does,
    ValueError for a bad tenant or app name.
    """
    path = Path(path)
    check_name(tenant, "tenant")
    name = check_name(name or path.stem, "app name")
    data = path.read_bytes()
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise AppRejected([Violation(str(path), line, 1, "the file is not UTF-8 text")]) from None
    load(source, str(path), tenant, bound_stream(tenant, name), limits)
    digest = hashlib.sha256(data).hexdigest()
    app_dir = _base(base) / tenant / name
    for existing in _versions(app_dir):
        if existing.sha256 == digest:
            return existing
    return _store(app_dir, tenant, name, data, digest)


def _store(app_dir: Path, tenant: str, name: str, data: bytes, digest: str) -> AppVersion:
    """Write the version in a staging folder, then rename it into place: a version is whole or absent."""
    app_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=app_dir))
    (staging / "app.py").write_bytes(data)
    while True:
        number = max((v.version for v in _versions(app_dir)), default=0) + 1
        uploaded_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        version = AppVersion(tenant, name, number, digest, uploaded_at, "accepted", "", app_dir / f"v{number}")
        _write_meta(staging, version)
        try:
            staging.rename(version.directory)
            return version
        except OSError:
            if not version.directory.exists():
                raise
            # a concurrent upload took this number: take the next one


def apps(tenant: str | None = None, *, base: Path | str | None = None) -> list[AppVersion]:
    """Every stored version, of one tenant or of all, ordered by tenant, app and version."""
    root = _base(base)
    tenant_dirs = [root / check_name(tenant, "tenant")] if tenant else _subdirs(root)
    return [v for tenant_dir in tenant_dirs for app_dir in _subdirs(tenant_dir) for v in _versions(app_dir)]


def set_status(tenant: str, name: str, version: int, status: str, detail: str = "", *,
               base: Path | str | None = None) -> AppVersion:
    """Record where a version stands (submitted, running, failed with why, ...)."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    directory = _base(base) / check_name(tenant, "tenant") / check_name(name, "app name") / f"v{version}"
    if not (directory / "meta.json").is_file():
        raise ValueError(f"no app {tenant}/{name} v{version} under {directory.parent.parent.parent}")
    updated = dataclasses.replace(_read_version(directory), status=status, detail=detail)
    _write_meta(directory, updated)
    return updated


def package(app_version: AppVersion) -> Path:
    """A zip of the app and its metadata for submission, refused if the file changed since it was accepted."""
    data = app_version.app_file.read_bytes()
    if hashlib.sha256(data).hexdigest() != app_version.sha256:
        raise ValueError(f"{app_version.app_file} changed since it was accepted (sha256 differs); upload it again")
    target = app_version.directory / f"{app_version.tenant}-{app_version.name}-v{app_version.version}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("app.py", data)
        archive.writestr("meta.json", json.dumps(app_version.meta(), indent=2))
    return target


def _base(base: Path | str | None) -> Path:
    return Path(base or DEFAULT_BASE).expanduser()


def _subdirs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and names.NAME.fullmatch(p.name)) \
        if directory.is_dir() else []


def _versions(app_dir: Path) -> list[AppVersion]:
    found = [_read_version(d) for d in _subdirs(app_dir) if re.fullmatch(r"v\d+", d.name)]
    return sorted(found, key=lambda v: v.version)


def _read_version(directory: Path) -> AppVersion:
    return AppVersion(**json.loads((directory / "meta.json").read_text()), directory=directory)


def _write_meta(directory: Path, version: AppVersion) -> None:
    """Replace meta.json whole, so a reader never sees half of it."""
    temporary = directory / "meta.json.tmp"
    temporary.write_text(json.dumps(version.meta(), indent=2) + "\n")
    os.replace(temporary, directory / "meta.json")

