"""The REST API's OpenAPI 3.1 description, served at /api/v1/openapi.json (PROTOCOL.md says it in words)."""

from __future__ import annotations

from jobs.tables import RESULT_TABLES


def _param(name: str, description: str, where: str = "query", required: bool = False, **schema: object) -> dict:
    return {"name": name, "in": where, "required": required, "description": description,
            "schema": {"type": "string", **schema}}


_ERROR = {"description": "the reason, one line",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_ERRORS = {"400": _ERROR, "401": _ERROR, "404": {**_ERROR, "description": "not found: the same answer for an "
                                                  "unknown tenant and another tenant's"}}
_TENANT = _param("tenant", "the tenant (the caller's own, or any for an operator)", "path", True)
_TABLE = _param("table", "a result table", "path", True, enum=sorted(RESULT_TABLES))
_RANGE = [_param("key", "COLUMN=VALUE for each key column of the table (repeat)"),
          _param("before", "windows that start before this time (ISO-8601 or epoch ms)"),
          _param("after", "windows that start at or after this time"),
          _param("within", "START,END: windows that start in [START, END)")]


def _get(summary: str, parameters: list[dict], schema: dict) -> dict:
    return {"get": {"summary": summary, "parameters": parameters, "responses": {
        "200": {"description": "OK", "content": {"application/json": {"schema": schema}}}, **_ERRORS}}}


_OBJECT = {"type": "object"}
OPENAPI: dict = {
    "openapi": "3.1.0",
    "info": {"title": "tenantstream dashboard API", "version": "1"},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                            "session": {"type": "apiKey", "in": "cookie", "name": "tenantstream_session"}},
        "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}},
                              "required": ["error"]}}},
    "security": [{"bearer": []}, {"session": []}],
    "paths": {
        "/api/v1/login": {"post": {
            "summary": "log in with a token: sets the session cookie", "security": [],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"token": {"type": "string"}}, "required": ["token"]}}}},
            "responses": {"200": {"description": "logged in; the caller as /me"}, "401": _ERROR,
                          "429": _ERROR}}},
        "/api/v1/logout": {"post": {"summary": "end the session", "responses": {"204": {"description": "done"}}}},
        "/api/v1/me": _get("who the caller is and which tenants it sees", [], _OBJECT),
        "/api/v1/tables": _get("the result tables, their keys, time column and numeric fields", [], _OBJECT),
        "/api/v1/tenants/{tenant}/tables/{table}/keys": _get("the keys of the tenant's partitions",
                                                            [_TENANT, _TABLE], _OBJECT),
        "/api/v1/tenants/{tenant}/tables/{table}/windows": _get(
            "windows of one key in a time range, oldest first, paged",
            [_TENANT, _TABLE, *_RANGE, _param("limit", "rows a page, 1 to 1000 (default 500)"),
             _param("page", "the next_page of the previous answer")], _OBJECT),
        "/api/v1/tenants/{tenant}/tables/{table}/windows/sum": _get(
            "the sum of a numeric field over the range", [_TENANT, _TABLE, *_RANGE,
                                                          _param("field", "a numeric field", required=True)], _OBJECT),
        "/api/v1/tenants/{tenant}/tables/{table}/windows/mean": _get(
            "the mean of a numeric field over the range", [_TENANT, _TABLE, *_RANGE,
                                                           _param("field", "a numeric field", required=True)],
            _OBJECT),
        "/api/v1/tenants/{tenant}/health": _get("the Sensors 360 figures and the sensors silent now", [_TENANT],
                                                _OBJECT),
        "/api/v1/operations": _get("per job and tenant: lag, results a second, dead letters, late, checkpoint",
                                   [], _OBJECT),
    },
}
