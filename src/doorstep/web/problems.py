"""RFC 9457 problem details for every error Doorstep answers with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from doorstep.domain.errors import DomainError, FieldError
from doorstep.web.calls import problem_for_invalid_body

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://doorstep.dev/problems/"
log = structlog.get_logger(__name__)

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal server error",
}


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_slug: str | None = None,
    instance: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + (type_slug or str(status)),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message, "code": e.code} for e in errors]
    # Extension members never replace the standard ones (RFC 9457 section 3.2).
    body.update({k: v for k, v in extra.items() if k not in body})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if parts[0] == "body" else parts
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def validation_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        errors.append(FieldError(_loc_to_field(err.get("loc", ())), msg, str(err.get("type"))))
    return errors


ErrorPage = Callable[[Request], Response | None]
"""A page for an unexpected error instead of problem JSON: a response for the requests it
serves (e.g. a browser under ``/driver``), else None."""


def add_error_page(app: FastAPI, page: ErrorPage) -> None:
    """Answer unexpected errors with ``page`` where it has a page; problem JSON elsewhere."""
    pages: list[ErrorPage] = getattr(app.state, "error_pages", [])
    app.state.error_pages = [*pages, page]


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return problem(
            exc.status_code,
            exc.detail,
            title=exc.title,
            type_slug=exc.type_slug,
            instance=request.url.path,
            errors=exc.errors,
            headers=headers,
            **exc.extensions,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc)
        if any(e.code == "json_invalid" for e in errors):
            return problem(
                400,
                "the body is not valid JSON",
                type_slug="malformed-json",
                instance=request.url.path,
                errors=errors,
            )
        # An API request whose key is checked with its work (doorstep.web.calls): a wrong key
        # is a 401 before any word about the body.
        call = problem_for_invalid_body(request)
        if call is not None:
            try:
                await call.check()
            except DomainError as refused:
                return await _domain(request, refused)
        return problem(
            422,
            f"{len(errors)} field(s) failed validation",
            type_slug="validation-error",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, str(exc.detail), instance=request.url.path, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path)
        pages: list[ErrorPage] = getattr(request.app.state, "error_pages", [])
        for page in pages:
            answer = page(request)
            if answer is not None:
                return answer
        return problem(
            500, "an unexpected error occurred; it has been logged", instance=request.url.path
        )
