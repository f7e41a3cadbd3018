"""Asset files: every problem reported with its path, cross-references, units, YAML and JSON, the CLI's exits."""

from __future__ import annotations

import copy
import json
import socket
from datetime import date
from pathlib import Path

import pytest
import yaml

from schemas.assets import (
    UNITS,
    AssetError,
    Assets,
    Element,
    Location,
    Range,
    Reference,
    Sensor,
    Tenant,
    check_references,
    parse_assets,
    parse_document,
)
from submit.assets import format_tenant, read_assets
from submit.cli import build_parser, main

EXAMPLE = Path(__file__).parents[2] / "stack" / "assets.example.yaml"
GOOD = {
    "tenants": [{"id": "acme", "name": "Acme Water", "alarm_rate_threshold": 0.05, "flow_breach_threshold": 0.1}],
    "elements": [{"tenant": "acme", "id": "pump-1", "type": "pump", "installed": "2019-04-01",
                  "location": {"lat": 52.5, "lon": 13.4}, "limits": {"min": 0, "max": 120}}],
    "sensors": [{"tenant": "acme", "id": "pump-1-flow", "element": "pump-1", "kind": "non_additive",
                 "unit": "m3/h", "thresholds": {"max": 110}}],
}


def problems_of(document: object) -> list[str]:
    with pytest.raises(AssetError) as error:
        parse_assets(document, "assets.yaml")
    return [str(p) for p in error.value.problems]


def changed(path: str, value: object) -> dict:
    """GOOD with the field at `path` ("sensors.0.kind") set to `value`, or removed if value is ...."""
    document = copy.deepcopy(GOOD)
    *parents, last = (int(part) if part.isdigit() else part for part in path.split("."))
    target = document
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return document


def test_good_document_parses_into_records():
    assets = parse_assets(GOOD, "assets.yaml")
    assert assets.tenants == (Tenant("acme", "Acme Water", 0.05, 0.1, silence_minutes=10),)
    assert assets.elements == (Element("acme", "pump-1", "pump", date(2019, 4, 1), Location(52.5, 13.4),
                                       Range(0, 120)),)
    assert assets.sensors == (Sensor("acme", "pump-1-flow", "pump-1", "non_additive", "m3/h", Range(max=110)),)
    assert assets.references == ()


def test_example_file_parses_with_every_reference_inside_it():
    assets = read_assets(EXAMPLE)
    assert {t.id for t in assets.tenants} == {"acme", "globex"}
    assert {e.type for e in assets.elements} >= {"pump", "pipe", "basin", "valve", "ship"}
    ship_kinds = {s.kind for s in assets.sensors if s.element == "mv-aurora"}
    assert ship_kinds == {"power", "energy_counter"}
    assert assets.references == ()


def test_yaml_and_json_of_the_same_document_give_the_same_records(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "a.yml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "a.json").write_text(json.dumps(GOOD))
    parsed = [read_assets(tmp_path / name) for name in ("a.yaml", "a.yml", "a.json")]
    assert parsed[0].elements == parsed[1].elements == parsed[2].elements
    assert parsed[0].sensors == parsed[2].sensors and parsed[0].tenants == parsed[2].tenants


def test_unquoted_yaml_dates_are_dates():
    document = yaml.safe_load("installed: 2019-04-01")
    assert parse_assets(changed("elements.0.installed", document["installed"]), "a.yaml").elements[0].installed \
        == date(2019, 4, 1)


def test_records_written_out_read_back_the_same():
    assets = read_assets(EXAMPLE)
    again = parse_assets(json.loads(json.dumps(assets.document())), "again.json")
    assert (again.tenants, again.elements, again.sensors) == (assets.tenants, assets.elements, assets.sensors)


@pytest.mark.parametrize(("path", "value", "problem"), [
    ("sensors.0.kind", "foo", "sensors[0].kind: 'foo' is not one of additive, non_additive, energy_counter, power"),
    ("elements.0.type", "tank", "elements[0].type: 'tank' is not one of pump, pipe, basin, valve, base_station, "
                                "ship"),
    ("tenants.0.name", ..., "tenants[0].name: missing"),
    ("tenants.0.name", None, "tenants[0].name: missing"),
    ("tenants.0.name", "  ", "tenants[0].name: expected non-empty text, not '  '"),
    ("sensors.0.thresold", {"max": 1}, "sensors[0].thresold: unknown field; expected one of tenant, id, element, "
                                       "kind, unit, thresholds"),
    ("tenants.0.alarm_rate_threshold", "high", "tenants[0].alarm_rate_threshold: expected a number, not 'high'"),
    ("tenants.0.alarm_rate_threshold", True, "tenants[0].alarm_rate_threshold: expected a number, not the boolean "
                                             "True"),
    ("tenants.0.alarm_rate_threshold", float("nan"), "tenants[0].alarm_rate_threshold: expected a number, not the "
                                                     "number nan"),
    ("tenants.0.flow_breach_threshold", 1.5, "tenants[0].flow_breach_threshold: 1.5 is out of range: must be "
                                             "between 0 and 1"),
    ("tenants.0.silence_minutes", 2.5, "tenants[0].silence_minutes: expected a whole number, not the number 2.5"),
    ("tenants.0.silence_minutes", 0, "tenants[0].silence_minutes: 0 is out of range: must be at least 1"),
    ("tenants.0.id", "ac.me", "tenants[0].id: 'ac.me' is not a valid id: use letters, digits, '-' or '_'"),
    ("elements.0.id", "pump/1", "elements[0].id: 'pump/1' is not a valid id: use letters, digits, '-', '_', '.' "
                                "or ':'"),
    ("sensors.0.id", 101, "sensors[0].id: expected text, not the number 101 (quote it in YAML)"),
    ("elements.0.installed", "2019-13-01", "elements[0].installed: expected an ISO date like 2021-04-01, not "
                                           "'2019-13-01'"),
    ("elements.0.location.lat", 91, "elements[0].location.lat: 91 is out of range: must be between -90 and 90"),
    ("elements.0.location.lon", ..., "elements[0].location.lon: missing"),
    ("elements.0.location", [52.5, 13.4], "elements[0].location: expected a mapping with lat, lon, not a list"),
    ("elements.0.limits", {"min": 130, "max": 120}, "elements[0].limits: min 130 is above max 120"),
    ("elements.0.limits", {}, "elements[0].limits: give min, max or both"),
    ("sensors.0.thresholds", {"max": "110"}, "sensors[0].thresholds.max: expected a number, not '110'"),
    ("sensors.0.unit", "kW", "sensors[0].unit: 'kW' is not a unit of a non_additive sensor; use m3/h, l/s, bar, "
                             "m, degC, pH, %"),
    ("tenants.0", "acme", "tenants[0]: expected a mapping with id, name, alarm_rate_threshold, "
                          "flow_breach_threshold, silence_minutes, timezone, not 'acme'"),
    ("sensors", {"id": "s"}, "sensors: expected a list, not a mapping"),
    ("devices", [], "devices: unknown section; expected tenants, elements or sensors"),
])
def test_each_problem_is_reported_with_its_path(path, value, problem):
    assert problems_of(changed(path, value)) == [problem]


@pytest.mark.parametrize(("kind", "unit", "ok"), [
    ("power", "kW", True), ("power", "kWh", False), ("energy_counter", "kWh", True), ("energy_counter", "kW", False),
    ("additive", "m3", True), ("additive", "m3/h", False), ("non_additive", "bar", True), ("non_additive", "m3", False),
])
def test_units_must_suit_the_kind(kind, unit, ok):
    document = changed("sensors.0.unit", unit)
    document["sensors"][0]["kind"] = kind
    if ok:
        assert parse_assets(document, "a.yaml").sensors[0].unit == unit
    else:
        assert problems_of(document) == [f"sensors[0].unit: {unit!r} is not a unit of a {kind} sensor; use "
                                         f"{', '.join(UNITS[kind])}"]


def test_every_problem_of_a_file_is_reported_at_once():
    document = changed("sensors.0.kind", "foo")
    document["tenants"][0]["alarm_rate_threshold"] = -1
    document["elements"][0]["installed"] = "yesterday"
    with pytest.raises(AssetError) as error:
        parse_assets(document, "plant.yaml")
    assert str(error.value) == (
        "plant.yaml: 3 problems\n"
        "  tenants[0].alarm_rate_threshold: -1 is out of range: must be between 0 and 1\n"
        "  elements[0].installed: expected an ISO date like 2021-04-01, not 'yesterday'\n"
        "  sensors[0].kind: 'foo' is not one of additive, non_additive, energy_counter, power")


def test_duplicate_ids_in_a_file_are_rejected_per_tenant():
    document = copy.deepcopy(GOOD)
    document["sensors"] += [dict(document["sensors"][0], unit="l/s"),
                            dict(document["sensors"][0], tenant="globex")]
    document["tenants"].append(dict(document["tenants"][0]))
    assert problems_of(document) == ["tenants[1].id: 'acme' is already defined at tenants[0]",
                                     "sensors[1].id: 'acme/pump-1-flow' is already defined at sensors[0]"]


def test_references_outside_the_file_are_left_to_the_store():
    document = {"sensors": [dict(GOOD["sensors"][0], element="pump-9")], "elements": GOOD["elements"]}
    assets = parse_assets(document, "update.yaml")
    assert assets.references == (
        Reference("elements[0].tenant", "tenants", "acme", "tenant 'acme'"),
        Reference("sensors[0].element", "elements", "acme/pump-9", "element 'pump-9' of tenant 'acme'"))
    check_references(assets, {"tenants": {"acme"}, "elements": {"acme/pump-9"}})
    with pytest.raises(AssetError) as error:
        check_references(assets, {"tenants": {"acme"}, "elements": {"acme/pump-1"}})
    assert [str(p) for p in error.value.problems] == [
        "sensors[0].element: element 'pump-9' of tenant 'acme' is neither in this file nor in the store"]


def test_a_sensor_of_an_element_in_the_file_needs_nothing_from_the_store():
    assert parse_assets(GOOD, "a.yaml").references == ()
    globex_sensor = {"sensors": [dict(GOOD["sensors"][0], tenant="globex")], "elements": GOOD["elements"]}
    assert [r.key for r in parse_assets(globex_sensor, "a.yaml").references] == ["acme", "globex/pump-1"]


@pytest.mark.parametrize(("text", "source", "problem"), [
    ("tenants: []\ntenants: []\n", "a.yaml", "line 2, column 1: duplicate key 'tenants'"),
    ("sensors:\n  - {id: a, unit: m3, unit: l}\n", "a.yaml", "line 2, column 23: duplicate key 'unit'"),
    ('{"tenants": [], "tenants": []}', "a.json", "duplicate key 'tenants'"),
    ("tenants: [\n", "a.yml", "line 2, column 1: expected the node content, but found '<stream end>'"),
    ('{"tenants": [}', "a.json", "line 1, column 14: Expecting value"),
    ("tenants: []", "a.txt", "name a .yaml, .yml or .json file"),
])
def test_unreadable_documents_say_where(text, source, problem):
    with pytest.raises(AssetError) as error:
        parse_document(text, source)
    assert [str(p) for p in error.value.problems] == [problem]


@pytest.mark.parametrize(("document", "problem"), [
    (None, "expected a mapping with tenants, elements and sensors, not nothing"),
    ([GOOD], "expected a mapping with tenants, elements and sensors, not a list"),
])
def test_a_document_must_be_a_mapping(document, problem):
    assert problems_of(document) == [problem]


def test_format_tenant_aligns_its_tables():
    assets = parse_assets(GOOD, "a.yaml")
    text = format_tenant(assets.tenants[0], assets.elements, assets.sensors)
    assert text.splitlines() == [
        "acme: Acme Water",
        "  alerts when alarm rate > 0.05, flow breaches > 0.1, a sensor is silent > 10 min",
        "  elements (1)",
        "    id      type  installed   location    limits",
        "    pump-1  pump  2019-04-01  52.5, 13.4  0 .. 120",
        "  sensors (1)",
        "    id           element  kind          unit  thresholds",
        "    pump-1-flow  pump-1   non_additive  m3/h  max 110",
    ]


@pytest.mark.parametrize("command", [["assets"], ["assets", "load"], ["assets", "show"]])
def test_assets_commands_have_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command, "--help"])
    assert exit_.value.code == 0
    assert len(capsys.readouterr().out.splitlines()) > 3


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_load_of_an_invalid_file_lists_every_problem_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(changed("sensors.0.kind", "foo")))
    # validation comes first: no server is asked (nothing listens on this port)
    assert main(["assets", "load", str(bad), "--mongo-uri", f"mongodb://127.0.0.1:{_closed_port()}/"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tenantstream: assets load: error: {bad}: 1 problem; sensors[0].kind: 'foo' is not one of")
    assert err.count("\n") == 1


def test_cli_load_of_a_missing_file_exits_2(tmp_path, capsys):
    assert main(["assets", "load", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml: 1 problem; cannot read the file: [Errno 2] No such file or directory" in err


def test_cli_says_when_the_server_does_not_answer(capsys):
    uri = f"mongodb://127.0.0.1:{_closed_port()}/"
    assert main(["assets", "show", "--mongo-uri", uri]) == 1
    err = capsys.readouterr().err
    assert f"error: no answer from MongoDB at {uri} (waited up to 5 s): " in err and "Connection refused" in err
    assert "tenantstream stack up" in err


def test_assets_document_is_the_file_shape():
    assets = Assets("x", parse_assets(GOOD, "a.yaml").tenants)
    assert assets.document() == {"tenants": [dict(GOOD["tenants"][0], silence_minutes=10)], "elements": [],
                                 "sensors": []}
