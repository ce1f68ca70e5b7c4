"""The console's Messages page: the merchant's message templates per trigger, channel and
language. An owner picks one, edits it, previews it against a sample order (an error names its
line, as ``PUT /v1/message-templates`` does), saves it, or resets it to Doorstep's default.
The same domain functions as the API (:mod:`doorstep.domain.notifications.templates`)."""

from __future__ import annotations

import contextlib
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from doorstep.domain.accounts.profile import access_merchant
from doorstep.domain.accounts.users import Action
from doorstep.domain.errors import NotFound, Unprocessable
from doorstep.domain.notifications import templates
from doorstep.domain.notifications.config import Trigger
from doorstep.domain.notifications.defaults import LOCALES
from doorstep.settings import Settings
from doorstep.web.csrf import FIELD_NAME, csrf_ok
from doorstep.web.deps import ClockDep, SettingsDep
from doorstep.web.pages.auth import ConsoleForbidden, ConsoleUser
from doorstep.web.pages.calls import console_page
from doorstep.web.pages.console import render_console

router = APIRouter(prefix="/console", include_in_schema=False)

FLASH_KEY = "messages_flash"
PATH = "/console/messages"

TRIGGER_LABELS: dict[str, str] = {
    Trigger.ORDER_CONFIRMED: "Order confirmed",
    Trigger.WINDOW_CHANGED: "Window changed",
    Trigger.OUT_FOR_DELIVERY: "Out for delivery",
    Trigger.ARRIVING_SOON: "Arriving soon",
    Trigger.DELAYED: "Delayed",
    Trigger.DELIVERED: "Delivered",
    Trigger.ATTEMPT_FAILED: "Attempt failed",
    Trigger.REDIRECTED: "Redirected by the recipient",
    Trigger.HELD: "Held by the recipient",
    Trigger.INSTRUCTIONS_CHANGED: "Instructions changed by the recipient",
}
CHANNEL_LABELS = {"email": "E-mail", "sms": "SMS", "chat": "Chat"}
LOCALE_LABELS = {"en": "English", "fr": "Français", "fi": "Suomi"}
_LINE = re.compile(r"^line (\d+): ")


def _key(params: dict[str, str]) -> tuple[str, str, str]:
    trigger = params.get("trigger", Trigger.ORDER_CONFIRMED.value)
    channel = params.get("channel", "email")
    locale = params.get("locale", "en")
    if trigger not in TRIGGER_LABELS:
        trigger = Trigger.ORDER_CONFIRMED.value
    if channel not in CHANNEL_LABELS:
        channel = "email"
    if locale not in LOCALES:
        locale = "en"
    return trigger, channel, locale


def _errors(exc: Unprocessable) -> dict[str, dict[str, Any]]:
    """Field -> {"text", "line"}: the first error of each field, with its line when named."""
    out: dict[str, dict[str, Any]] = {}
    for problem in exc.errors:
        field = problem.field if problem.field in ("subject", "body") else "body"
        if field in out:
            continue
        found = _LINE.match(problem.message)
        out[field] = {"text": problem.message, "line": int(found.group(1)) if found else None}
    if not out:
        out["body"] = {"text": exc.detail, "line": None}
    return out


def _saved(session: Session, merchant_id: str) -> set[tuple[str, str, str]]:
    return {
        (row.trigger, row.channel, row.locale)
        for row in templates.list_templates(session, merchant_id)
    }


def _page(
    request: Request,
    me: ConsoleUser,
    session: Session,
    settings: Settings,
    key: tuple[str, str, str],
    *,
    subject: str | None = None,
    body: str | None = None,
    errors: dict[str, dict[str, Any]] | None = None,
    preview: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    trigger, channel, locale = key
    merchant = access_merchant(session, me.merchant.id)
    saved_subject, saved_body = templates.template_source(
        session, merchant.id, Trigger(trigger), channel, locale
    )
    custom = _saved(session, merchant.id)
    if preview is None and not errors:
        try:
            preview = templates.preview(
                session,
                merchant,
                settings.base_url,
                trigger=trigger,
                channel=channel,
                locale=locale,
                subject=subject,
                body=body,
            )
        except Unprocessable as exc:
            errors = _errors(exc)
    return render_console(
        request,
        me,
        "console/messages.html",
        {
            "key": {"trigger": trigger, "channel": channel, "locale": locale},
            "triggers": TRIGGER_LABELS,
            "channels": CHANNEL_LABELS,
            "locales": {code: LOCALE_LABELS.get(code, code) for code in LOCALES},
            "custom": custom,
            "is_custom": key in custom,
            "subject": saved_subject if subject is None else subject,
            "body": saved_body if body is None else body,
            "errors": errors or {},
            "preview": None if errors else preview,
            "variables": templates.VARIABLES,
            "flash": request.session.pop(FLASH_KEY, None),
        },
        status_code=status_code,
    )


@router.get("/messages", name="console_messages")
@console_page(Action.SETTINGS_MANAGE)
def messages_page(
    request: Request, me: ConsoleUser, session: Session, settings: SettingsDep
) -> Response:
    """One template in the editor (``?trigger=&channel=&locale=``) with its preview, and the
    list of every template, custom ones marked."""
    return _page(request, me, session, settings, _key(dict(request.query_params)))


async def _posted_form(request: Request) -> dict[str, str]:
    posted = await request.form(max_files=0, max_fields=20)
    return {k: v[:20_000] for k, v in posted.multi_items() if isinstance(v, str)}


PostedForm = Annotated[dict[str, str], Depends(_posted_form)]


def _checked(request: Request, form: dict[str, str]) -> dict[str, str]:
    """``form`` when it carries this session's CSRF token (checked after the sign-in)."""
    if not csrf_ok(request, form.get(FIELD_NAME)):
        raise ConsoleForbidden("the form expired; reload the page and try again")
    return form


def _there(key: tuple[str, str, str]) -> str:
    trigger, channel, locale = key
    return f"{PATH}?trigger={trigger}&channel={channel}&locale={locale}"


@router.post("/messages")
@console_page(Action.SETTINGS_MANAGE)
def messages_submit(
    request: Request,
    me: ConsoleUser,
    session: Session,
    settings: SettingsDep,
    clock: ClockDep,
    posted: PostedForm,
) -> Response:
    """``action=preview`` renders the edited text without saving; ``action=save`` saves it
    (422 with the line of the error when it does not render)."""
    form = _checked(request, posted)
    key = _key(form)
    trigger, channel, locale = key
    subject = form.get("subject") if channel == "email" else None
    body = form.get("body", "")
    merchant = access_merchant(session, me.merchant.id)
    if form.get("action") != "save":
        return _page(request, me, session, settings, key, subject=subject, body=body)
    try:
        templates.save_template(
            session,
            clock,
            merchant,
            trigger=trigger,
            channel=channel,
            locale=locale,
            subject=subject or None,
            body=body,
        )
    except Unprocessable as exc:
        return _page(
            request,
            me,
            session,
            settings,
            key,
            subject=subject,
            body=body,
            errors=_errors(exc),
            status_code=422,
        )
    session.commit()
    request.session[FLASH_KEY] = {"kind": "success", "text": "Template saved."}
    return RedirectResponse(_there(key), status_code=303)


@router.post("/messages/reset")
@console_page(Action.SETTINGS_MANAGE)
def messages_reset(
    request: Request, me: ConsoleUser, session: Session, posted: PostedForm
) -> Response:
    """Delete the merchant's template: Doorstep's default applies again."""
    form = _checked(request, posted)
    key = _key(form)
    with contextlib.suppress(NotFound):  # already the default
        templates.delete_template(session, me.merchant.id, *key)
    session.commit()
    request.session[FLASH_KEY] = {"kind": "success", "text": "Back to the default template."}
    return RedirectResponse(_there(key), status_code=303)
