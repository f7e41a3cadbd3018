"""`tenant create | delete | list`: the one tenant registry, with each tenant's Kafka principal.

Creating a tenant makes its topics (a tenant's principal may create none), its principal with
prefixed ACLs (connectors.kafka_access), its metadata document if it has none yet, and a registry
entry in the metadata store; the password is printed once and kept nowhere but as the broker's salted
SCRAM hash. Deleting a tenant removes its ACLs and registry entry and revokes its password
(kafka_access.delete_principal): its credentials stop working at once, while its topics, rows and metadata
stay for the operator to remove.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from connectors import kafka_access
from connectors.kafka import ensure_topics
from connectors.metadata import MetadataStore
from pipeline.sql import Login
from stack.config import StackConfig, load_config
from submit.arguments import CommandError, Name

if TYPE_CHECKING:
    from dashboard.tokens import TokenStore

REGISTRY = "registry"
TENANT_TOPICS = ("sensors.alarms", "sensors.flow", "sensors.heartbeats", "deadletter", "late", "alerts")
# A new tenant's alert thresholds: shares of 1 are never passed, so it raises no alert until `assets load`
# gives it its own.
NO_ALERTS = {"alarm_rate_threshold": 1.0, "flow_breach_threshold": 1.0, "silence_minutes": 10}


def _store(args: argparse.Namespace) -> MetadataStore:
    return MetadataStore(args.mongo_uri or load_config().ferretdb.uri, args.database)


def register(cfg: StackConfig, store: MetadataStore, tenant: str) -> Login:
    """Make a new tenant's topics, principal, metadata document (unless it has one) and registry entry."""
    ensure_topics(cfg.kafka.bootstrap, [f"{tenant}.{t}" for t in TENANT_TOPICS], partitions=cfg.kafka.partitions)
    login = kafka_access.create_tenant(cfg.kafka.bootstrap, tenant)
    at = datetime.now(UTC)
    store.db.tenants.update_one({"_id": tenant}, {"$setOnInsert": {"id": tenant, "name": tenant, **NO_ALERTS,
                                                                    "updated_at": at, "version": 1}}, upsert=True)
    store.db[REGISTRY].insert_one({"_id": tenant, "principal": login.username, "created_at": at})
    return login


def create(args: argparse.Namespace) -> int:
    cfg = load_config()
    tenant = args.tenant
    with _store(args) as store:
        if store.db[REGISTRY].find_one({"_id": tenant}):
            raise CommandError(f"tenant {tenant} exists; `tenant delete {tenant}` first to issue new credentials")
        login = register(cfg, store, tenant)
    print(f"tenant {tenant} created: Kafka principal User:{login.username} (SASL SCRAM-SHA-512 at "
          f"{cfg.kafka.bootstrap}); it writes {tenant}.sensors.*, reads {tenant}.results.*, {tenant}.alerts, "
          f"{tenant}.deadletter and {tenant}.late, with consumer groups named {tenant}.*")
    print(f"username: {login.username}")
    print(f"password: {login.password}")
    print("the password is shown this once: only its salted hash is kept")
    return 0


def delete(args: argparse.Namespace) -> int:
    cfg = load_config()
    tenant = args.tenant
    with _store(args) as store:
        entry = store.db[REGISTRY].find_one({"_id": tenant})
        if entry is None:
            raise CommandError(f"no tenant {tenant} in the registry (`tenant list` shows them)")
        removed = kafka_access.delete_principal(cfg.kafka.bootstrap, entry["principal"])
        _tokens(store).revoke_tenant(tenant)
        store.db[REGISTRY].delete_one({"_id": tenant})
    print(f"tenant {tenant} deleted: {removed} ACLs of User:{entry['principal']} removed, its password and "
          "dashboard tokens revoked; its topics, result rows and metadata are kept")
    return 0


def list_(args: argparse.Namespace) -> int:
    cfg = load_config()
    with _store(args) as store:
        entries = list(store.db[REGISTRY].find().sort("_id"))
    if not entries:
        print("no tenants in the registry; `tenant create T` makes one")
        return 0
    known = set(kafka_access.principals(cfg.kafka.bootstrap))
    print(f"{'TENANT':<24} {'PRINCIPAL':<32} {'CREATED (UTC)':<20} KAFKA")
    for e in entries:
        state = "ok" if e["principal"] in known else "no credential on the broker"
        print(f"{e['_id']:<24} {'User:' + e['principal']:<32} {e['created_at']:%Y-%m-%d %H:%M:%S}  {state}")
    return 0


def _tokens(store: MetadataStore) -> TokenStore:
    from dashboard.tokens import TokenStore  # here: dashboard.tokens imports this module's REGISTRY

    return TokenStore(store.db)


def token_create(args: argparse.Namespace) -> int:
    from dashboard.tokens import TokenError, parse_duration

    try:
        with _store(args) as store:
            document, token = _tokens(store).create(args.tenant, args.operator, parse_duration(args.expires))
    except TokenError as err:
        raise CommandError(str(err)) from None
    kind = "operator token (sees every tenant)" if args.operator else "token"
    print(f"{kind} {document['_id']} of tenant {args.tenant}, expires {document['expires_at']:%Y-%m-%d %H:%M:%S} UTC")
    print(f"token: {token}")
    print("the token is shown this once: only its salted hash is kept; log in to the dashboard with it")
    return 0


def token_list(args: argparse.Namespace) -> int:
    from dashboard.tokens import describe

    with _store(args) as store:
        if store.db[REGISTRY].find_one({"_id": args.tenant}) is None:
            raise CommandError(f"no tenant {args.tenant} in the registry (`tenant list` shows them)")
        documents = _tokens(store).list(args.tenant)
    if not documents:
        print(f"tenant {args.tenant} has no dashboard tokens; `tenant token create {args.tenant}` makes one")
        return 0
    for line in describe(documents):
        print(line)
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    from dashboard.tokens import TokenError

    try:
        with _store(args) as store:
            document = _tokens(store).revoke(args.id)
    except TokenError as err:
        raise CommandError(str(err)) from None
    print(f"token {args.id} of tenant {document['tenant']} revoked: its sessions end now")
    return 0


def _add_token_commands(actions: argparse._SubParsersAction) -> None:
    """`tenant token create | list | revoke`: the dashboard's logins of a tenant."""
    from submit.arguments import Matching

    token = actions.add_parser("token", help="dashboard login tokens of a tenant: create, list, revoke",
                               description="Dashboard login tokens of a tenant: create, list, revoke.")
    commands = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create_ = commands.add_parser("create", help="make a token of a tenant; prints it once",
                                  description="Make a dashboard token of a tenant; prints it once.")
    create_.add_argument("tenant", type=Name(), metavar="TENANT", help="the tenant it logs in as")
    create_.add_argument("--operator", action="store_true", help="an operator's token: sees every tenant")
    create_.add_argument("--expires", default="30d", metavar="DURATION",
                         help="how long it lives: 45s, 90m, 12h or 30d (default 30d, at most 366d)")
    list_tokens = commands.add_parser("list", help="a tenant's tokens: id, kind, expiry, state",
                                      description="A tenant's dashboard tokens: id, kind, expiry, state.")
    list_tokens.add_argument("tenant", type=Name(), metavar="TENANT", help="the tenant's name")
    revoke = commands.add_parser("revoke", help="revoke a token by id: its sessions end at once",
                                 description="Revoke a dashboard token by id: its sessions end at once.")
    revoke.add_argument("id", type=Matching("token id", re.compile(r"[0-9a-f]{12}"), "12 hex digits"),
                        metavar="ID", help="the token's id (`tenant token list TENANT`)")
    for parser, func in ((create_, token_create), (list_tokens, token_list), (revoke, token_revoke)):
        parser.add_argument("--mongo-uri", help="the metadata store (default: the local stack's FerretDB)")
        parser.add_argument("--database", type=Name("database"), default="tenantstream",
                            help="the metadata database (default tenantstream)")
        parser.set_defaults(func=func)


def add_commands(actions: argparse._SubParsersAction) -> None:
    """`tenant create`, `tenant delete` and `tenant list` under the `tenant` command."""
    for name, func, text in (
            ("create", create, "register a tenant: its topics, Kafka principal and ACLs, metadata document; "
                               "prints its password once"),
            ("delete", delete, "remove a tenant's Kafka principal and ACLs: its credentials stop working"),
            ("list", list_, "the registered tenants and whether the broker knows their principal")):
        parser = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        if name != "list":
            parser.add_argument("tenant", type=Name(), metavar="TENANT", help="the tenant's name")
        parser.add_argument("--mongo-uri", help="the metadata store (default: the local stack's FerretDB)")
        parser.add_argument("--database", type=Name("database"), default="tenantstream",
                            help="the metadata database (default tenantstream)")
        parser.set_defaults(func=func)
    _add_token_commands(actions)
