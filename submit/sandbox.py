"""Run untrusted Python (a tenant's app) in a confined child process and read back what it prints.

The child is `python -I -S -B` started through `unshare --net`, so it has a network namespace of its
own whose only interface, loopback, is down. Before it runs anything of the tenant's it limits itself
(CPU seconds, address space, file size 0, a few open files, no new processes, no core dumps), sets
no_new_privs (no setuid program can give privileges back), makes its empty working folder, which it
cannot write to, its root (chroot: no file and no Unix socket of the machine is in reach), and drops
from root to `nobody` (it cannot signal the caller's processes, nor leave the chroot). It has an
empty environment, no inherited file descriptors and stdin from /dev/null. The parent kills its
process group at the wall-clock limit and stops reading (and kills it) past the output limit.

Without root the child runs in a user namespace of its own (`unshare --user --net`) as the caller's
unmapped user, without capabilities, and so without the chroot: it can read what the caller's user
can read and open Unix sockets that user may open. Where neither is possible, nothing is run
(SandboxUnavailableError).
"""

from __future__ import annotations

import contextlib
import functools
import grp
import json
import os
import pwd
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: the child imports submit.app_child from it
BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from submit import app_child; app_child.main(sys.argv[2])"
STDERR_KEPT = 4096


@dataclass(frozen=True)
class Limits:
    """What one run of an app may use. A normal app needs about 0.1 s of CPU and runs within 24 MiB of
    address space."""

    cpu_s: int = 5  # CPU seconds, then SIGXCPU (and SIGKILL a second later)
    wall_s: float = 20.0  # wall clock, then the process group is killed (CPU time is the usual bound)
    memory_mib: int = 256  # address space (RLIMIT_AS)
    output_kib: int = 256  # what the parent reads from stdout; more kills the child (the largest spec is ~150 KiB)
    open_files: int = 16  # RLIMIT_NOFILE


LIMITS = Limits()


class SandboxError(Exception):
    """The child did not end with exit status 0 within its limits; the message says how, in one line."""


class SandboxUnavailableError(Exception):
    """This machine cannot confine a child (no root, no user namespaces): untrusted code is not run."""


@dataclass(frozen=True)
class _Isolation:
    prefix: tuple[str, ...]  # the command that starts the child in its own namespaces
    uid: int | None  # the user the child drops to, when it starts as root
    gid: int | None


def run(entry: str, payload: dict, limits: Limits = LIMITS) -> bytes:
    """Call `entry` ("module:function", a function of one dict returning a JSON-able dict) in a confined
    child with `payload`; what the child printed on stdout. Raises SandboxError, SandboxUnavailableError."""
    isolation = _isolation()
    try:
        stdout, stderr, stopped, status = _run(isolation, entry, payload, limits)
    except OSError as err:  # no temporary folder, no process: the machine's trouble, not the app's
        raise SandboxUnavailableError(f"cannot start the sandbox: {err}") from None
    if stopped:
        raise SandboxError(stopped)
    if status < 0:
        raise SandboxError(_signal_reason(-status, limits))
    if status > 0:
        last = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        if last[0].startswith("MemoryError"):
            raise SandboxError(f"the app went over its memory limit of {limits.memory_mib} MiB")
        raise SandboxError(f"the app's sandbox exited with status {status}")
    return stdout


def _run(isolation: _Isolation, entry: str, payload: dict, limits: Limits) -> tuple[bytes, bytes, str, int]:
    """Start the child and collect it: stdout, the start of stderr, why it was stopped early, its exit status."""
    with tempfile.TemporaryDirectory(prefix="tenantstream-sandbox-") as private:
        work = Path(private) / "work"
        work.mkdir()
        request = Path(private) / "request.json"
        request.write_text(json.dumps({"entry": entry, "payload": payload, "limits": asdict(limits),
                                       "uid": isolation.uid, "gid": isolation.gid}))
        request.chmod(0o600)  # read by the child before it drops to nobody
        work.chmod(0o555)  # empty, and nobody may create anything in it
        Path(private).chmod(0o711)
        started = time.monotonic()
        child = subprocess.Popen([*isolation.prefix, "--", sys.executable, "-I", "-S", "-B", "-c", BOOT, str(ROOT),
                                  str(request)],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 cwd=work, env={}, close_fds=True, process_group=0)
        try:
            stdout, stderr, stopped = _collect(child, limits, started)
        finally:
            _kill(child)
            child.wait()
    return stdout, stderr, stopped, child.returncode


def _collect(child: subprocess.Popen, limits: Limits, started: float) -> tuple[bytes, bytes, str]:
    """stdout and the start of stderr until both close; or why the child was stopped early."""
    cap = limits.output_kib * 1024
    out, err = bytearray(), bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ, out)
        selector.register(child.stderr, selectors.EVENT_READ, err)
        while selector.get_map():
            left = started + limits.wall_s - time.monotonic()
            if left <= 0:
                return bytes(out), bytes(err), f"the app ran longer than {limits.wall_s:g} s and was stopped"
            for key, _ in selector.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.data is out:
                    out += chunk
                    if len(out) > cap:
                        return bytes(out), bytes(err), f"the app's sandbox printed more than {limits.output_kib} KiB"
                elif len(err) < STDERR_KEPT:
                    err += chunk[:STDERR_KEPT - len(err)]
    remaining = started + limits.wall_s - time.monotonic()
    try:
        child.wait(max(remaining, 0.01))
    except subprocess.TimeoutExpired:
        return bytes(out), bytes(err), f"the app ran longer than {limits.wall_s:g} s and was stopped"
    return bytes(out), bytes(err), ""


def _kill(child: subprocess.Popen) -> None:
    """Kill the child's whole process group if it still runs (it cannot fork, but nothing of it may outlive
    the run)."""
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
    for stream in (child.stdout, child.stderr):
        stream.close()


def _signal_reason(number: int, limits: Limits) -> str:
    name = signal.Signals(number).name if number in signal.valid_signals() else f"signal {number}"
    if number in (signal.SIGXCPU, signal.SIGKILL):
        return f"the app used more than {limits.cpu_s} s of CPU and was stopped"
    if number in (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT):
        return f"the app crashed the interpreter ({name})"
    if number == signal.SIGXFSZ:
        return "the app tried to write a file"
    return f"the app's sandbox was killed by {name}"


@functools.cache
def _isolation() -> _Isolation:
    """How children are confined here: as root, a network namespace and a drop to nobody; otherwise a user
    namespace as well. Tried once per process with an empty Python."""
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    candidates = []
    if os.geteuid() == 0:
        candidates.append(_Isolation((unshare, "--net"), *_nobody()))
    candidates.append(_Isolation((unshare, "--user", "--net"), None, None))
    for isolation in candidates:
        try:
            probe = subprocess.run([*isolation.prefix, "--", sys.executable, "-I", "-S", "-c", ""], env={},
                                   stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return isolation
    raise SandboxUnavailableError("cannot confine tenant apps on this machine: `unshare --net` needs root and "
                             "`unshare --user --net` needs unprivileged user namespaces; apps are never run "
                             "without the sandbox")


def _nobody() -> tuple[int, int]:
    try:
        user = pwd.getpwnam("nobody")
    except KeyError:
        return 65534, 65534
    try:
        return user.pw_uid, grp.getgrnam("nogroup").gr_gid
    except KeyError:
        return user.pw_uid, user.pw_gid
