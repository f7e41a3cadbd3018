"""`tenant create | delete | list`: the one tenant registry, with each tenant's Kafka principal.

Creating a tenant makes its topics (a tenant's principal may create none), its principal with
prefixed ACLs (connectors.kafka_access), its metadata document if it has none yet, and a registry
entry in the metadata store; the password is printed once and kept nowhere but as the broker's salted
SCRAM hash. Deleting a tenant removes its principal, its ACLs and its registry entry: its credentials
stop working at once, while its topics, rows and metadata stay for the operator to remove.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from connectors import kafka_access
from connectors.kafka import ensure_topics
from connectors.metadata import MetadataStore
from stack.config import load_config
from submit.arguments import CommandError, Name

REGISTRY = "registry"
TENANT_TOPICS = ("sensors.alarms", "sensors.flow", "sensors.heartbeats", "deadletter", "late", "alerts")
# A new tenant's alert thresholds: shares of 1 are never passed, so it raises no alert until `assets load`
# gives it its own.
NO_ALERTS = {"alarm_rate_threshold": 1.0, "flow_breach_threshold": 1.0, "silence_minutes": 10}


def _store(args: argparse.Namespace) -> MetadataStore:
    return MetadataStore(args.mongo_uri or load_config().ferretdb.uri, args.database)


def create(args: argparse.Namespace) -> int:
    cfg = load_config()
    tenant = args.tenant
    with _store(args) as store:
        if store.db[REGISTRY].find_one({"_id": tenant}):
            raise CommandError(f"tenant {tenant} exists; `tenant delete {tenant}` first to issue new credentials")
        ensure_topics(cfg.kafka.bootstrap, [f"{tenant}.{t}" for t in TENANT_TOPICS], partitions=cfg.kafka.partitions)
        login = kafka_access.create_tenant(cfg.kafka.bootstrap, tenant)
        at = datetime.now(UTC)
        store.db.tenants.update_one({"_id": tenant}, {"$setOnInsert": {"id": tenant, "name": tenant, **NO_ALERTS,
                                                                        "updated_at": at, "version": 1}}, upsert=True)
        store.db[REGISTRY].insert_one({"_id": tenant, "principal": login.username, "created_at": at})
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
        store.db[REGISTRY].delete_one({"_id": tenant})
    print(f"tenant {tenant} deleted: principal User:{entry['principal']} and its {removed} ACLs removed; its "
          "topics, result rows and metadata are kept")
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
