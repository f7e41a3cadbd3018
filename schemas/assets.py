"""Tenant and asset metadata: the record shapes and their validation, without I/O.

An asset file (YAML or JSON) has three lists: `tenants`, `elements` (pumps,
pipes, basins, valves, base stations, ships) and `sensors`. `parse_assets`
checks a whole file and reports every problem at once, each with its path
(`sensors[3].kind: ...`), because a file is written by hand and fixed in one go.

Cross-references: an element's tenant and a sensor's element may be in the same
file or already in the store, since most loads update a few thresholds and need
not repeat the tenants and elements they hang on. `parse_assets` resolves what
it can inside the file and lists the rest in `Assets.references`; the store
looks those up and `check_references` reports the ones found nowhere.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Hashable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

import yaml

from operators.periods import PeriodError, check_zone
from pipeline.errors import SchemaError
from schemas.names import NAME

ELEMENT_TYPES = ("pump", "pipe", "basin", "valve", "base_station", "ship")
# The kind decides the window aggregate (DESIGN.md), so the unit must be one that aggregate makes sense of:
# volumes and counts are summed, rates and states averaged, counters and power feed the energy in kWh.
UNITS: dict[str, tuple[str, ...]] = {
    "additive": ("m3", "l", "mm", "count"),
    "non_additive": ("m3/h", "l/s", "bar", "m", "degC", "pH", "%"),
    "energy_counter": ("kWh",),
    "power": ("kW",),
}
KINDS = tuple(UNITS)
# Tenants name Kafka topics (<tenant>.sensors.<stream>); ids are joined as "<tenant>/<id>" in the store.
TENANT_ID = NAME
ASSET_ID = re.compile(r"[A-Za-z0-9_.:-]+")


@dataclass(frozen=True)
class Problem:
    path: str  # where in the file, e.g. "sensors[3].kind"; empty for the file as a whole
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class AssetError(SchemaError):
    """An asset file was rejected; `problems` lists every reason with its path."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source, self.problems = source, problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{source}: {count}\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class Range:
    """Limits or thresholds: either bound may be open, never min above max."""

    min: float | None = None
    max: float | None = None

    def document(self) -> dict[str, float]:
        return {k: v for k, v in (("min", self.min), ("max", self.max)) if v is not None}

    @staticmethod
    def from_document(doc: Mapping[str, float] | None) -> Range | None:
        return None if doc is None else Range(doc.get("min"), doc.get("max"))


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float


@dataclass(frozen=True)
class Tenant:
    """A tenant and the thresholds its jobs alert on."""

    id: str
    name: str
    alarm_rate_threshold: float  # share of fired alarm events in a window, 0..1
    flow_breach_threshold: float  # share of an element's readings outside its limits in a window, 0..1
    silence_minutes: int = 10  # a sensor without a heartbeat this long counts as silent
    timezone: str | None = None  # IANA zone of rollups' local days, weeks, months (operators/periods.py); None: UTC

    @property
    def key(self) -> str:
        return self.id

    def document(self) -> dict[str, Any]:
        """Its fields; without a time zone, none (so a tenant stored before there were zones reads unchanged)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "timezone" or self.timezone}

    @staticmethod
    def from_document(doc: Mapping[str, Any]) -> Tenant:
        return Tenant(**{f.name: doc[f.name] for f in fields(Tenant) if f.name != "timezone"},
                      timezone=doc.get("timezone"))


@dataclass(frozen=True)
class _TenantOwned:
    tenant: str
    id: str  # unique within the tenant

    @property
    def key(self) -> str:
        """The store's `_id`: ids are unique per tenant only."""
        return f"{self.tenant}/{self.id}"


@dataclass(frozen=True)
class Element(_TenantOwned):
    """A physical asset of a tenant's network: where it is, since when, and its operating limits."""

    type: str
    installed: date
    location: Location
    limits: Range | None = None

    def document(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "id": self.id, "type": self.type, "installed": self.installed.isoformat(),
                "location": {"lat": self.location.lat, "lon": self.location.lon},
                "limits": self.limits.document() if self.limits else None}

    @staticmethod
    def from_document(doc: Mapping[str, Any]) -> Element:
        return Element(doc["tenant"], doc["id"], doc["type"], date.fromisoformat(doc["installed"]),
                       Location(**doc["location"]), Range.from_document(doc.get("limits")))


@dataclass(frozen=True)
class Sensor(_TenantOwned):
    """A measured parameter of an element; its kind decides how windows aggregate it."""

    element: str
    kind: str
    unit: str
    thresholds: Range | None = None

    def document(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "id": self.id, "element": self.element, "kind": self.kind,
                "unit": self.unit, "thresholds": self.thresholds.document() if self.thresholds else None}

    @staticmethod
    def from_document(doc: Mapping[str, Any]) -> Sensor:
        return Sensor(doc["tenant"], doc["id"], doc["element"], doc["kind"], doc["unit"],
                      Range.from_document(doc.get("thresholds")))


@dataclass(frozen=True)
class Reference:
    """A record the file points at but does not contain: it must already be in the store."""

    path: str
    collection: str  # "tenants" or "elements"
    key: str
    what: str  # how to name it in an error


@dataclass(frozen=True)
class Assets:
    """The records of one asset file, and what they need from the store."""

    source: str
    tenants: tuple[Tenant, ...] = ()
    elements: tuple[Element, ...] = ()
    sensors: tuple[Sensor, ...] = ()
    references: tuple[Reference, ...] = ()

    def document(self) -> dict[str, list[dict[str, Any]]]:
        """The file shape again: what `parse_assets` reads back into the same records."""
        return {name: [r.document() for r in getattr(self, name)] for name in ("tenants", "elements", "sensors")}


# --- reading a file's text --------------------------------------------------------------------------------------

class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a key written twice is an error rather than the last one winning."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the safe loader itself rejects it
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen.add(key)
    return dict(pairs)


def parse_document(text: str, source: str) -> Any:
    """The YAML (.yaml, .yml) or JSON (.json) document in `text`, by the extension of `source`."""
    suffix = source.rsplit(".", 1)[-1].lower() if "." in source else ""
    if suffix == "json":
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except json.JSONDecodeError as err:
            raise AssetError(source, [Problem(f"line {err.lineno}, column {err.colno}", err.msg)]) from None
        except ValueError as err:
            raise AssetError(source, [Problem("", str(err))]) from None
    if suffix in ("yaml", "yml"):
        try:
            return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: builds plain data only
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise AssetError(source, [Problem(where, err.problem or str(err))]) from None
        except yaml.YAMLError as err:
            raise AssetError(source, [Problem("", str(err))]) from None
    raise AssetError(source, [Problem("", "name a .yaml, .yml or .json file")])


# --- validation -------------------------------------------------------------------------------------------------

_INVALID = object()
# A field parser turns a raw value into a checked one, or appends problems and returns _INVALID.
Parser = Callable[[Any, str, list[Problem]], Any]


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _fail(problems: list[Problem], path: str, message: str) -> object:
    problems.append(Problem(path, message))
    return _INVALID


def _identifier(pattern: re.Pattern[str], what: str) -> Parser:
    def parse(value: Any, path: str, problems: list[Problem]) -> Any:
        if not isinstance(value, str):
            hint = " (quote it in YAML)" if isinstance(value, int | float) and not isinstance(value, bool) else ""
            return _fail(problems, path, f"expected text, not {_describe(value)}{hint}")
        if not pattern.fullmatch(value):
            return _fail(problems, path, f"{value!r} is not a valid id: use {what}")
        return value
    return parse


def _text(value: Any, path: str, problems: list[Problem]) -> Any:
    if not isinstance(value, str) or not value.strip():
        return _fail(problems, path, f"expected non-empty text, not {_describe(value)}")
    return value


def _number(low: float | None = None, high: float | None = None, integer: bool = False) -> Parser:
    def parse(value: Any, path: str, problems: list[Problem]) -> Any:
        wanted = int if integer else int | float
        if isinstance(value, bool) or not isinstance(value, wanted) or not math.isfinite(value):
            return _fail(problems, path, f"expected {'a whole number' if integer else 'a number'}, "
                                         f"not {_describe(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if low is not None and high is not None else (
                f"at least {low}" if low is not None else f"at most {high}")
            return _fail(problems, path, f"{value} is out of range: must be {bounds}")
        return value
    return parse


def _choice(options: tuple[str, ...]) -> Parser:
    def parse(value: Any, path: str, problems: list[Problem]) -> Any:
        if value not in options:
            return _fail(problems, path, f"{value!r} is not one of {', '.join(options)}")
        return value
    return parse


def _zone(value: Any, path: str, problems: list[Problem]) -> Any:
    try:
        return check_zone(value)
    except PeriodError as err:
        return _fail(problems, path, str(err))


def _date(value: Any, path: str, problems: list[Problem]) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value  # YAML reads an unquoted 2021-04-01 as a date
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    return _fail(problems, path, f"expected an ISO date like 2021-04-01, not {_describe(value)}")


def _fields(raw: Any, path: str, spec: Mapping[str, tuple[Parser, bool]],
            problems: list[Problem]) -> dict[str, Any] | None:
    """Check a mapping against `spec` (name -> (parser, required)); the parsed fields, or None if any is bad."""
    if not isinstance(raw, dict):
        _fail(problems, path, f"expected a mapping with {', '.join(spec)}, not {_describe(raw)}")
        return None
    before = len(problems)
    for key in raw:
        if key not in spec:
            _fail(problems, f"{path}.{key}", f"unknown field; expected one of {', '.join(spec)}")
    parsed = {}
    for name, (parse, required) in spec.items():
        if raw.get(name) is None:
            if required:
                _fail(problems, f"{path}.{name}", "missing")
            continue
        parsed[name] = parse(raw[name], f"{path}.{name}", problems)
    return parsed if len(problems) == before else None


def _range(value: Any, path: str, problems: list[Problem]) -> Any:
    bound = _number()
    parsed = _fields(value, path, {"min": (bound, False), "max": (bound, False)}, problems)
    if parsed is None:
        return _INVALID
    if not parsed:
        return _fail(problems, path, "give min, max or both")
    if "min" in parsed and "max" in parsed and parsed["min"] > parsed["max"]:
        return _fail(problems, path, f"min {parsed['min']} is above max {parsed['max']}")
    return Range(parsed.get("min"), parsed.get("max"))


def _location(value: Any, path: str, problems: list[Problem]) -> Any:
    parsed = _fields(value, path, {"lat": (_number(-90, 90), True), "lon": (_number(-180, 180), True)}, problems)
    return _INVALID if parsed is None else Location(**parsed)


_TENANT_ID = _identifier(TENANT_ID, "letters, digits, '-' or '_'")
_ASSET_ID = _identifier(ASSET_ID, "letters, digits, '-', '_', '.' or ':'")
_SHARE = _number(0, 1)
TENANT_FIELDS: dict[str, tuple[Parser, bool]] = {
    "id": (_TENANT_ID, True), "name": (_text, True), "alarm_rate_threshold": (_SHARE, True),
    "flow_breach_threshold": (_SHARE, True), "silence_minutes": (_number(1, integer=True), False),
    "timezone": (_zone, False)}
ELEMENT_FIELDS: dict[str, tuple[Parser, bool]] = {
    "tenant": (_TENANT_ID, True), "id": (_ASSET_ID, True), "type": (_choice(ELEMENT_TYPES), True),
    "installed": (_date, True), "location": (_location, True), "limits": (_range, False)}
SENSOR_FIELDS: dict[str, tuple[Parser, bool]] = {
    "tenant": (_TENANT_ID, True), "id": (_ASSET_ID, True), "element": (_ASSET_ID, True),
    "kind": (_choice(KINDS), True), "unit": (_text, True), "thresholds": (_range, False)}


def _sensor_unit(sensor: Sensor, path: str, problems: list[Problem]) -> None:
    if sensor.unit not in UNITS[sensor.kind]:
        _fail(problems, f"{path}.unit", f"{sensor.unit!r} is not a unit of a {sensor.kind} sensor; "
                                        f"use {', '.join(UNITS[sensor.kind])}")


def _records(document: dict, section: str, spec: Mapping[str, tuple[Parser, bool]], build: Callable[..., Any],
             problems: list[Problem]) -> list[tuple[str, Any]]:
    """The valid records of one section with their paths; the first of two with the same key wins."""
    raw = document.get(section)
    if raw is None:
        return []
    if not isinstance(raw, list):
        _fail(problems, section, f"expected a list, not {_describe(raw)}")
        return []
    records: list[tuple[str, Any]] = []
    first: dict[str, str] = {}
    for i, item in enumerate(raw):
        path = f"{section}[{i}]"
        parsed = _fields(item, path, spec, problems)
        if parsed is None:
            continue
        record = build(**parsed)
        if record.key in first:
            _fail(problems, f"{path}.id", f"{record.key!r} is already defined at {first[record.key]}")
            continue
        first[record.key] = path
        records.append((path, record))
    return records


def parse_assets(document: Any, source: str) -> Assets:
    """Validate a whole asset document; raise one AssetError listing every problem with its path."""
    if not isinstance(document, dict):
        raise AssetError(source, [Problem("", f"expected a mapping with tenants, elements and sensors, "
                                              f"not {_describe(document)}")])
    problems: list[Problem] = []
    for key in document:
        if key not in ("tenants", "elements", "sensors"):
            _fail(problems, str(key), "unknown section; expected tenants, elements or sensors")
    tenants = _records(document, "tenants", TENANT_FIELDS, Tenant, problems)
    elements = _records(document, "elements", ELEMENT_FIELDS, Element, problems)
    sensors = _records(document, "sensors", SENSOR_FIELDS, Sensor, problems)
    for path, sensor in sensors:
        _sensor_unit(sensor, path, problems)
    if problems:
        raise AssetError(source, problems)

    tenant_ids = {t.id for _, t in tenants}
    element_keys = {e.key for _, e in elements}
    references = [Reference(f"{path}.tenant", "tenants", e.tenant, f"tenant {e.tenant!r}")
                  for path, e in elements if e.tenant not in tenant_ids]
    references += [Reference(f"{path}.element", "elements", f"{s.tenant}/{s.element}",
                             f"element {s.element!r} of tenant {s.tenant!r}")
                   for path, s in sensors if f"{s.tenant}/{s.element}" not in element_keys]
    return Assets(source, tuple(t for _, t in tenants), tuple(e for _, e in elements),
                  tuple(s for _, s in sensors), tuple(references))


def check_references(assets: Assets, existing: Mapping[str, Collection[str]]) -> None:
    """Raise an AssetError for each reference whose key is not among `existing[collection]` (the store's)."""
    missing = [Problem(r.path, f"{r.what} is neither in this file nor in the store")
               for r in assets.references if r.key not in existing.get(r.collection, ())]
    if missing:
        raise AssetError(assets.source, missing)
