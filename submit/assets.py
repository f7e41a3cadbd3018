"""`tenantstream assets load | show`: asset files in, readable tables out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from schemas.assets import AssetError, Assets, Element, Problem, Range, Sensor, Tenant, parse_assets, parse_document


def read_assets(path: Path) -> Assets:
    """The validated assets of a YAML or JSON file; AssetError for an unreadable or invalid one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise AssetError(str(path), [Problem("", f"cannot read the file: {err}")]) from None
    return parse_assets(parse_document(text, path.name), str(path))


def _bounds(bounds: Range | None) -> str:
    if bounds is None:
        return "-"
    if bounds.min is not None and bounds.max is not None:
        return f"{bounds.min} .. {bounds.max}"
    return f"min {bounds.min}" if bounds.min is not None else f"max {bounds.max}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "    ") -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    return [indent + "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in (headers, *rows)]


def format_tenant(tenant: Tenant, elements: Sequence[Element], sensors: Sequence[Sensor]) -> str:
    """One tenant's thresholds, elements and sensors as aligned tables."""
    lines = [f"{tenant.id}: {tenant.name}",
             f"  alerts when alarm rate > {tenant.alarm_rate_threshold}, flow breaches > "
             f"{tenant.flow_breach_threshold}, a sensor is silent > {tenant.silence_minutes} min",
             f"  elements ({len(elements)})"]
    if elements:
        lines += _table(("id", "type", "installed", "location", "limits"),
                        [(e.id, e.type, e.installed.isoformat(), f"{e.location.lat}, {e.location.lon}",
                          _bounds(e.limits)) for e in elements])
    lines.append(f"  sensors ({len(sensors)})")
    if sensors:
        lines += _table(("id", "element", "kind", "unit", "thresholds"),
                        [(s.id, s.element, s.kind, s.unit, _bounds(s.thresholds)) for s in sensors])
    return "\n".join(lines)
