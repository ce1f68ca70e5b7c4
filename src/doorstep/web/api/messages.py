"""Message templates per trigger, channel and language: list, save (validated), delete,
preview against a sample order."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

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
from doorstep.web.calls import ApiCallDep, Caller, json_response
from doorstep.web.deps import JSONBody
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
async def list_templates(api: ApiCallDep) -> Response:
    """The templates the merchant saved (others use Doorstep's defaults) and the variables."""

    def work(session: Session, caller: Caller) -> Response:
        rows = templates.list_templates(session, caller.merchant_id)
        return json_response(
            TemplateList(items=[_out(r) for r in rows], variables=templates.VARIABLES)
        )

    return await api.read(work)


@router.put("/{trigger}/{channel}/{locale}", response_model=TemplateOut, summary="Save a template")
async def save_template(
    trigger: str, channel: str, locale: str, payload: TemplateIn, api: ApiCallDep
) -> Response:
    """Refused with 422 (naming the line) if it has a syntax error or an unknown variable."""

    def work(session: Session, caller: Caller) -> Response:
        row = templates.save_template(
            session,
            caller.clock,
            caller.merchant,
            trigger=trigger,
            channel=channel,
            locale=locale,
            subject=payload.subject,
            body=payload.body,
        )
        return json_response(_out(row))

    return await api.write(work)


@router.delete("/{trigger}/{channel}/{locale}", status_code=204, summary="Back to default")
async def delete_template(trigger: str, channel: str, locale: str, api: ApiCallDep) -> Response:
    def work(session: Session, caller: Caller) -> Response:
        templates.delete_template(session, caller.merchant_id, trigger, channel, locale)
        return Response(status_code=204)

    return await api.write(work)


@router.post("/preview", response_model=PreviewOut, summary="Preview on a sample order")
async def preview(payload: PreviewIn, api: ApiCallDep) -> Response:
    """Renders the given text (else the saved template, else the default); SMS and chat
    answers give the length in segments (GSM-7 or UCS-2)."""

    def work(session: Session, caller: Caller) -> Response:
        data = templates.preview(
            session,
            caller.merchant,
            caller.settings.base_url,
            trigger=payload.trigger,
            channel=payload.channel,
            locale=payload.locale,
            subject=payload.subject,
            body=payload.body,
        )
        return json_response(preview_out(data))

    return await api.write(work)


settings_router = APIRouter(
    prefix="/v1/notification-settings",
    tags=["messages"],
    dependencies=[JSONBody],
    responses={422: PROBLEMS[422]},
)


@settings_router.get("", response_model=NotificationSettings, summary="Message settings")
async def get_notification_settings(api: ApiCallDep) -> Response:
    """Which triggers go out on which channel, the SMS/chat services, quiet hours, limits."""

    def work(session: Session, caller: Caller) -> Response:
        return json_response(
            NotificationSettings.model_validate(notification_settings_out(caller.merchant))
        )

    return await api.read(work)


@settings_router.patch("", response_model=NotificationSettings, summary="Change them")
async def update_notification_settings(
    payload: NotificationSettingsPatch, api: ApiCallDep
) -> Response:
    """Fields left out keep their value; `triggers` merges per trigger; `quiet_hours: null`
    turns quiet hours off."""
    changes = payload.model_dump(exclude_unset=True)

    def work(session: Session, caller: Caller) -> Response:
        return json_response(
            NotificationSettings.model_validate(
                config.update_notification_settings(caller.merchant, changes)
            )
        )

    return await api.write(work)
