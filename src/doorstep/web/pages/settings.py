"""The console's Settings page: the merchant's name, timezone, locale, branding and default
service time, changed through the same verb as ``PATCH /v1/merchant``
(:func:`doorstep.domain.accounts.profile.update_merchant`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from doorstep.domain.accounts.profile import (
    BRANDING_KEYS,
    Branding,
    MerchantPatch,
    access_merchant,
    merchant_out,
    update_merchant,
)
from doorstep.domain.accounts.users import Action
from doorstep.domain.errors import DomainError
from doorstep.web.csrf import FIELD_NAME, csrf_ok
from doorstep.web.pages.auth import ConsoleForbidden, ConsoleUser
from doorstep.web.pages.calls import console_page
from doorstep.web.pages.console import render_console

router = APIRouter(prefix="/console", include_in_schema=False)

FLASH_KEY = "settings_flash"
TEXT_FIELDS = ("name", "timezone", "locale", "default_service_time_s", *BRANDING_KEYS)


def _values(out: dict[str, Any]) -> dict[str, str]:
    branding = out["branding"]
    service = out["default_service_time_s"]
    return {
        "name": out["name"],
        "timezone": out["timezone"],
        "locale": out["locale"],
        "default_service_time_s": "" if service is None else str(service),
        **{key: branding.get(key) or "" for key in BRANDING_KEYS},
    }


def _page(
    request: Request,
    me: ConsoleUser,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    flash = request.session.pop(FLASH_KEY, None)
    return render_console(
        request,
        me,
        "console/settings.html",
        {"values": values, "errors": errors or {}, "flash": flash},
        status_code=status_code,
    )


@router.get("/settings", name="console_settings")
@console_page(Action.SETTINGS_MANAGE)
def settings_page(request: Request, me: ConsoleUser, session: Session) -> Response:
    """The merchant's settings as a form."""
    out = merchant_out(access_merchant(session, me.merchant.id)).model_dump(mode="json")
    return _page(request, me, _values(out))


def _patch_of(form: dict[str, str]) -> dict[str, Any]:
    """The form as a merge patch: empty branding and service-time cells clear them."""
    service = form.get("default_service_time_s", "").strip()
    return {
        "name": form.get("name", "").strip(),
        "timezone": form.get("timezone", "").strip(),
        "locale": form.get("locale", "").strip(),
        "default_service_time_s": int(service) if service.isdigit() else (service or None),
        "branding": {key: (form.get(key, "").strip() or None) for key in BRANDING_KEYS},
    }


async def _posted_form(request: Request) -> dict[str, str]:
    posted = await request.form(max_files=0, max_fields=50)
    return {k: v[:2000] for k, v in posted.multi_items() if isinstance(v, str)}


@router.post("/settings")
@console_page(Action.SETTINGS_MANAGE)
def settings_submit(
    request: Request,
    me: ConsoleUser,
    session: Session,
    form: Annotated[dict[str, str], Depends(_posted_form)],
) -> Response:
    """Save the form; a field at fault is shown beside it and nothing changes."""
    if not csrf_ok(request, form.get(FIELD_NAME)):
        raise ConsoleForbidden("the form expired; reload the page and try again")
    values = {name: form.get(name, "") for name in TEXT_FIELDS}
    errors: dict[str, str] = {}
    draft = _patch_of(form)
    try:  # branding too, so every wrong field is named at once
        Branding.model_validate({k: v for k, v in draft["branding"].items() if v})
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            errors.setdefault(str(err["loc"][-1]), str(err["msg"]).removeprefix("Value error, "))
    try:
        patch = MerchantPatch.model_validate(draft)
        update_merchant(session, me.merchant.id, patch)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            field = str(err["loc"][-1]) if err["loc"] else "name"
            errors.setdefault(field, str(err["msg"]).removeprefix("Value error, "))
    except DomainError as exc:
        for problem in exc.errors:
            errors.setdefault(problem.field.split(".")[-1], problem.message)
        if not exc.errors:
            errors["name"] = exc.detail
    if errors:  # refused before anything changed (update_merchant checks all, then writes)
        return _page(request, me, values, errors, status_code=422)
    session.commit()
    request.session[FLASH_KEY] = {"kind": "success", "text": "Settings saved."}
    return RedirectResponse("/console/settings", status_code=303)
