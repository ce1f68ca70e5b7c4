"""Rendering recipient messages: Doorstep's defaults or the merchant's own templates, always in
a Jinja2 sandbox with only the documented variables, and the length of an SMS in segments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.errors import FieldError, NotFound, Unprocessable
from doorstep.domain.notifications.config import Channel, Trigger
from doorstep.domain.notifications.defaults import (
    DEFAULTS,
    DESTINATIONS,
    LOCALES,
    NEXT_STEP,
    REASONS,
)
from doorstep.domain.notifications.models import MessageTemplate
from doorstep.domain.notifications.outbox import recipient_timezone
from doorstep.domain.orders.models import Order
from doorstep.ids import new_id

DASH = "\u2013"  # an en dash between the two ends of a window

# The variables a template may use, with what they hold.
VARIABLES: dict[str, str] = {
    "merchant_name": "the merchant's name",
    "recipient_name": "the recipient's first name",
    "reference": "the order reference",
    "window": "the delivery window, formatted in the recipient's language and timezone",
    "window_start": "start of the window (formatted)",
    "window_end": "end of the window (formatted)",
    "eta": "the estimated arrival time (formatted), when known",
    "eta_window": "the estimated arrival interval, when known",
    "minutes_away": "minutes until arrival, when known",
    "stops_before": "stops the driver makes before this one, when known",
    "delivered_at": "the time of delivery (formatted)",
    "reason": "why the delivery failed, in words",
    "next_step": "what happens after a failed attempt",
    "tracking_url": "the tracking page",
    "preferences_url": "the recipient's message preferences page",
    "proof_url": "the proof of delivery (the tracking page)",
    "support_email": "the merchant's support e-mail",
    "support_phone": "the merchant's support phone",
    "destination": "where a redirected delivery goes (neighbour, safe place, pickup point)",
    "held_until": "the date a held delivery waits until (formatted)",
    "instructions": "the delivery instructions as the recipient last set them",
}

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

# GSM 03.38 basic character set and its extension table (each extension char costs two).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # GSM-7 | UCS-2
    units: int  # septets or UTF-16 code units
    segments: int


def sms_length(text: str) -> SmsLength:
    """How many SMS segments ``text`` needs (160/153 septets in GSM-7, 70/67 in UCS-2)."""
    if all(c in _GSM_BASIC or c in _GSM_EXT for c in text):
        units = sum(2 if c in _GSM_EXT else 1 for c in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    segments = 1 if units <= single else -(-units // multi)
    return SmsLength(encoding, units, segments)


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    locale: str


def pick_locale(locale: str | None) -> str:
    base = (locale or "en").split("-")[0].split("_")[0].lower()
    return base if base in LOCALES else "en"


# Many messages show the same few windows (a slot's orders share it): format each once.
@lru_cache(maxsize=4096)
def _fmt(dt: datetime | None, tz: str, locale: str, pattern: str = "EEE d MMM, HH:mm") -> str:
    if dt is None:
        return ""
    return format_datetime(dt, pattern, tzinfo=ZoneInfo(tz), locale=locale)


@lru_cache(maxsize=4096)
def _fmt_time(dt: datetime | None, tz: str, locale: str) -> str:
    if dt is None:
        return ""
    return format_time(dt, "HH:mm", tzinfo=ZoneInfo(tz), locale=locale)


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value))


def destination_text(data: dict[str, Any], locale: str) -> str:
    """Where an ``order.redirected`` event sends the delivery, in words."""
    pattern = DESTINATIONS.get(locale, DESTINATIONS["en"]).get(str(data.get("kind") or ""))
    if pattern is None:
        return ""
    detail = {k: "" if v is None else v for k, v in (data.get("detail") or {}).items()}
    return re.sub(r"[ ,]+$", "", pattern.format_map(_Blank(detail)))


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def _held_until(value: Any, locale: str) -> str:
    if not value:
        return ""
    return format_date(date.fromisoformat(str(value)), "long", locale=locale)


def message_context(
    merchant: Merchant,
    order: Order,
    locale: str,
    *,
    event_data: dict[str, Any],
    tracking_url: str,
    preferences_url: str,
    eta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The variables for one message about ``order`` (see :data:`VARIABLES`). Times are shown
    in the recipient's timezone, the one quiet hours are read in (the delivery address's
    country, else the merchant's: :func:`recipient_timezone`)."""
    tz = recipient_timezone(order, merchant)
    start, end = order.window_start, order.window_end
    window = ""
    if start and end:
        window = f"{_fmt(start, tz, locale)}{DASH}{_fmt_time(end, tz, locale)}"
    eta = eta or {}
    earliest, latest = _parse(eta.get("earliest")), _parse(eta.get("latest"))
    eta_window = ""
    if earliest and latest:
        eta_window = f"{_fmt_time(earliest, tz, locale)}{DASH}{_fmt_time(latest, tz, locale)}"
    reason_code = str(event_data.get("reason") or order.reason or "")
    reason = REASONS.get(locale, REASONS["en"]).get(reason_code, reason_code.replace("_", " "))
    branding = merchant.branding or {}
    return {
        "merchant_name": merchant.name,
        "recipient_name": (order.recipient_name or "").split(" ")[0],
        "reference": order.reference,
        "window": window,
        "window_start": _fmt(start, tz, locale),
        "window_end": _fmt(end, tz, locale),
        "eta": _fmt_time(_parse(eta.get("eta")), tz, locale),
        "eta_window": eta_window,
        "minutes_away": eta.get("minutes_away"),
        "stops_before": eta.get("stops_before"),
        "delivered_at": _fmt(order.delivered_at, tz, locale),
        "reason": reason,
        "next_step": NEXT_STEP.get(locale, NEXT_STEP["en"]),
        "tracking_url": tracking_url,
        "preferences_url": preferences_url,
        "proof_url": tracking_url,
        "support_email": branding.get("support_email") or "",
        "support_phone": branding.get("support_phone") or "",
        "destination": destination_text(event_data, locale),
        "held_until": _held_until(event_data.get("until"), locale),
        "instructions": order.instructions or "",
    }


def sample_context(merchant: Merchant, locale: str, base_url: str) -> dict[str, Any]:
    """Variables of a made-up order, for previews."""
    return {
        "merchant_name": merchant.name,
        "recipient_name": "Ada",
        "reference": "SO-1001",
        "window": f"Wed 25 Nov, 14:00{DASH}16:00",
        "window_start": "Wed 25 Nov, 14:00",
        "window_end": "Wed 25 Nov, 16:00",
        "eta": "14:35",
        "eta_window": f"14:25{DASH}14:45",
        "minutes_away": 8,
        "stops_before": 0,
        "delivered_at": "Wed 25 Nov, 14:37",
        "reason": REASONS.get(locale, REASONS["en"])["consignee_not_home"],
        "next_step": NEXT_STEP.get(locale, NEXT_STEP["en"]),
        "tracking_url": f"{base_url.rstrip('/')}/t/EXAMPLE",
        "preferences_url": f"{base_url.rstrip('/')}/p/EXAMPLE",
        "proof_url": f"{base_url.rstrip('/')}/t/EXAMPLE",
        "support_email": (merchant.branding or {}).get("support_email") or "",
        "support_phone": (merchant.branding or {}).get("support_phone") or "",
        "destination": destination_text(
            {"kind": "neighbour", "detail": {"name": "Grace", "house_number": "12"}}, locale
        ),
        "held_until": _held_until("2026-11-30", locale),
        "instructions": "Door code 1234",
    }


def _line_of(source: str, name: str) -> int:
    for number, line in enumerate(source.splitlines(), start=1):
        if re.search(rf"\b{re.escape(name)}\b", line):
            return number
    return 1


def template_errors(source: str, field: str) -> list[FieldError]:
    """Syntax errors and unknown variables in ``source``, each naming its line."""
    try:
        ast = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        return [FieldError(field, f"line {exc.lineno}: {exc.message}", "syntax")]
    unknown = sorted(meta.find_undeclared_variables(ast) - set(VARIABLES))
    return [
        FieldError(
            field,
            f"line {_line_of(source, name)}: unknown variable '{name}'",
            "unknown_variable",
        )
        for name in unknown
    ]


@lru_cache(maxsize=512)
def _compiled(source: str) -> Template:
    return _ENV.from_string(source)


def render_text(source: str, context: dict[str, Any]) -> str:
    return _compiled(source).render(**context).strip()


def _default_source(trigger: Trigger, channel: str, locale: str) -> tuple[str, str]:
    subject, email, short = DEFAULTS[locale][trigger]
    return subject, (email if channel == Channel.EMAIL.value else short)


def template_source(
    session: Session, merchant_id: str, trigger: Trigger, channel: str, locale: str
) -> tuple[str, str]:
    """The merchant's template for this trigger, channel and language, else the default.
    Looked up once per session (a relay batch renders many messages with one template)."""
    cache: dict[tuple[str, str, str, str], tuple[str, str]] = session.info.setdefault(
        "doorstep_templates", {}
    )
    key = (merchant_id, trigger.value, channel, locale)
    if key not in cache:
        cache[key] = _template_source(session, merchant_id, trigger, channel, locale)
    return cache[key]


def _template_source(
    session: Session, merchant_id: str, trigger: Trigger, channel: str, locale: str
) -> tuple[str, str]:
    own = session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.merchant_id == merchant_id,
            MessageTemplate.trigger == trigger.value,
            MessageTemplate.channel == channel,
            MessageTemplate.locale == locale,
        )
    )
    subject, body = _default_source(trigger, channel, locale)
    if own is None:
        return subject, body
    return (own.subject or subject), own.body


def render_message(
    session: Session,
    merchant: Merchant,
    trigger: Trigger,
    channel: str,
    locale: str,
    context: dict[str, Any],
) -> Rendered:
    locale = pick_locale(locale)
    subject, body = template_source(session, merchant.id, trigger, channel, locale)
    return Rendered(render_text(subject, context), render_text(body, context), locale)


def _check_key(trigger: str, channel: str, locale: str) -> Trigger:
    errors: list[FieldError] = []
    if trigger not in {t.value for t in Trigger}:
        errors.append(FieldError("trigger", f"one of {', '.join(t.value for t in Trigger)}"))
    if channel not in ("email", "sms", "chat"):
        errors.append(FieldError("channel", "one of email, sms, chat"))
    if locale not in LOCALES:
        errors.append(FieldError("locale", f"one of {', '.join(LOCALES)}"))
    if errors:
        raise Unprocessable("unknown template", errors=errors)
    return Trigger(trigger)


def _render_errors(source: str, field: str, context: dict[str, Any]) -> list[FieldError]:
    """Render against the sample order: what the sandbox refuses is refused at save time."""
    try:
        render_text(source, context)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f"line {line}: " if line else ""
        return [FieldError(field, f"{where}{exc.message or exc}", "render")]
    except (TypeError, ValueError, ArithmeticError) as exc:
        return [FieldError(field, f"cannot render: {exc}", "render")]
    return []


def validate_template(subject: str | None, body: str, context: dict[str, Any]) -> None:
    """Refuse (422) a syntax error, an unknown variable or anything the sandbox refuses."""
    errors = template_errors(body, "body")
    if subject is not None:
        errors += template_errors(subject, "subject")
    if not errors:
        errors += _render_errors(body, "body", context)
        if subject is not None:
            errors += _render_errors(subject, "subject", context)
    if errors:
        raise Unprocessable("the template does not render", errors=errors)


def save_template(
    session: Session,
    clock: Clock,
    merchant: Merchant,
    *,
    trigger: str,
    channel: str,
    locale: str,
    subject: str | None,
    body: str,
) -> MessageTemplate:
    """Create or replace the merchant's template; refused with 422 if it would not render."""
    _check_key(trigger, channel, locale)
    validate_template(subject, body, sample_context(merchant, locale, "http://localhost"))
    merchant_id = merchant.id
    row = session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.merchant_id == merchant_id,
            MessageTemplate.trigger == trigger,
            MessageTemplate.channel == channel,
            MessageTemplate.locale == locale,
        )
    )
    now = clock.now()
    if row is None:
        row = MessageTemplate(
            id=new_id("tpl", now),
            merchant_id=merchant_id,
            trigger=trigger,
            channel=channel,
            locale=locale,
        )
        session.add(row)
    row.subject = subject
    row.body = body
    row.updated_at = now
    return row


def list_templates(session: Session, merchant_id: str) -> list[MessageTemplate]:
    return list(
        session.scalars(
            select(MessageTemplate)
            .where(MessageTemplate.merchant_id == merchant_id)
            .order_by(MessageTemplate.trigger, MessageTemplate.channel, MessageTemplate.locale)
        )
    )


def delete_template(
    session: Session, merchant_id: str, trigger: str, channel: str, locale: str
) -> None:
    row = session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.merchant_id == merchant_id,
            MessageTemplate.trigger == trigger,
            MessageTemplate.channel == channel,
            MessageTemplate.locale == locale,
        )
    )
    if row is None:
        raise NotFound("no such template")
    session.delete(row)


def preview(
    session: Session,
    merchant: Merchant,
    base_url: str,
    *,
    trigger: str,
    channel: str,
    locale: str,
    subject: str | None = None,
    body: str | None = None,
) -> dict[str, Any]:
    """Render a template (the given text, else the saved one, else the default) against a
    sample order; an SMS answer also gives its length in segments."""
    trig = _check_key(trigger, channel, locale)
    context = sample_context(merchant, locale, base_url)
    if body is not None:
        validate_template(subject, body, context)
    saved_subject, saved_body = template_source(session, merchant.id, trig, channel, locale)
    text = render_text(body if body is not None else saved_body, context)
    out: dict[str, Any] = {
        "subject": render_text(subject or saved_subject, context),
        "body": text,
    }
    if channel != Channel.EMAIL.value:
        length = sms_length(text)
        out["sms"] = {
            "encoding": length.encoding,
            "units": length.units,
            "segments": length.segments,
        }
    return out
