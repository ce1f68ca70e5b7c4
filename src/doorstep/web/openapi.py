"""The OpenAPI document, completed with the error answers every operation can give.

Handlers document their own errors (404, 409, ...). Some errors come from the framework around
them whatever the handler does: a missing or wrong API key (401), a malformed request (400), a
body of the wrong type (415), too large (413) or invalid (422). They are added here to every
``/v1`` operation, as RFC 9457 problem documents, so the schema tells clients the truth.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from doorstep.web.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document (application/problem+json).",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                    "row": {"type": "integer"},
                },
            },
        },
    },
}

_ALWAYS = {
    "400": "Malformed request (a NUL character, a body that is not JSON, an invalid header)",
    "401": "Missing or invalid API key",
}
_WITH_BODY = {
    "413": "Request body too large",
    "415": "Unsupported media type",
    "422": "Validation failed; `errors` lists each field",
}
_WITH_PARAMS = {"422": "Validation failed; `errors` lists each field"}
_WITH_PATH_ID = {"404": "No such object for this merchant"}


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}},
    }


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the framework's error answers to every ``/v1`` operation (in place)."""
    schema.setdefault("components", {}).setdefault("schemas", {})["ProblemDocument"] = (
        PROBLEM_SCHEMA
    )
    for path, item in schema.get("paths", {}).items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            extra = dict(_ALWAYS)
            if "requestBody" in operation or method in {"post", "put", "patch"}:
                extra.update(_WITH_BODY)
            if operation.get("parameters"):
                extra.update(_WITH_PARAMS)
            if "{" in path:
                extra.update(_WITH_PATH_ID)
            for code, description in extra.items():
                responses.setdefault(code, _problem_response(description))
    return schema


def install(app: FastAPI) -> None:
    """Serve the completed schema at ``/openapi.json``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
