"""Who each client of the project is: credentials from configuration, never from code or logs.

One JSON file (mode 0600) holds the operator's secrets: the Kafka super user, the secret from which
each job's Kafka password is derived, and the Cassandra roles (admin, writer, reader). `stack up`
writes it at the stack's first start under the state folder; `TENANTSTREAM_CREDENTIALS` names
another file (a real cluster's). Tenants' passwords are not in it: Kafka keeps only their salted
SCRAM hashes, and `tenant create` prints them once.

A job's password is HMAC-SHA256(job secret, principal): whoever may plan jobs can derive it, nothing
per job is stored, and the broker holds only its SCRAM hash. A file without a `kafka` section means
a broker without authentication (plaintext), as on a cluster configured so.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConnectorError
from pipeline.sql import Login

KAFKA_ADMIN = "admin"
CASSANDRA_ROLES = ("admin", "writer", "reader")


class CredentialsError(ConnectorError):
    """The credentials file is missing, unreadable or lacks what a client needs; says which and where."""


@dataclass(frozen=True)
class Credentials:
    """The operator's secrets. `kafka_admin` is None for a broker without authentication."""

    kafka_admin: Login | None
    job_secret: str
    controller: Login | None  # the KRaft controller listener's own login (SASL PLAIN, server side only)
    cassandra: dict[str, Login]

    def job_login(self, principal: str) -> Login:
        """The Kafka login of a job's principal, derived from the job secret."""
        digest = hmac.new(self.job_secret.encode(), principal.encode(), hashlib.sha256).hexdigest()
        return Login(principal, digest)

    def cassandra_login(self, role: str) -> Login | None:
        """The Cassandra login of `role` (admin, writer or reader); None for a node without authentication."""
        if not self.cassandra:
            return None
        if role not in self.cassandra:
            raise CredentialsError(f"no Cassandra role {role!r} in the credentials; roles: "
                                   f"{', '.join(sorted(self.cassandra))}")
        return self.cassandra[role]


def default_path() -> Path:
    """$TENANTSTREAM_CREDENTIALS, else credentials.json in the local stack's state folder."""
    from stack.config import load_config

    return load_config().credentials_file


def load(path: Path | None = None) -> Credentials:
    """The credentials in `path` (default_path()); a missing file means servers without authentication."""
    path = path or default_path()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return Credentials(None, "", None, {})
    except (OSError, ValueError) as err:
        raise CredentialsError(f"credentials file {path} cannot be read as JSON: {err}") from None
    try:
        kafka, cassandra = raw.get("kafka") or {}, raw.get("cassandra") or {}
        return Credentials(
            kafka_admin=Login(**kafka["admin"], mechanism="PLAIN") if kafka else None,
            job_secret=kafka.get("job_secret", ""),
            controller=Login(**kafka["controller"]) if kafka.get("controller") else None,
            cassandra={role: Login(**cassandra[role]) for role in cassandra})
    except (KeyError, TypeError, AttributeError) as err:
        raise CredentialsError(f"credentials file {path} lacks or misnames {err}") from None


def ensure(path: Path) -> Credentials:
    """The credentials in `path`, made with fresh random secrets (and written 0600) if the file is absent."""
    if not path.exists():
        def login(name: str) -> dict[str, str]:
            return {"username": name, "password": secrets.token_urlsafe(24)}

        raw = {"kafka": {"admin": login(KAFKA_ADMIN), "controller": login("controller"),
                         "job_secret": secrets.token_urlsafe(32)},
               "cassandra": {role: login(f"tenantstream_{role}") for role in CASSANDRA_ROLES}}
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(raw, out, indent=2)
        os.replace(temporary, path)
    return load(path)


def current() -> Credentials:
    """The credentials of this process's configuration (read once per call: the file may be rewritten)."""
    return load()


def kafka_client_settings(login: Login | None) -> dict[str, str]:
    """confluent-kafka settings that authenticate as `login` (none for a broker without authentication)."""
    if login is None:
        return {}
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": login.mechanism,
            "sasl.username": login.username, "sasl.password": login.password}
