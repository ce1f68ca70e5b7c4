"""Errors the domain raises; the web layer turns each into an RFC 9457 problem."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path, e.g. "recipient.phone" or "rows[3].lat"
    message: str
    code: str = "invalid"


class DomainError(Exception):
    status_code = 400
    title = "Bad request"
    type_slug = "bad-request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        # Extra members of the problem document (RFC 9457 section 3.2), e.g. ``allowed``.
        self.extensions = extensions or {}


class NotFound(DomainError):
    status_code = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(DomainError):
    status_code = 409
    title = "Conflict"
    type_slug = "conflict"


class InvalidTransition(Conflict):
    title = "Status change not allowed"
    type_slug = "invalid-transition"


class NotEditable(Conflict):
    title = "Order can no longer be changed"
    type_slug = "not-editable"


class Unprocessable(DomainError):
    status_code = 422
    title = "Validation failed"
    type_slug = "validation-error"


class Unauthorized(DomainError):
    status_code = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class Forbidden(DomainError):
    status_code = 403
    title = "Forbidden"
    type_slug = "forbidden"


@dataclass
class Actor:
    """Who did something: recorded on every event."""

    type: str  # api_key|user|driver|recipient|partner|system
    id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def system(cls) -> Actor:
        return cls("system")
