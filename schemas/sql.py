"""Flink SQL column declarations derived from the Avro schemas, so record shapes live in one place."""

from __future__ import annotations

from pipeline.errors import SchemaError
from schemas.codec import schema

_PRIMITIVES = {"string": "STRING", "double": "DOUBLE", "float": "FLOAT", "int": "INT", "long": "BIGINT",
               "boolean": "BOOLEAN", "bytes": "BYTES"}
_LOGICAL = {"timestamp-millis": "TIMESTAMP_LTZ(3)"}


def flink_type(avro_type: object) -> str:
    """The Flink SQL type that the `tenantstream-avro` format maps an Avro field type to."""
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical in _LOGICAL:
            return _LOGICAL[logical]
        return flink_type(avro_type["type"])
    if isinstance(avro_type, list):
        branches = [t for t in avro_type if t != "null"]
        if len(branches) == 1:
            return flink_type(branches[0])
    if isinstance(avro_type, str) and avro_type in _PRIMITIVES:
        return _PRIMITIVES[avro_type]
    raise SchemaError(f"no Flink SQL type for Avro type {avro_type!r}")


def field_names(schema_name: str) -> list[str]:
    return [f["name"] for f in schema(schema_name).parsed["fields"]]


def flink_columns(schema_name: str) -> list[str]:
    """Column declarations (`name` TYPE) for every field of the schema, in order."""
    return [f"`{f['name']}` {flink_type(f['type'])}" for f in schema(schema_name).parsed["fields"]]
