"""Debian's Chromium for the dashboard's browser tests, installed with apt-get on first use.

Playwright's own browser download is not reachable from these machines, so the tests drive the
distribution's build (`executable_path`). apt keeps its downloads in /var/cache/apt, shared by every
clone; the check below looks at the installed binaries, never at that cache.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from stack.install import InstallError, _run

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver")

# What a headless Chromium needs on a machine with a closed network and no display: no sandbox (root,
# containers), no QUIC, and none of the background fetches that would hang on an unreachable host.
LAUNCH_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync")

log = logging.getLogger(__name__)


def _apt_prefix() -> list[str]:
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.call(["sudo", "-n", "true"], stderr=subprocess.DEVNULL) == 0:
        return ["sudo", "-n"]
    raise InstallError(f"Chromium is not installed and apt-get needs root: run "
                       f"`sudo apt-get install -y {' '.join(PACKAGES)}` and retry")


def chromium(cache_dir: Path) -> Path:
    """Return Debian's Chromium binary, installing `chromium` and `chromium-driver` with apt-get once."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        raise InstallError(f"Chromium is not at {CHROMIUM} and there is no apt-get: install Debian's "
                           f"{' and '.join(PACKAGES)} (or an equivalent Chromium at that path) and retry")
    prefix = _apt_prefix()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*prefix, "env", f"DEBIAN_FRONTEND={env['DEBIAN_FRONTEND']}",
               "apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    log_file = cache_dir / "logs" / "apt-chromium.log"
    log.info("installing %s with apt-get", " and ".join(PACKAGES))
    try:
        _run(install, "apt-get install of Chromium", log_file)
    except InstallError:  # a fresh machine has no package lists yet
        _run([*prefix, "apt-get", "update"], "apt-get update", cache_dir / "logs" / "apt-update.log")
        _run(install, "apt-get install of Chromium", log_file)
    if not CHROMIUM.exists():
        raise InstallError(f"apt-get installed {PACKAGES[0]} but {CHROMIUM} is missing; see {log_file}")
    return CHROMIUM
