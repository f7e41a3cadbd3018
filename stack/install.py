"""Fetches and builds what the servers and jobs run, into the per-user cache.

Maven copies jars (from ~/.m2, else Maven Central) into a folder named after the
pom and version; Go builds the FerretDB wrapper (from Go's module cache, else the
module proxy). A finished folder holds a marker file, so a fresh clone on the same
machine reuses it and an interrupted fetch is redone.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from pathlib import Path

from pipeline.errors import StackSetupError

MAVEN_DIR = Path(__file__).with_name("maven")
FERRET_SOURCE = Path(__file__).with_name("ferretdb")
DONE_MARKER = ".complete"

log = logging.getLogger(__name__)


class InstallError(StackSetupError):
    """A download or build failed; the message names the tool and its log."""


def _digest(*files: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _run(argv: list[str], what: str, log_file: Path, cwd: Path | None = None) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as out:
        code = subprocess.call(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if code != 0:
        tail = log_file.read_text().strip().splitlines()[-15:]
        raise InstallError(f"{what} failed (exit {code}); see {log_file}:\n" + "\n".join(tail))


def maven_jars(component: str, cache_dir: Path, version: str = "", transitive: bool = True) -> Path:
    """Return a folder with the jars of stack/maven/<component>/pom.xml, fetching them once."""
    pom = MAVEN_DIR / component / "pom.xml"
    target = cache_dir / "lib" / f"{component}-{version or 'pinned'}-{_digest(pom, extra=version)}"
    if (target / DONE_MARKER).exists():
        return target
    if shutil.which("mvn") is None:
        raise InstallError("Maven (mvn) is not on PATH; install it (Debian package 'maven') and retry")
    shutil.rmtree(target, ignore_errors=True)
    log.info("fetching %s jars with Maven into %s", component, target)
    argv = ["mvn", "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
            f"-DoutputDirectory={target}", f"-DexcludeTransitive={str(not transitive).lower()}"]
    if version:
        argv.append(f"-Dserver.version={version}")
    _run(argv, f"Maven fetch of {component}", cache_dir / "logs" / f"maven-{component}.log")
    (target / DONE_MARKER).touch()
    return target


def maven_package(module: Path, cache_dir: Path, inputs: list[Path]) -> Path:
    """Build the jar of the Maven `module` once per content of `inputs`; return the cached jar."""
    jar = cache_dir / "lib" / f"{module.name}-{_digest(*sorted(inputs))}.jar"
    if jar.exists():
        return jar
    if shutil.which("mvn") is None:
        raise InstallError("Maven (mvn) is not on PATH; install it (Debian package 'maven') and retry")
    log.info("building %s with Maven into %s", module.name, jar)
    _run(["mvn", "-B", "-q", "-f", str(module / "pom.xml"), "package", "-DskipTests"],
         f"Maven build of {module.name}", cache_dir / "logs" / f"maven-{module.name}.log")
    built = [j for j in (module / "target").glob("*.jar") if not j.name.startswith("original-")]
    if len(built) != 1:
        raise InstallError(f"Maven build of {module.name} left {len(built)} jars in {module / 'target'}")
    jar.parent.mkdir(parents=True, exist_ok=True)
    partial = jar.with_suffix(".partial")
    shutil.copyfile(built[0], partial)
    partial.rename(jar)
    return jar


def ferretdb_binary(cache_dir: Path) -> Path:
    """Return the FerretDB wrapper binary, building it with Go once per source version."""
    sources = [*sorted(FERRET_SOURCE.glob("*.go")), FERRET_SOURCE / "go.mod", FERRET_SOURCE / "go.sum"]
    binary = cache_dir / "bin" / f"ferretdb-local-{_digest(*sources)}"
    if binary.exists():
        return binary
    if shutil.which("go") is None:
        raise InstallError("Go is not on PATH; install Go 1.24 or newer and retry")
    log.info("building the FerretDB wrapper with Go into %s", binary)
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".partial")
    _run(["go", "build", "-o", str(partial), "."], "Go build of FerretDB",
         cache_dir / "logs" / "go-ferretdb.log", cwd=FERRET_SOURCE)
    partial.rename(binary)
    return binary
