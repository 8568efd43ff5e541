"""The OpenAPI document, made to say exactly what the API does.

FastAPI's generated document is adjusted where the app's HTTP layer goes beyond a route:
errors are `application/problem+json` and 400 (FastAPI would document 422 and JSON); GETs
under /api/v1 carry `ETag` and `Cache-Control` and may answer 304 to `If-None-Match`; the
executions and errors endpoints also answer `text/csv` with a `Link` header; an optional parameter is
absent or a value (never `null`, which a query string cannot carry).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.api.http import CACHE_CONTROL

_PROBLEM_REF = "#/components/schemas/Problem"
_STRING = {"type": "string"}
CSV_PATHS = frozenset(
    {
        "/api/v1/executions",
        "/api/v1/jobs/{servicePrincipalId}/{jobId}/executions",
        "/api/v1/errors",
        "/api/v1/jobs/{servicePrincipalId}/{jobId}/errors",
    }
)
KEY_NOTE = (
    "In Azure every call under /api/v1 needs the function key (`x-functions-key` header or `code` "
    "query parameter); with App Service Authentication on, also a signed-in caller holding the app "
    "role named by API_REQUIRED_ROLE. /api/health needs neither."
)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query or path parameter is text on the wire: it is absent or a value, never null."""
    options = [option for option in schema.get("anyOf", ()) if option != {"type": "null"}]
    if "anyOf" not in schema or len(options) == len(schema["anyOf"]):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**options[0], **rest} if len(options) == 1 else {**rest, "anyOf": options}


def _rewrite_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        parameter["schema"] = _without_null(parameter["schema"])
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    for status, response in responses.items():
        content = response.get("content", {})
        json_content = content.get("application/json")
        if (
            status.startswith(("4", "5"))
            and json_content
            and json_content.get("schema", {}).get("$ref") == _PROBLEM_REF
        ):
            content.pop("application/json")
            content["application/problem+json"] = json_content
    if not path.startswith("/api/v1/") or method != "get" or "200" not in responses:
        return  # ETags and 304s are for GETs (http.ConditionalGetMiddleware)
    ok = responses["200"]
    ok["headers"] = {
        "ETag": {"description": "strong validator: the SHA-256 of the body", "required": True, "schema": _STRING},
        "Cache-Control": {"description": f"`{CACHE_CONTROL}`", "required": True, "schema": _STRING},
    }
    if path in CSV_PATHS:
        ok["content"]["text/csv"] = {
            "schema": {"type": "string", "description": "the page's `value` as CSV with a header row"}
        }
        ok["headers"]["Link"] = {
            "description": 'with CSV, `<nextLink>; rel="next"` while more pages follow',
            "required": False,
            "schema": _STRING,
        }
    responses["304"] = {
        "description": "Not Modified: If-None-Match names the current ETag",
        "headers": {"ETag": {"required": True, "schema": _STRING}},
    }
    operation.setdefault("parameters", []).append(
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "description": "an ETag from an earlier answer: 304 with no body while it still matches",
            "schema": _STRING,
        }
    )


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = copy.deepcopy(
        get_openapi(
            title=app.title,
            version=app.version,
            description=f"{app.description}\n\n{KEY_NOTE}",
            routes=app.routes,
            tags=app.openapi_tags,
        )
    )
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            _rewrite_operation(path, method, operation)
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = document
    return document
