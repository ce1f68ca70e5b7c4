"""The ``Idempotency-Key`` answer as a response: :func:`respond`. The key itself is read by
:data:`doorstep.web.calls.IdempotencyKeyDep` (JSON bodies) and the driving forms' dependencies,
before the merchant is known, and claimed in the request's one pool call.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from doorstep.domain.idempotency import Answer

REPLAYED_HEADER = "Idempotent-Replayed"
# How an operation's documented 409 and 422 describe the key's problems.
KEY_IN_FLIGHT = "a request with this Idempotency-Key is still in flight"
KEY_REUSED = "the Idempotency-Key was used for another request"


def respond(answer: Answer, *, location: str | None = None) -> JSONResponse:
    """``answer`` as JSON, flagged ``Idempotent-Replayed: true`` when it is a stored one;
    ``location`` goes in the ``Location`` header of a 201."""
    headers: dict[str, str] = {}
    if answer.replayed:
        headers[REPLAYED_HEADER] = "true"
    if location is not None and answer.status_code == 201:
        headers["Location"] = location
    return JSONResponse(answer.body, status_code=answer.status_code, headers=headers)
