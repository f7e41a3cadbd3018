"""A virtualenv of its own for the Quix Streams baseline.

quixstreams 3.28.1 requires confluent-kafka <2.13 while the project pins
confluent-kafka==2.16.1, so the two cannot share the project venv. The venv is
made once per pinned version under the cache folder (pip's own cache makes a
rebuild cheap) and reused; a lock keeps parallel callers from building it twice.
Run the baseline as `<quix_python(...)> bench/quix_baseline.py` with
PYTHONPATH set to the repository root (it imports schemas.codec: fastavro + stdlib).
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from pathlib import Path

QUIXSTREAMS_VERSION = "3.28.1"  # newest on PyPI when pinned; runs on Python 3.11
REQUIREMENTS = (
    f"quixstreams=={QUIXSTREAMS_VERSION}",
    "confluent-kafka==2.12.2",  # newest that quixstreams 3.28.1 accepts (<2.13)
    "fastavro==1.13.1",  # the project's pin, for schemas.codec
)


def quix_python(cache_dir: Path) -> Path:
    """The python of a venv with the pinned Quix Streams, made under `cache_dir` on first use."""
    venv = Path(cache_dir).expanduser() / f"venv-quix-{QUIXSTREAMS_VERSION}"
    python, ready = venv / "bin" / "python", venv / ".ready"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists() and ready.read_text() == "\n".join(REQUIREMENTS):
            return python
        shutil.rmtree(venv, ignore_errors=True)  # half-built or other pins: start over
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        *REQUIREMENTS], check=True, stdout=sys.stderr)
        ready.write_text("\n".join(REQUIREMENTS))
    return python


if __name__ == "__main__":
    print(quix_python(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("~/.cache/tenantstream")))
