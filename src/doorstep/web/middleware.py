"""ASGI middleware: a body-size limit enforced while the body streams in, and request metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("doorstep_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "doorstep_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


# NUL characters are never meaningful in Doorstep's text, and PostgreSQL refuses them in text
# columns: a request carrying one is refused up front rather than failing deep inside.
_BODY_NUL = (b"\x00", b"\\u0000")  # raw, or escaped in JSON
_QUERY_NUL = (b"\x00", b"%00")  # raw, or percent-encoded


def _has_nul(data: bytes, patterns: tuple[bytes, ...] = _BODY_NUL) -> bool:
    lowered = data.lower()
    return any(p in lowered for p in patterns)


class RequestGuardMiddleware:
    """Refuses, before the app parses anything: bodies over the limit (413) and requests with
    NUL characters in the path, query or body (400).

    ``limits`` maps a path suffix to its own limit (the CSV import takes more than JSON)."""

    def __init__(self, app: ASGIApp, default: int, limits: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.limits = limits or {}

    def _limit_for(self, path: str) -> int:
        for suffix, limit in self.limits.items():
            if path.endswith(suffix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or _has_nul(scope.get("query_string", b""), _QUERY_NUL):
            await _send_problem(send, 400, "NUL characters are not allowed in the URL")
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _send_413(send, limit)
                    return
        # Read the whole body first (it is bounded by the limit): the app must see none of a
        # body that is refused, and FastAPI would turn errors raised mid-read into a vague 400.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await _send_413(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        # Files in a multipart body are binary; the handlers that take them clean their text
        # fields themselves.
        if not _is_multipart(scope) and _has_nul(body):
            await _send_problem(send, 400, "NUL characters are not allowed in the body")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _is_multipart(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return bool(value.lower().startswith(b"multipart/form-data"))
    return False


async def _send_413(send: Send, limit: int) -> None:
    await _send_problem(
        send, 413, f"the request body exceeds the limit of {limit} bytes", "payload-too-large"
    )


_TITLES = {400: "Bad request", 413: "Request body too large"}


async def _send_problem(send: Send, status: int, detail: str, slug: str | None = None) -> None:
    body = json.dumps(
        {
            "type": f"https://doorstep.dev/problems/{slug or 'bad-request'}",
            "title": _TITLES.get(status, "Error"),
            "status": status,
            "detail": detail,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route: Any = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], name, str(status)).inc()
            LATENCY.labels(scope["method"], name).observe(time.perf_counter() - start)
