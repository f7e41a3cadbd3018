"""Builds the dashboard's page (dashboard/frontend) into dashboard/static with npm, once per content.

The libraries are pinned in package-lock.json and come from npm's per-user cache (~/.npm) after the
first fetch, so a fresh clone on the same machine downloads nothing; a marker named after the sources'
digest says the built files are current, so an edited source is rebuilt and an unchanged one is not.
`tenantstream serve` and `demo --serve` build it before serving (dashboard.server.run); `python -m stack.frontend`
builds it by hand.
"""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

from stack.config import load_config
from stack.install import InstallError, _digest, _run

DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard"
FRONTEND = DASHBOARD / "frontend"
STATIC = DASHBOARD / "static"
MARKER_PREFIX = ".built-"

log = logging.getLogger(__name__)


def _inputs() -> list[Path]:
    return [FRONTEND / "package.json", FRONTEND / "package-lock.json", FRONTEND / "build.mjs",
            *sorted(p for p in (FRONTEND / "src").rglob("*") if p.is_file())]


def dashboard_assets(cache_dir: Path) -> Path:
    """Return dashboard/static with the page built from the current sources, building it if needed."""
    marker = STATIC / f"{MARKER_PREFIX}{_digest(*_inputs())}"
    if marker.exists():
        return STATIC
    if shutil.which("npm") is None:
        raise InstallError("npm is not on PATH; install Node.js 20 or newer (Debian packages 'nodejs' and "
                           "'npm') and retry")
    log.info("building the dashboard's page with npm into %s", STATIC)
    shutil.rmtree(STATIC, ignore_errors=True)
    logs = cache_dir / "logs"
    _run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
         "npm ci of the dashboard's libraries", logs / "npm-dashboard-ci.log", cwd=FRONTEND)
    _run(["npm", "run", "build"], "esbuild bundle of the dashboard", logs / "npm-dashboard-build.log",
         cwd=FRONTEND)
    if not (STATIC / "index.html").exists():
        raise InstallError(f"the dashboard's build left no index.html in {STATIC}; see "
                           f"{logs / 'npm-dashboard-build.log'}")
    marker.touch()
    return STATIC


def main() -> None:
    """Build the page if stale; an install failure is one line on stderr and exit 1."""
    try:
        dashboard_assets(load_config().cache_dir)
    except InstallError as err:
        sys.exit(f"tenantstream: {err}")


if __name__ == "__main__":
    main()
