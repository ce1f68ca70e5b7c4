"""The ``Idempotency-Key`` header on the HTTP side, for every router that accepts it: the
dependency that reads the key and fingerprints the request, and the answer as a response.

A handler that takes :data:`IdempotencyDep` runs its work through
:func:`doorstep.domain.idempotency.run` (or ``run_with_own_transactions``) and answers with
:func:`respond`. It must use ``OwnTransactionsMerchantDep``: the claim commits in a transaction
of its own, which a still-open request transaction would block on SQLite.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse

from doorstep.domain import idempotency
from doorstep.domain.idempotency import Answer, IdempotentRequest
from doorstep.web.deps import OwnTransactionsMerchantDep

REPLAYED_HEADER = "Idempotent-Replayed"
# How an operation's documented 409 and 422 describe the key's problems.
KEY_IN_FLIGHT = "a request with this Idempotency-Key is still in flight"
KEY_REUSED = "the Idempotency-Key was used for another request"


async def get_idempotent_request(
    request: Request,
    merchant: OwnTransactionsMerchantDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Retry-safe key (IETF httpapi draft); answers are kept 24 h",
        ),
    ] = None,
) -> IdempotentRequest | None:
    """The request under its key, or None when the client sent no ``Idempotency-Key``."""
    if idempotency_key is None:
        return None
    key = idempotency.parse_key(idempotency_key)
    body = await request.body()
    return IdempotentRequest(
        merchant_id=merchant.id,
        key=key,
        method=request.method,
        path=request.url.path,
        fingerprint=idempotency.fingerprint(request.method, request.url.path, body),
    )


IdempotencyDep = Annotated[IdempotentRequest | None, Depends(get_idempotent_request)]


def respond(answer: Answer, *, location: str | None = None) -> JSONResponse:
    """``answer`` as JSON, flagged ``Idempotent-Replayed: true`` when it is a stored one;
    ``location`` goes in the ``Location`` header of a 201."""
    headers: dict[str, str] = {}
    if answer.replayed:
        headers[REPLAYED_HEADER] = "true"
    if location is not None and answer.status_code == 201:
        headers["Location"] = location
    return JSONResponse(answer.body, status_code=answer.status_code, headers=headers)
