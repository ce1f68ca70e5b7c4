"""Message templates per trigger, channel and language: list, save (validated), delete,
preview against a sample order."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from doorstep.domain.notifications import config, templates
from doorstep.domain.notifications.config import notification_settings_out
from doorstep.domain.notifications.models import MessageTemplate
from doorstep.domain.notifications.schemas import (
    NotificationSettings,
    NotificationSettingsPatch,
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateList,
    TemplateOut,
    preview_out,
)
from doorstep.web.deps import ClockDep, JSONBody, MerchantDep, SessionDep, SettingsDep
from doorstep.web.problems import PROBLEM_JSON


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}},
    }


PROBLEMS: dict[int | str, dict[str, Any]] = {
    404: _problem("No such object for this merchant"),
    422: _problem("Validation failed; `errors` names each field (and line, for templates)"),
}


router = APIRouter(
    prefix="/v1/message-templates", tags=["messages"], dependencies=[JSONBody], responses=PROBLEMS
)


def _out(row: MessageTemplate) -> TemplateOut:
    return TemplateOut(
        trigger=row.trigger,
        channel=row.channel,
        locale=row.locale,
        subject=row.subject,
        body=row.body,
        updated_at=row.updated_at,
    )


@router.get("", response_model=TemplateList, summary="The merchant's own templates")
def list_templates(session: SessionDep, merchant: MerchantDep) -> TemplateList:
    """The templates the merchant saved (others use Doorstep's defaults) and the variables."""
    rows = templates.list_templates(session, merchant.id)
    return TemplateList(items=[_out(r) for r in rows], variables=templates.VARIABLES)


@router.put("/{trigger}/{channel}/{locale}", response_model=TemplateOut, summary="Save a template")
def save_template(
    trigger: str,
    channel: str,
    locale: str,
    payload: TemplateIn,
    session: SessionDep,
    clock: ClockDep,
    merchant: MerchantDep,
) -> TemplateOut:
    """Refused with 422 (naming the line) if it has a syntax error or an unknown variable."""
    row = templates.save_template(
        session,
        clock,
        merchant,
        trigger=trigger,
        channel=channel,
        locale=locale,
        subject=payload.subject,
        body=payload.body,
    )
    return _out(row)


@router.delete("/{trigger}/{channel}/{locale}", status_code=204, summary="Back to default")
def delete_template(
    trigger: str, channel: str, locale: str, session: SessionDep, merchant: MerchantDep
) -> Response:
    templates.delete_template(session, merchant.id, trigger, channel, locale)
    return Response(status_code=204)


@router.post("/preview", response_model=PreviewOut, summary="Preview on a sample order")
def preview(
    payload: PreviewIn, session: SessionDep, settings: SettingsDep, merchant: MerchantDep
) -> PreviewOut:
    """Renders the given text (else the saved template, else the default); SMS and chat
    answers give the length in segments (GSM-7 or UCS-2)."""
    data = templates.preview(
        session,
        merchant,
        settings.base_url,
        trigger=payload.trigger,
        channel=payload.channel,
        locale=payload.locale,
        subject=payload.subject,
        body=payload.body,
    )
    return preview_out(data)


settings_router = APIRouter(
    prefix="/v1/notification-settings",
    tags=["messages"],
    dependencies=[JSONBody],
    responses={422: PROBLEMS[422]},
)


@settings_router.get("", response_model=NotificationSettings, summary="Message settings")
def get_notification_settings(merchant: MerchantDep) -> NotificationSettings:
    """Which triggers go out on which channel, the SMS/chat services, quiet hours, limits."""
    return NotificationSettings.model_validate(notification_settings_out(merchant))


@settings_router.patch("", response_model=NotificationSettings, summary="Change them")
def update_notification_settings(
    payload: NotificationSettingsPatch, session: SessionDep, merchant: MerchantDep
) -> NotificationSettings:
    """Fields left out keep their value; `triggers` merges per trigger; `quiet_hours: null`
    turns quiet hours off."""
    changes = payload.model_dump(exclude_unset=True)
    return NotificationSettings.model_validate(
        config.update_notification_settings(merchant, changes)
    )
