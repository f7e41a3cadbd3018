"""Asset metadata on the stack's FerretDB: upserts that change only what changed, refresh by updated_at, the CLI."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pymongo
import pytest
import yaml

from connectors.metadata import MetadataStore
from schemas.assets import AssetError, parse_assets
from submit.assets import read_assets
from submit.cli import main

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).parents[2] / "stack" / "assets.example.yaml"
RECORDS = 19  # tenants, elements and sensors in the example file
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
def database(stack, unique):
    name = f"test_assets_{unique}"
    yield name
    client = pymongo.MongoClient(stack.ferretdb.uri, serverSelectionTimeoutMS=5000)
    client.drop_database(name)
    client.close()


@pytest.fixture
def store(stack, database):
    with MetadataStore(stack.ferretdb.uri, database) as store:
        yield store


def example_with(change) -> dict:
    """The example file's document after `change(document)`."""
    document = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))
    change(document)
    return document


def sensor(document: dict, sensor_id: str) -> dict:
    return next(s for s in document["sensors"] if s["id"] == sensor_id)


def test_a_reload_writes_nothing_and_a_changed_threshold_updates_one_record(store):
    first = store.load(read_assets(EXAMPLE))
    assert (first.inserted, first.updated, first.unchanged) == (RECORDS, 0, 0)
    loaded = store.changed_since(EPOCH)
    assert len(loaded) == RECORDS and {c.version for c in loaded} == {1}
    seen = max(c.updated_at for c in loaded)

    again = store.load(read_assets(EXAMPLE))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, RECORDS)
    assert store.changed_since(seen) == []

    raised = example_with(lambda d: sensor(d, "pump-1-flow").update(thresholds={"max": 95}))
    report = store.load(parse_assets(raised, "raised.yaml"))
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, RECORDS - 1)
    (change,) = store.changed_since(seen)
    assert (change.collection, change.key, change.tenant, change.version) == ("sensors", "acme/pump-1-flow", "acme", 2)
    assert change.updated_at > seen
    assert store.thresholds("acme")["thresholds"]["pump-1-flow"] == {"max": 95}


def test_thresholds_are_what_a_job_of_the_tenant_alerts_on(store):
    store.load(read_assets(EXAMPLE))
    before = store.thresholds("globex")
    assert before == {
        "tenant": {"alarm_rate_threshold": 0.02, "flow_breach_threshold": 0.05, "silence_minutes": 5},
        "limits": {},
        "thresholds": {"aurora-shore-power": {"max": 800}, "bts-harbour-temp": {"max": 45}},
    }

    def retune(document: dict) -> None:
        document["tenants"][1]["silence_minutes"] = 15
        document["elements"][5]["limits"] = {"max": 1200}
        del sensor(document, "bts-harbour-temp")["thresholds"]

    store.load(parse_assets(example_with(retune), "retune.yaml"))
    after = store.thresholds("globex")
    assert after["tenant"]["silence_minutes"] == 15
    assert after["limits"] == {"mv-aurora": {"max": 1200}}
    assert after["thresholds"] == {"aurora-shore-power": {"max": 800}}  # removed from the file, cleared in the store
    with pytest.raises(LookupError, match="no tenant 'initech'"):
        store.thresholds("initech")


def test_records_read_back_equal_the_file(store):
    assets = read_assets(EXAMPLE)
    store.load(assets)
    assert store.tenants() == sorted(assets.tenants, key=lambda t: t.id)
    for tenant in ("acme", "globex"):
        assert store.elements(tenant) == sorted((e for e in assets.elements if e.tenant == tenant), key=lambda e: e.id)
        assert store.sensors(tenant) == sorted((s for s in assets.sensors if s.tenant == tenant), key=lambda s: s.id)


def test_a_file_may_name_elements_already_in_the_store_but_not_unknown_ones(store):
    store.load(read_assets(EXAMPLE))
    new_sensor = {"sensors": [{"tenant": "acme", "id": "pump-2-energy", "element": "pump-2",
                               "kind": "energy_counter", "unit": "kWh"}]}
    report = store.load(parse_assets(new_sensor, "new.yaml"))
    assert (report.inserted, report.updated, report.unchanged) == (1, 0, 0)

    orphan = {"sensors": [{"tenant": "acme", "id": "pump-3-flow", "element": "pump-3", "kind": "non_additive",
                           "unit": "m3/h"}],
              "elements": [{"tenant": "initech", "id": "p1", "type": "pump", "installed": "2020-01-01",
                            "location": {"lat": 1, "lon": 2}}]}
    with pytest.raises(AssetError) as error:
        store.load(parse_assets(orphan, "orphan.yaml"))
    assert [str(p) for p in error.value.problems] == [
        "elements[0].tenant: tenant 'initech' is neither in this file nor in the store",
        "sensors[0].element: element 'pump-3' of tenant 'acme' is neither in this file nor in the store"]
    assert "acme/pump-3-flow" not in {s.key for s in store.sensors("acme")}


def test_indexes_fit_the_reads_and_opening_again_keeps_them(stack, database, store):
    store.load(read_assets(EXAMPLE))
    with MetadataStore(stack.ferretdb.uri, database) as again:  # indexes created again: a no-op, not an error
        indexes = {name: again.db[name].index_information() for name in ("tenants", "elements", "sensors")}
    assert indexes["sensors"]["tenant_element"]["key"] == [("tenant", 1), ("element", 1)]
    assert indexes["elements"]["tenant"]["key"] == [("tenant", 1)]
    for name in ("tenants", "elements", "sensors"):
        assert indexes[name]["updated_at"]["key"] == [("updated_at", 1)]


def test_cli_load_and_show(stack, database, tmp_path, capsys):
    store_flags = ["--mongo-uri", stack.ferretdb.uri, "--database", database]
    assert main(["assets", "load", str(EXAMPLE), *store_flags]) == 0
    assert capsys.readouterr().out.strip() == f"{EXAMPLE}: {RECORDS} inserted, 0 updated, 0 unchanged"

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(example_with(lambda d: sensor(d, "pump-1-flow").update(kind="foo"))))
    assert main(["assets", "load", str(bad), *store_flags]) == 2
    err = capsys.readouterr().err
    assert "sensors[0].kind: 'foo' is not one of additive, non_additive, energy_counter, power" in err

    assert main(["assets", "show", "--tenant", "globex", *store_flags]) == 0
    out = capsys.readouterr().out
    assert out.startswith("globex: Globex Shipping\n") and "acme" not in out
    assert "    aurora-shore-power   mv-aurora    power           kW    max 800" in out.splitlines()

    assert main(["assets", "show", "--json", *store_flags]) == 0
    dumped = tmp_path / "dumped.json"
    dumped.write_text(capsys.readouterr().out)
    assert len(json.loads(dumped.read_text())["sensors"]) == 10
    assert main(["assets", "load", str(dumped), *store_flags]) == 0  # what show prints, load reads back unchanged
    assert capsys.readouterr().out.strip() == f"{dumped}: 0 inserted, 0 updated, {RECORDS} unchanged"

    assert main(["assets", "show", "--tenant", "initech", *store_flags]) == 1
    assert "no tenant 'initech' in the metadata store" in capsys.readouterr().err

