"""A small filesystem under the cluster profile's checkpoint folder, to fill up mid-stream (as root).

The Flink nodes run in network namespaces entered with `ip netns exec`, which gives each process a mount namespace
of its own, a copy of the host's taken when it started (the host's / is private here: later mounts do not reach
them). So the filesystem is an ext4 image on a loop device, mounted at the checkpoint folder in the host's and in
each running Flink node's mount namespace (nsenter): one block device, one filesystem, whoever writes to it. Every
mount is undone, and the loop device and image removed, on every way out of `checkpoint_filesystem` (an
exception, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import contextlib
import errno
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import FaultsError
from stack import netns, processes
from stack.config import StackConfig
from stack.servers import servers

FILLER = "faults-filler"
SIZE_MB = 32


class DiskError(FaultsError):
    """The small filesystem could not be made or mounted; the message says what failed."""


@dataclass(frozen=True)
class SmallFilesystem:
    folder: Path  # where it is mounted: the checkpoint folder
    device: str
    size_mb: int


def checkpoint_folder(cfg: StackConfig) -> Path:
    """Where the profile's Flink writes checkpoints (stack/conf/flink-config.yaml, execution.checkpointing.dir)."""
    return cfg.data_dir("flink") / "checkpoints"


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise DiskError(f"`{' '.join(argv)}` failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout.strip()


def _flink_pids(cfg: StackConfig) -> list[int]:
    pids = []
    for server in servers(cfg):
        record = processes.load_record(cfg.run_dir, server.name)
        if server.name.startswith("flink-") and record is not None and record.alive():
            pids.append(record.pid)
    return pids


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM raises SystemExit while inside (in the main thread), so the mounts are undone then too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    before = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@contextlib.contextmanager
def checkpoint_filesystem(cfg: StackConfig, size_mb: int = SIZE_MB) -> Iterator[SmallFilesystem]:
    """A `size_mb` ext4 filesystem mounted at the checkpoint folder for every running Flink node and this host."""
    netns.require_root("a loop-mounted checkpoint filesystem")
    folder = checkpoint_folder(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    image = cfg.run_dir / "faults-checkpoints.img"
    mounted: list[list[str]] = []  # the nsenter prefix of each namespace it is mounted in ([] for the host's)
    device = ""
    with _sigterm_exits():
        try:
            with image.open("wb") as f:
                f.truncate(size_mb << 20)
            _run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)])  # no blocks reserved for root: Flink runs as root
            device = _run(["losetup", "--find", "--show", str(image)])
            for prefix in [[], *(["nsenter", "-t", str(pid), "-m"] for pid in _flink_pids(cfg))]:
                _run([*prefix, "mount", device, str(folder)])
                mounted.append(prefix)
            yield SmallFilesystem(folder, device, size_mb)
        finally:
            for prefix in reversed(mounted):
                with contextlib.suppress(DiskError):
                    try:
                        _run([*prefix, "umount", str(folder)])
                    except DiskError:  # a file still open on it: detach now, freed when closed
                        _run([*prefix, "umount", "--lazy", str(folder)])
            if device:
                with contextlib.suppress(DiskError):
                    _run(["losetup", "--detach", device])
            image.unlink(missing_ok=True)


def fill(folder: Path) -> int:
    """Write zeros into `folder`/faults-filler until the filesystem is full; return the bytes written."""
    written, chunk = 0, b"\0" * (1 << 20)
    with (folder / FILLER).open("wb", buffering=0) as f:
        while True:
            try:
                n = f.write(chunk)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    return written
                chunk = chunk[:len(chunk) // 16 or 1]
                continue
            written += n


def empty(folder: Path) -> None:
    (folder / FILLER).unlink(missing_ok=True)
