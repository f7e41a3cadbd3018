"""FerretDB on the stack speaks enough of the MongoDB protocol for pymongo's round trip."""

from __future__ import annotations

import pymongo
import pytest
from pymongo.errors import DuplicateKeyError


def test_pymongo_insert_update_find_and_index_round_trip(stack, unique):
    client = pymongo.MongoClient(stack.ferretdb.uri, serverSelectionTimeoutMS=5000)
    sensors = client[f"test_{unique}"]["sensors"]
    sensors.create_index([("tenant", 1), ("sensor_id", 1)], unique=True, name="tenant_sensor")
    sensors.insert_many([{"tenant": "acme", "sensor_id": f"s{i}", "threshold": 10 * i} for i in range(5)])
    sensors.update_one({"tenant": "acme", "sensor_id": "s3"}, {"$set": {"threshold": 99}})
    sensors.update_one({"tenant": "acme", "sensor_id": "s9"}, {"$set": {"threshold": 1}}, upsert=True)

    found = {d["sensor_id"]: d["threshold"] for d in sensors.find({"tenant": "acme"}, {"_id": 0})}
    assert found == {"s0": 0, "s1": 10, "s2": 20, "s3": 99, "s4": 40, "s9": 1}
    assert sensors.index_information()["tenant_sensor"]["unique"] is True
    with pytest.raises(DuplicateKeyError):
        sensors.insert_one({"tenant": "acme", "sensor_id": "s1"})
    client.drop_database(f"test_{unique}")
    client.close()

