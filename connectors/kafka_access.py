"""Kafka principals and their ACLs: one per tenant and one per job, each allowed only its own resources.

The broker refuses any principal without an ACL (allow.everyone.if.no.acl.found=false), so what is
listed here is all a principal may do. Tenant names hold no '.', so the prefix `<tenant>.` never
reaches another tenant's topics (`acme.` is not a prefix of `acmex.sensors.alarms`).

- A tenant (`User:tenant-<t>`) writes its sensor topics, reads its results, alerts, dead letters and
  late records, and uses consumer groups named `<t>.<anything>`. It creates no topic.
- A job (`User:job-<name>-<digest>`) reads its tenants' sensor topics of its stream, writes and reads
  their results, dead-letter, late and alerts topics, uses its consumer group (and `<group>.<anything>`,
  its writers'), and its transactional ids `<job's prefix>.<anything>`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from connectors import credentials
from connectors.kafka import admin_client
from pipeline.errors import ConnectorError
from pipeline.job import Job, RunSettings
from pipeline.sql import Login

TENANT_PRINCIPAL = "tenant-"
JOB_PRINCIPAL = "job-"
SCRAM_ITERATIONS = 8192
_OPS = {"read": AclOperation.READ, "write": AclOperation.WRITE, "describe": AclOperation.DESCRIBE}
_KINDS = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "transactional_id": ResourceType.TRANSACTIONAL_ID}


class AccessError(ConnectorError):
    """The broker refused or failed a change of principals or ACLs; the message says which."""


@dataclass(frozen=True)
class Grant:
    """`operation` on the `kind` resource(s) named `name`, or every name starting with it when `prefixed`."""

    kind: str  # topic, group or transactional_id
    name: str
    operation: str  # read, write or describe
    prefixed: bool = False

    def binding(self, principal: str) -> AclBinding:
        pattern = ResourcePatternType.PREFIXED if self.prefixed else ResourcePatternType.LITERAL
        return AclBinding(_KINDS[self.kind], self.name, pattern, f"User:{principal}", "*", _OPS[self.operation],
                          AclPermissionType.ALLOW)


def tenant_principal(tenant: str) -> str:
    return f"{TENANT_PRINCIPAL}{tenant}"


def tenant_grants(tenant: str) -> list[Grant]:
    """What a tenant's own clients may do: produce sensor data, consume what the platform made of it."""
    t = f"{tenant}."
    return [Grant("topic", f"{t}sensors.", "write", True), Grant("topic", f"{t}sensors.", "describe", True),
            Grant("topic", f"{t}results.", "read", True),
            *(Grant("topic", f"{t}{name}", "read") for name in ("alerts", "deadletter", "late")),
            Grant("group", t, "read", True)]


def job_principal(job: str, tenants: Sequence[str], group: str) -> str:
    """A job's principal: its name and a digest of its tenants and consumer group (one per job instance)."""
    digest = hashlib.sha256("\n".join([job, *tenants, group]).encode()).hexdigest()[:16]
    return f"{JOB_PRINCIPAL}{job}-{digest}"


def job_grants(tenants: Sequence[str], stream: str, group: str, transactional_prefix: str) -> list[Grant]:
    """What a job may do: read its tenants' `stream`, write their results and diverted records, its group
    and its transactions. `transactional_prefix` is the part every transactional id of the job starts with."""
    grants = []
    for tenant in tenants:
        t = f"{tenant}."
        grants += [Grant("topic", f"{t}sensors.{stream}", "read") if stream else None,
                   Grant("topic", f"{t}results.", "write", True), Grant("topic", f"{t}results.", "read", True),
                   *(Grant("topic", f"{t}{name}", op) for name in ("deadletter", "late", "alerts")
                     for op in ("write", "read"))]
    grants += [Grant("group", group, "read"), Grant("group", f"{group}.", "read", True),
               Grant("transactional_id", transactional_prefix, "write", True),
               Grant("transactional_id", transactional_prefix, "describe", True)]
    return [g for g in grants if g is not None]


def ensure_principal(bootstrap: str, principal: str, password: str, grants: Iterable[Grant]) -> None:
    """Upsert the principal's SCRAM credential (the broker keeps a salted hash) and add its grants."""
    admin = admin_client(bootstrap)
    _set_password(admin, principal, password)
    bindings = [g.binding(principal) for g in grants]
    _settle(admin.create_acls(bindings, request_timeout=30), f"add the ACLs of {principal}")


def _set_password(admin: AdminClient, principal: str, password: str) -> None:
    upsert = UserScramCredentialUpsertion(principal, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512,
                                                                         SCRAM_ITERATIONS), password.encode())
    _settle(admin.alter_user_scram_credentials([upsert]), f"set the SCRAM credential of {principal}")


def authorize_job(bootstrap: str, job: str, tenants: Sequence[str], stream: str, group: str,
                  transactional_prefix: str) -> Login | None:
    """Make the job's principal with its grants (idempotent) and return its login (derived, not stored)."""
    return _derived_principal(bootstrap, job_principal(job, tenants, group),
                              job_grants(tenants, stream, group, transactional_prefix))


def authorized(job: Job, settings: RunSettings) -> RunSettings:
    """`settings` with the job's own Kafka principal, which may touch only its tenants' topics, its consumer
    group and its transactional ids (made with those ACLs on first use); `settings` as they are if they name a
    login already."""
    if settings.kafka_login is not None:
        return settings
    login = authorize_job(settings.bootstrap, job.name, job.tenants, job.stream, settings.group_id or job.default_group,
                          job.transactional_prefix(""))
    return dataclasses.replace(settings, kafka_login=login)


def _derived_principal(bootstrap: str, principal: str, grants: Sequence[Grant]) -> Login | None:
    """Ensure `principal`, whose password is derived from the credentials' secret, with `grants`; its login,
    or None on a broker without authentication."""
    configured = credentials.current()
    if configured.kafka_admin is None:
        return None
    login = configured.job_login(principal)
    ensure_principal(bootstrap, principal, login.password, grants)
    return login


DASHBOARD_PRINCIPAL = "dashboard"
DASHBOARD_GROUPS = "tenantstream-dashboard."


def authorize_dashboard(bootstrap: str) -> Login | None:
    """The dashboard server's principal (idempotent): it reads every topic and writes none; it assigns
    partitions itself, but its client still looks up the coordinator of its group `tenantstream-dashboard.*`.
    Its login is derived, not stored. (ACLs cannot say "every tenant's results, alerts, dead letters and
    late records", so it may read sensor topics too.)"""
    return _derived_principal(bootstrap, DASHBOARD_PRINCIPAL,
                              [Grant("topic", "*", "read"), Grant("group", DASHBOARD_GROUPS, "read", True)])


def create_tenant(bootstrap: str, tenant: str) -> Login:
    """A tenant's principal with a new random password (shown once; the broker keeps only its hash)."""
    login = Login(tenant_principal(tenant), secrets.token_urlsafe(24))
    ensure_principal(bootstrap, login.username, login.password, tenant_grants(tenant))
    return login


def delete_principal(bootstrap: str, principal: str) -> int:
    """Remove every ACL naming the principal and revoke its password; the count of ACLs removed.

    The password is revoked by overwriting the SCRAM credential with a random secret nobody holds, not
    by deleting it: Kafka 4.1's broker replays its metadata log at start-up into one ScramDelta, whose
    apply() drops the whole mechanism when a removal empties it and then files the remaining users into
    the dropped map, so a broker restart after any deletion could forget every tenant's credential."""
    admin = admin_client(bootstrap)
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, f"User:{principal}", None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    removed = _settle(admin.delete_acls([everything], request_timeout=30), f"delete the ACLs of {principal}")
    _set_password(admin, principal, secrets.token_urlsafe(32))
    return sum(len(found) for found in removed.values())


def principals(bootstrap: str) -> list[str]:
    """Every SCRAM user the broker knows, sorted."""
    admin = admin_client(bootstrap)  # held until the answer came: a client collected early fails its futures
    (users,) = _settle(admin.describe_user_scram_credentials(), "list the SCRAM users")
    return sorted(users)


def acl_principals(bootstrap: str, resource_contains: str) -> list[str]:
    """The principals of every ACL on a resource whose name contains `resource_contains` (for clean-up)."""
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                                  AclPermissionType.ANY)
    admin = admin_client(bootstrap)
    (bindings,) = _settle(admin.describe_acls(everything, request_timeout=30), "list the ACLs")
    return sorted({b.principal.removeprefix("User:") for b in bindings if resource_contains in b.name})


def _settle(futures: object, what: str) -> list:
    """The results of a future or a dict of futures; AccessError naming `what` on the first failure."""
    pending = futures.values() if isinstance(futures, dict) else futures if isinstance(futures, list) else [futures]
    try:
        results = [f.result() for f in pending]
    except KafkaException as err:
        raise AccessError(f"could not {what}: {err.args[0].str() if err.args else err}") from None
    return results if not isinstance(futures, dict) else dict(zip(futures, results, strict=True))
