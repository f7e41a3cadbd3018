"""`tenantstream serve` as a child process for the dashboard's integration tests, and plain HTTP and WebSocket
clients of it (urllib and websockets: what a script would use, nothing of the server's own code)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from connectors.metadata import MetadataStore
from dashboard.tokens import TokenStore

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("tenantstream")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def register(store: MetadataStore, *tenants: str) -> None:
    """Registry entries of the tenants, as `tenant create` leaves them (without making their Kafka principals)."""
    for tenant in tenants:
        store.db["registry"].insert_one({"_id": tenant, "principal": f"tenant-{tenant}"})


def make_token(store: MetadataStore, tenant: str, operator: bool = False,
               lifetime: timedelta = timedelta(hours=1)) -> tuple[str, str]:
    """(token id, token) made as `tenant token create` makes them."""
    document, token = TokenStore(store.db).create(tenant, operator, lifetime)
    return document["_id"], token


class Served:
    """The server on one port: started, killed with SIGKILL, started again."""

    def __init__(self, database: str, keyspace: str, tenant_pattern: str, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.args = [str(CLI), "serve", "--port", str(self.port), "--database", database, "--keyspace", keyspace,
                     "--tenants-matching", tenant_pattern]
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(self.args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                status, _, _ = request(self.base, "GET", "/api/v1/me")
                if status == 401:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"serve did not answer in {timeout:g} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def request(base: str, method: str, path: str, *, token: str | None = None, cookie: str | None = None,
            body: bytes | dict | None = None, headers: dict | None = None) -> tuple[int, dict, str]:
    """(status, headers, body) of one request; never raises for a 4xx or 5xx."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    if cookie is not None:
        sent["Cookie"] = f"tenantstream_session={cookie}"
    req = urllib.request.Request(f"{base}{path}", data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def login(base: str, token: str) -> str:
    """The session cookie's value after a login with the token."""
    status, headers, body = request(base, "POST", "/api/v1/login", body={"token": token})
    assert status == 200, body
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    return cookie.split(";", 1)[0].split("=", 1)[1]


async def open_stream(base: str, cookie: str | None, origin: str | None = "same") -> ClientConnection:
    """A WebSocket to /api/v1/stream with the session cookie and an Origin (the server's own for "same")."""
    headers = {"Cookie": f"tenantstream_session={cookie}"} if cookie else {}
    return await connect(base.replace("http", "ws", 1) + "/api/v1/stream", additional_headers=headers,
                         origin=base if origin == "same" else origin, open_timeout=10, proxy=None)
