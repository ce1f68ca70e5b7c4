"""``/v1/merchant``: the calling merchant's own settings (name, timezone, locale, branding,
default service time, and ``config`` for the settings features add)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from doorstep.domain.accounts.profile import (
    MerchantOut,
    MerchantPatch,
    access_merchant,
    merchant_out,
    update_merchant,
)
from doorstep.web.calls import ApiCallDep, Caller, json_response
from doorstep.web.deps import JSONBody
from doorstep.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1", tags=["merchant"])

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key", "content": {PROBLEM_JSON: {}}}
}


@router.get(
    "/merchant", response_model=MerchantOut, responses=_AUTH, summary="Your merchant's settings"
)
async def get_merchant(api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        return json_response(merchant_out(access_merchant(session, caller.merchant_id)))

    return await api.read(work)


@router.patch(
    "/merchant",
    response_model=MerchantOut,
    dependencies=[JSONBody],
    responses={
        **_AUTH,
        422: {"description": "Validation failed; `errors` names each field"},
    },
    summary="Change your merchant's settings (merge patch)",
    description=(
        "JSON merge patch: absent fields stay; `branding` and `config` merge key by key and a "
        "`null` value removes a key. `timezone` is an IANA name, `branding.color` `#RRGGBB`, "
        "`branding.support_phone` E.164. `default_service_time_s` (seconds at the door) applies "
        "to orders that give none; `null` returns to the server's default."
    ),
)
async def patch_merchant(patch: MerchantPatch, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        return json_response(merchant_out(update_merchant(session, caller.merchant_id, patch)))

    return await api.write(work)
