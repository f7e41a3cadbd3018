"""Dashboard logins: tokens made on the command line, and the browser sessions they open.

A token is `tst_<id>_<secret>`: the id is public (it is listed and revoked by it), the secret is 256
random bits. The metadata store keeps only a salted scrypt hash of the whole token (n=2^14, r=8: about
50 ms and 16 MiB a check, so a stolen collection is slow to search), beside the tenant registry entry it
hangs off. A session id is another 256 random bits kept as its SHA-256 (a fast hash suffices for a value
that random): a copy of the store opens no session, and a session dies with its token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.database import Database

from pipeline.errors import DashboardError
from submit.tenants import REGISTRY

TOKENS = "dashboard_tokens"
SESSIONS = "dashboard_sessions"
SESSION_HOURS = 12
_TOKEN = re.compile(r"tst_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
_DURATION = re.compile(r"([1-9][0-9]{0,5})([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
MAX_DURATION = timedelta(days=366)


class TokenError(DashboardError, ValueError):
    """A token cannot be made or revoked as asked; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who a token or session speaks for: one tenant, or every tenant for an operator."""

    tenant: str
    operator: bool
    token_id: str
    expires_at: datetime

    def may_see(self, tenant: str) -> bool:
        return self.operator or tenant == self.tenant


def parse_duration(text: str) -> timedelta:
    """'30d', '12h', '90m' or '45s' as a timedelta, up to 366 days."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise TokenError(f"--expires takes a number and a unit s, m, h or d such as 30d, not {text!r}")
    duration = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if duration > MAX_DURATION:
        raise TokenError(f"--expires {text} is longer than {MAX_DURATION.days} days; make a new token then")
    return duration


def token_id(token: str) -> str | None:
    """The public id of a well-formed token, None for anything else."""
    match = _TOKEN.fullmatch(token)
    return match[1] if match else None


def hash_token(token: str, salt: bytes) -> bytes:
    return hashlib.scrypt(token.encode(), salt=salt, n=2**14, r=8, p=1, maxmem=64 * 2**20, dklen=32)


def session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class TokenStore:
    """Tokens and sessions in the metadata database `db` (a MetadataStore's)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, tenant: str, operator: bool, lifetime: timedelta) -> tuple[dict, str]:
        """A new token of a tenant of the registry: its stored document and the token, shown once."""
        if self.db[REGISTRY].find_one({"_id": tenant}) is None:
            raise TokenError(f"no tenant {tenant} in the registry (`tenant list` shows them, `tenant create` "
                             "makes one)")
        ident = secrets.token_hex(6)
        token = f"tst_{ident}_{secrets.token_urlsafe(32)}"  # 32 bytes are 43 URL-safe characters
        salt = secrets.token_bytes(16)
        at = _now()
        document = {"_id": ident, "tenant": tenant, "operator": operator, "created_at": at,
                    "expires_at": at + lifetime, "revoked_at": None, "salt": salt, "hash": hash_token(token, salt)}
        self.db[TOKENS].insert_one(document)
        return document, token

    def list(self, tenant: str) -> list[dict]:
        return list(self.db[TOKENS].find({"tenant": tenant}, {"salt": 0, "hash": 0}).sort("created_at"))

    def revoke(self, ident: str) -> dict:
        """Revoke a token by id (its sessions die with it); the document as it was."""
        document = self.db[TOKENS].find_one({"_id": ident}, {"salt": 0, "hash": 0})
        if document is None:
            raise TokenError(f"no token {ident} (`tenant token list TENANT` shows the ids)")
        self.db[TOKENS].update_one({"_id": ident}, {"$set": {"revoked_at": _now()}})
        self.db[SESSIONS].delete_many({"token_id": ident})
        return document

    def revoke_tenant(self, tenant: str) -> int:
        """Revoke every token of a tenant (when it leaves the registry); how many were live."""
        live = [d["_id"] for d in self.db[TOKENS].find({"tenant": tenant, "revoked_at": None}, {"_id": 1})]
        for ident in live:
            self.revoke(ident)
        return len(live)

    def verify(self, token: str) -> Principal | None:
        """The principal of a live token; None for a malformed, unknown, wrong, expired or revoked one."""
        ident = token_id(token)
        document = self.db[TOKENS].find_one({"_id": ident}) if ident else None
        if document is None or not hmac.compare_digest(hash_token(token, document["salt"]), document["hash"]):
            return None
        return self._live(document)

    def still_live(self, principal: Principal) -> bool:
        """Whether the token a principal was verified with is still neither revoked nor expired."""
        document = self.db[TOKENS].find_one({"_id": principal.token_id}, {"salt": 0, "hash": 0})
        return document is not None and self._live(document) is not None

    @staticmethod
    def _live(document: dict) -> Principal | None:
        if document["revoked_at"] is not None or document["expires_at"] <= _now():
            return None
        return Principal(document["tenant"], document["operator"], document["_id"], document["expires_at"])

    def open_session(self, principal: Principal) -> tuple[str, datetime]:
        """A new session id for the principal and when it ends (with its token, or in 12 hours)."""
        session_id = secrets.token_urlsafe(32)
        ends = min(principal.expires_at, _now() + timedelta(hours=SESSION_HOURS))
        self.db[SESSIONS].insert_one({"_id": session_key(session_id), "token_id": principal.token_id,
                                      "tenant": principal.tenant, "operator": principal.operator,
                                      "expires_at": ends})
        return session_id, ends

    def session(self, session_id: str) -> Principal | None:
        """The principal of a live session; None if it is unknown, ended, or its token is no longer live."""
        document = self.db[SESSIONS].find_one({"_id": session_key(session_id)})
        if document is None or document["expires_at"] <= _now():
            return None
        principal = Principal(document["tenant"], document["operator"], document["token_id"], document["expires_at"])
        return principal if self.still_live(principal) else None

    def live(self, session_ids: Collection[str], token_ids: Collection[str]) -> tuple[set[str], set[str]]:
        """Which of `session_ids` are open and which of `token_ids` neither revoked nor expired: one query each,
        whatever their number (the open WebSockets are rechecked with it)."""
        keys = {session_key(s): s for s in session_ids}
        now = _now()
        sessions = {keys[d["_id"]] for d in self.db[SESSIONS].find({"_id": {"$in": list(keys)}}, {"expires_at": 1})
                    if d["expires_at"] > now} if keys else set()
        tokens = {d["_id"] for d in self.db[TOKENS].find({"_id": {"$in": list(token_ids)}}, {"salt": 0, "hash": 0})
                  if self._live(d) is not None} if token_ids else set()
        return sessions, tokens

    def close_session(self, session_id: str) -> None:
        self.db[SESSIONS].delete_one({"_id": session_key(session_id)})

    def tenants(self) -> list[str]:
        """Every tenant of the registry, sorted."""
        return sorted(d["_id"] for d in self.db[REGISTRY].find({}, {"_id": 1}))


def describe(documents: list[dict]) -> Iterator[str]:
    """`tenant token list` lines: id, kind, created, expires, state."""
    now = _now()
    yield f"{'ID':<14} {'KIND':<9} {'CREATED (UTC)':<20} {'EXPIRES (UTC)':<20} STATE"
    for d in documents:
        state = ("revoked" if d["revoked_at"] is not None else "expired" if d["expires_at"] <= now else "live")
        yield (f"{d['_id']:<14} {'operator' if d['operator'] else 'tenant':<9} {d['created_at']:%Y-%m-%d %H:%M:%S}  "
               f"{d['expires_at']:%Y-%m-%d %H:%M:%S}  {state}")
