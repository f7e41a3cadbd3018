"""Tenant and asset metadata in MongoDB (FerretDB on the local stack): upserts, reads, refresh.

Metadata changes far more often than it grows: thresholds and limits are tuned
again and again, new assets are rare. So every document's `_id` is its key
(`<tenant>` for tenants, `<tenant>/<id>` for elements and sensors) and an upsert
is a primary-key lookup; the secondary indexes serve only the reads jobs make.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, MongoClient, UpdateOne
from pymongo.errors import ConnectionFailure

from operators.periods import DEFAULT_ZONE, PeriodError, check_zone
from pipeline.errors import ConnectorError
from schemas.assets import Assets, Element, Sensor, Tenant, check_references

# Per collection, the indexes besides `_id`. Sensors by (tenant, element) also serves sensors by tenant
# (its prefix), so no second index slows down every sensor write. `updated_at` serves the periodic refresh.
_UPDATED_AT = IndexModel([("updated_at", ASCENDING)], name="updated_at")
INDEXES: dict[str, list[IndexModel]] = {
    "tenants": [_UPDATED_AT],
    "elements": [IndexModel([("tenant", ASCENDING)], name="tenant"), _UPDATED_AT],
    "sensors": [IndexModel([("tenant", ASCENDING), ("element", ASCENDING)], name="tenant_element"), _UPDATED_AT],
}
_BOOKKEEPING = {"_id": 0, "version": 0, "updated_at": 0}


class MetadataUnavailableError(ConnectorError):
    """The metadata server did not answer."""

    hint = "; start the local servers with `tenantstream stack up`, or name another with --mongo-uri"


@dataclass(frozen=True)
class LoadReport:
    inserted: int
    updated: int
    unchanged: int

    def __str__(self) -> str:
        return f"{self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged"


@dataclass(frozen=True)
class Change:
    """One document written after a given time: enough for a job to decide what to refresh."""

    collection: str
    key: str
    tenant: str
    version: int
    updated_at: datetime


class MetadataStore:
    """Tenants, elements and sensors in one database, loaded by upsert and read by tenant.

    Running jobs learn about changed thresholds and limits by periodic refresh: they
    poll `changed_since(latest updated_at they saw)` and re-read `thresholds(tenant)`
    when something of their tenant changed. Not change streams: those need a MongoDB
    replica set, and FerretDB (the stack's MongoDB-protocol server) provides none.
    Every written document carries `updated_at` (the load's time, UTC, milliseconds)
    and a `version` raised only when its content changed, so an unchanged reload
    wakes no job.
    """

    def __init__(self, uri: str, database: str = "tenantstream", timeout: float = 5.0) -> None:
        self.uri = uri
        self.client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=int(timeout * 1000), tz_aware=True)
        self.db = self.client[database]
        try:
            self.client.admin.command("ping")
            for collection, indexes in INDEXES.items():
                for index in indexes:
                    # One per command: FerretDB 1.24 panics on a createIndexes naming two indexes that
                    # already exist (it deletes from its list of new indexes at a stale position).
                    self.db[collection].create_indexes([index])
        except ConnectionFailure as err:
            self.client.close()
            # pymongo appends its timeouts and whole topology to the reason; the reason is enough here.
            reason = str(err).split(" (configured timeouts")[0].split(", Timeout:")[0]
            raise MetadataUnavailableError(f"no answer from MongoDB at {uri} (waited up to {timeout:g} s): "
                                           f"{reason}") from err

    @property
    def database(self) -> str:
        """The name of the store's database."""
        return self.db.name

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def load(self, assets: Assets) -> LoadReport:
        """Upsert every record of `assets`; write only those that are new or differ from the stored ones.

        References the file leaves to the store are checked first (AssetError, nothing written). Records
        are compared with what is stored rather than written blindly, because only a changed record may
        raise its version and updated_at. Concurrent loads of the same record: the last one wins.
        """
        self._check_references(assets)
        at = _now()
        inserted = updated = unchanged = 0
        for collection, records in (("tenants", assets.tenants), ("elements", assets.elements),
                                    ("sensors", assets.sensors)):
            if not records:
                continue
            stored = {d["_id"]: d for d in self.db[collection].find({"_id": {"$in": [r.key for r in records]}})}
            writes = []
            for record in records:
                document = record.document()
                old = stored.get(record.key)
                if old is None:
                    inserted += 1
                elif any(old.get(k) != v for k, v in document.items()):
                    updated += 1
                else:
                    unchanged += 1
                    continue
                writes.append(UpdateOne({"_id": record.key},
                                        {"$set": {**document, "updated_at": at}, "$inc": {"version": 1}},
                                        upsert=True))
            if writes:
                self.db[collection].bulk_write(writes, ordered=False)
        return LoadReport(inserted, updated, unchanged)

    def _check_references(self, assets: Assets) -> None:
        existing = {}
        for collection in {r.collection for r in assets.references}:
            keys = [r.key for r in assets.references if r.collection == collection]
            existing[collection] = {d["_id"] for d in self.db[collection].find({"_id": {"$in": keys}}, {"_id": 1})}
        check_references(assets, existing)

    def tenants(self) -> list[Tenant]:
        return [Tenant.from_document(d) for d in self.db.tenants.find({}, _BOOKKEEPING).sort("_id")]

    def elements(self, tenant: str) -> list[Element]:
        return [Element.from_document(d) for d in self.db.elements.find({"tenant": tenant}, _BOOKKEEPING)
                .sort("_id")]

    def sensors(self, tenant: str) -> list[Sensor]:
        return [Sensor.from_document(d) for d in self.db.sensors.find({"tenant": tenant}, _BOOKKEEPING)
                .sort("_id")]

    def assets(self, tenants: Sequence[str]) -> Assets:
        """The stored records of `tenants`, as an asset file would hold them (what a job is planned with).
        LookupError names a tenant the store does not know."""
        known = {t.id: t for t in self.tenants()}
        unknown = [t for t in tenants if t not in known]
        if unknown:
            raise LookupError(f"no tenant {', '.join(unknown)} in the metadata store; load it with "
                              "`tenantstream assets load FILE`")
        return Assets(f"metadata store {self.db.name}", tuple(known[t] for t in tenants),
                      tuple(e for t in tenants for e in self.elements(t)),
                      tuple(s for t in tenants for s in self.sensors(t)))

    def thresholds(self, tenant: str) -> dict[str, Any]:
        """What a running job of `tenant` alerts on, read whole so a refresh simply replaces its copy.

        {"tenant": {alarm_rate_threshold, flow_breach_threshold, silence_minutes},
         "limits": {element id: {min and/or max}}, "thresholds": {sensor id: {min and/or max}}};
        elements and sensors without limits or thresholds are left out. LookupError for an unknown tenant.
        """
        doc = self.db.tenants.find_one({"_id": tenant}, _BOOKKEEPING)
        if doc is None:
            raise LookupError(f"no tenant {tenant!r} in the metadata store; load it with "
                              "`tenantstream assets load FILE`")
        return {
            "tenant": {k: doc[k] for k in ("alarm_rate_threshold", "flow_breach_threshold", "silence_minutes")},
            "limits": _bounds(self.db.elements.find({"tenant": tenant}, {"id": 1, "limits": 1}), "limits"),
            "thresholds": _bounds(self.db.sensors.find({"tenant": tenant}, {"id": 1, "thresholds": 1}),
                                  "thresholds"),
        }

    def timezone(self, tenant: str) -> str:
        """The IANA time zone of the tenant's rollup periods (its document's `timezone`); UTC when it has none or
        the store has no such tenant. A stored name that is not a known zone is a PeriodError naming the tenant."""
        doc = self.db.tenants.find_one({"_id": tenant}, {"timezone": 1}) or {}
        zone = doc.get("timezone")
        if zone is None:
            return DEFAULT_ZONE
        try:
            return check_zone(zone)
        except PeriodError as err:
            raise PeriodError(f"tenant {tenant} in the metadata store: {err}; set its timezone in the asset file "
                              "and load it again") from None

    def changed_since(self, timestamp: datetime) -> list[Change]:
        """Documents written after `timestamp` (aware, UTC), oldest first.

        Pass the latest `updated_at` seen so far. Load times come from the loaders' clocks, so a refresher
        that must not miss a load racing its poll should pass that time minus a few seconds: seeing a
        change twice is harmless, as re-reading thresholds is idempotent.
        """
        changes = []
        for collection in INDEXES:
            for d in self.db[collection].find({"updated_at": {"$gt": timestamp}},
                                              {"tenant": 1, "version": 1, "updated_at": 1}):
                changes.append(Change(collection, d["_id"], d.get("tenant", d["_id"]), d["version"],
                                      d["updated_at"]))
        return sorted(changes, key=lambda c: (c.updated_at, c.collection, c.key))


def _bounds(documents: Iterable[dict[str, Any]], field: str) -> dict[str, dict[str, float]]:
    return {d["id"]: d[field] for d in documents if d.get(field)}


def _now() -> datetime:
    """Now in UTC at BSON's millisecond precision, so the time written is the time read back."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
