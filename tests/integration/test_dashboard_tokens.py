"""`tenantstream tenant token create | list | revoke` against the stack's FerretDB: the token is printed once and
stored only as a salted hash, it lives until revoked or expired, and bad input ends in one line, exit 2."""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta

import pytest

from dashboard.tokens import TOKENS, TokenStore
from tests.dashboard_server import CLI, ROOT, register

TOKEN = re.compile(r"^token: (tst_[0-9a-f]{12}_[A-Za-z0-9_-]{43})$", re.MULTILINE)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_a_token_is_printed_once_stored_hashed_listed_and_revoked(stack, store, unique):
    tenant = f"t{unique}"
    register(store, tenant)
    made = cli("tenant", "token", "create", tenant, "--expires", "2h", "--database", store.db.name)
    assert made.returncode == 0, made.stderr
    token = TOKEN.search(made.stdout)[1]
    ident = token.split("_")[1]
    (document,) = store.db[TOKENS].find({"tenant": tenant})
    assert document["_id"] == ident and token not in str(document) and token.split("_")[2] not in str(document)
    tokens = TokenStore(store.db)
    assert tokens.verify(token).tenant == tenant and tokens.verify(token[:-1] + "x") is None
    listed = cli("tenant", "token", "list", tenant, "--database", store.db.name)
    assert listed.returncode == 0 and ident in listed.stdout and "live" in listed.stdout
    assert token not in listed.stdout
    revoked = cli("tenant", "token", "revoke", ident, "--database", store.db.name)
    assert revoked.returncode == 0 and tokens.verify(token) is None
    assert "revoked" in cli("tenant", "token", "list", tenant, "--database", store.db.name).stdout
    others = [tokens.create(tenant, False, timedelta(hours=1))[1] for _ in range(2)]
    assert tokens.revoke_tenant(tenant) == 2  # what `tenant delete` does to its tokens
    assert [tokens.verify(t) for t in others] == [None, None]


@pytest.mark.parametrize(("args", "says"), [
    (["tenant", "token", "create", "nosuch{u}"], "no tenant nosuch"),
    (["tenant", "token", "create", "t{u}", "--expires", "5y"], "--expires takes"),
    (["tenant", "token", "create", "t{u}", "--expires", "999d"], "longer than 366 days"),
    (["tenant", "token", "create", "../etc"], "tenant"),
    (["tenant", "token", "revoke", "0123456789ab"], "no token 0123456789ab"),
    (["tenant", "token", "revoke", "x' OR '1'='1"], "is not 12 hex digits"),
    (["tenant", "token", "list", "nosuch{u}"], "no tenant nosuch"),
    (["serve", "--port", "0"], "port"),
    (["serve", "--tenants-matching", "("], "not a regular expression"),
])
def test_bad_token_and_serve_input_is_one_line_and_exit_2(stack, store, unique, args, says):
    register(store, f"t{unique}")
    database = [] if args[0] == "serve" else ["--database", store.db.name]
    done = cli(*[a.replace("{u}", unique) for a in args], *database)
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""
