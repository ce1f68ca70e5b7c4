"""The tracking page's "Change delivery" section: recipient self-service without an account.

Four plain HTML forms (reschedule, redirect, hold, instructions) that POST to
``/t/{token}/{action}`` and come back with ``303 See Other`` to the page with a confirmation,
so they work without JavaScript. The domain decides everything
(:func:`~doorstep.domain.slots.selfservice.self_service_state` and
:func:`~doorstep.domain.slots.selfservice.recipient_change`); this module only shapes the
state into translated texts, reads the forms and guards them.

Forgery: there is no session and no cookie, so the guard is stateless. Each form carries a
``form_token``, an HMAC of the tracking token under the server's secret (a forged form from
elsewhere cannot carry it without first reading the page); a POST whose ``Origin`` is another
site (or ``null``) or whose ``Sec-Fetch-Site`` says ``cross-site`` is refused. The page sends
``Referrer-Policy: same-origin`` so a browser's own POST carries the real ``Origin``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from babel.numbers import format_currency
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.errors import DomainError
from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import Status
from doorstep.domain.slots.config import slot_settings
from doorstep.domain.slots.schemas import (
    HoldIn,
    InstructionsIn,
    NeighbourIn,
    RedirectIn,
    RescheduleIn,
    SafePlaceIn,
)
from doorstep.domain.slots.selfservice import (
    Change,
    SelfServiceClosed,
    SelfServiceState,
    self_service_state,
)
from doorstep.settings import Settings
from doorstep.web.i18n import N_
from doorstep.web.pages.tracking_view import Texts, day_text, range_text

__all__ = [
    "ACTIONS",
    "FORM_FIELD",
    "FormErrors",
    "FormRefused",
    "Options",
    "form_token",
    "form_token_ok",
    "load_options",
    "origin_ok",
    "parse_change",
    "present_options",
    "refusal",
]

FORM_FIELD = "form_token"
ACTIONS = ("reschedule", "redirect", "hold", "instructions")

# Limits of the domain's input models, repeated on the form fields (maxlength).
NAME_MAX = 100
HOUSE_MAX = 20
PLACE_MAX = 200
INSTRUCTIONS_MAX = 1000

DONE_TEXTS: dict[str, str] = {
    "reschedule": N_("Your delivery has been rescheduled."),
    "redirect": N_("Thank you: the driver will leave your parcel as you asked."),
    "hold": N_("Your delivery is on hold while you are away."),
    "instructions": N_("Your delivery instructions have been saved."),
}

# The domain's reasons for closing (domain/slots/selfservice.py closed_reason), in words the
# recipient reads in their language.
CLOSED_TEXTS: dict[str, str] = {
    "the driver is already on the way with your parcel": N_(
        "The driver is already on the way with your parcel."
    ),
    "the driver is already on the way to you": N_("The driver is already on the way to you."),
}
CLOSED_BEFORE_WINDOW = re.compile(r"changes close (\d+) minutes before the delivery window")

POINT_KINDS: dict[str, str] = {"shop": N_("Shop"), "locker": N_("Parcel locker")}


def _secret_digest(secret: str, token: str) -> bytes:
    return hmac.new(secret.encode(), b"tracking-form:" + token.encode(), hashlib.sha256).digest()


def form_token(secret: str, token: str) -> str:
    """The forms' anti-forgery value for one tracking link (stateless, never stored)."""
    return base64.urlsafe_b64encode(_secret_digest(secret, token)).decode().rstrip("=")


def form_token_ok(secret: str, token: str, submitted: str | None) -> bool:
    """Whether ``submitted`` is this link's form token (constant-time)."""
    if not submitted:
        return False
    return hmac.compare_digest(form_token(secret, token).encode(), submitted.encode())


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_ok(headers: Any, own_url: str, base_url: str | None) -> bool:
    """False for a POST a browser says came from another site: ``Sec-Fetch-Site: cross-site``,
    or an ``Origin`` (``null`` included) that is neither this server's address as requested
    nor the configured base URL. A client that sends neither header (curl) passes on to the
    form token check."""
    if headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    allowed = {_origin_of(own_url)}
    if base_url:
        allowed.add(_origin_of(base_url))
    return origin.strip().lower() in allowed


# --- what the page shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """The self-service state of one order with what the hold form needs."""

    state: SelfServiceState
    today: date
    hold_max: date
    timezone: str


def load_options(session: Session, clock: Clock, settings: Settings, order: Order) -> Options:
    merchant = session.get(Merchant, order.merchant_id)
    assert merchant is not None
    state = self_service_state(session, clock, settings, order)
    today = clock.now().astimezone(ZoneInfo(merchant.timezone)).date()
    longest = slot_settings(merchant).max_hold_days
    return Options(state, today, today + timedelta(days=longest), merchant.timezone)


def closed_text(reason: str | None, _: Texts) -> str:
    """The domain's reason for refusing changes, translated."""
    if reason in CLOSED_TEXTS:
        return _(CLOSED_TEXTS[reason])
    if reason is not None and (match := CLOSED_BEFORE_WINDOW.fullmatch(reason)):
        return _(
            "Changes close %(minutes)s minutes before the delivery window.",
            minutes=match.group(1),
        )
    return _("This delivery can no longer be changed.")


def window_value(calendar_id: str, start: datetime) -> str:
    return f"{calendar_id}|{start.isoformat()}"


def _fee_text(cents: int, currency: str, lang: str, _: Texts) -> str:
    if cents <= 0:
        return _("free")
    locale = {"en": "en_GB"}.get(lang, lang)
    return format_currency(cents / 100, currency, locale=locale)


@dataclass
class FormErrors:
    """Errors of the form that was just refused, to show next to its fields."""

    action: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)


def present_options(
    options: Options,
    lang: str,
    status: Status,
    *,
    done: str | None = None,
    errors: FormErrors | None = None,
    values: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The section's texts and choices (for ``tracking/selfservice.html``)."""
    _ = Texts(lang)
    tz = ZoneInfo(options.timezone)
    state = options.state
    days: list[dict[str, Any]] = []
    for window in state.windows:
        label_day = day_text(window.start, tz, lang)
        if not days or days[-1]["date"] != window.date:
            days.append(
                {
                    "date": window.date,
                    "day": label_day,
                    "weekend": window.date.weekday() >= 5,
                    "windows": [],
                }
            )
        days[-1]["windows"].append(
            {
                "value": window_value(window.calendar_id, window.start),
                "time": range_text(window.start, window.end, tz, lang),
                "fee": _fee_text(window.fee.amount_cents, window.fee.currency, lang, _),
            }
        )
    points = [
        {
            "id": p.id,
            "name": p.name,
            "kind": _(POINT_KINDS[p.kind]) if p.kind in POINT_KINDS else "",
            "address": f"{p.address_line1}, {p.city}",
        }
        for p in state.pickup_points
    ]
    choice = state.choice
    redirect_text = ""
    if choice.redirect is not None:
        r = choice.redirect
        if r["kind"] == "neighbour":
            redirect_text = _(
                "Leave it with your neighbour %(neighbour)s, number %(house)s.",
                neighbour=r.get("name", ""),
                house=r.get("house_number", ""),
            )
        elif r["kind"] == "safe_place":
            redirect_text = _("Leave it in a safe place: %(place)s.", place=r.get("place", ""))
        else:
            redirect_text = _("Collect it at %(point)s.", point=r.get("name", ""))
    held_text = ""
    if choice.held_until is not None and status is Status.ON_HOLD:
        held_text = _(
            "Deliveries are on hold until %(day)s.",
            day=day_text(datetime.combine(choice.held_until, datetime.min.time(), tz), tz, lang),
        )
    return {
        "open": state.open,
        "closed_text": "" if state.open else closed_text(state.closed_reason, _),
        "failed": status is Status.DELIVERY_FAILED,
        "days": days,
        "points": points,
        "redirect_text": redirect_text,
        "held_text": held_text,
        "instructions": choice.instructions or "",
        "hold_min": (options.today + timedelta(days=1)).isoformat(),
        "hold_max": options.hold_max.isoformat(),
        "done_text": _(DONE_TEXTS[done]) if done in DONE_TEXTS else "",
        "errors": errors,
        "form_values": values or {},
        "limits": {
            "name": NAME_MAX,
            "house": HOUSE_MAX,
            "place": PLACE_MAX,
            "instructions": INSTRUCTIONS_MAX,
        },
    }


# --- what the forms send -----------------------------------------------------------------------


class FormRefused(Exception):
    """A form the page shows again with its errors (422)."""

    def __init__(self, errors: FormErrors) -> None:
        super().__init__(errors.message)
        self.errors = errors


def _text(form: dict[str, str], name: str) -> str:
    return (form.get(name) or "").strip()


def parse_change(action: str, form: dict[str, str], lang: str) -> Change:
    """The domain input a form asks for, or :class:`FormRefused` with translated errors."""
    _ = Texts(lang)
    if action == "reschedule":
        calendar_id, _sep, start = _text(form, "window").partition("|")
        try:
            when = datetime.fromisoformat(start)
            if when.tzinfo is None or not calendar_id:
                raise ValueError(start)
            return RescheduleIn(calendar_id=calendar_id, start=when)
        except ValueError:
            msg = _("Choose one of the windows offered.")
            raise FormRefused(FormErrors(action, msg, {"window": msg})) from None
    if action == "redirect":
        return _redirect(form, _)
    if action == "hold":
        try:
            until = date.fromisoformat(_text(form, "until"))
        except ValueError:
            msg = _("Enter the date you are back.")
            raise FormRefused(FormErrors(action, msg, {"until": msg})) from None
        return HoldIn(until=until)
    if action == "instructions":
        text = _text(form, "instructions")
        if len(text) > INSTRUCTIONS_MAX:
            msg = _("Instructions can be at most %(count)s characters.", count=INSTRUCTIONS_MAX)
            raise FormRefused(FormErrors(action, msg, {"instructions": msg}))
        return InstructionsIn(instructions=text or None)
    raise ValueError(action)


def _redirect(form: dict[str, str], _: Texts) -> RedirectIn:
    kind = _text(form, "kind")
    errors: dict[str, str] = {}
    if kind == "neighbour":
        name, house = _text(form, "neighbour_name"), _text(form, "house_number")
        if not name or len(name) > NAME_MAX:
            errors["neighbour_name"] = _("Enter your neighbour's name.")
        if not house or len(house) > HOUSE_MAX:
            errors["house_number"] = _("Enter your neighbour's house number.")
        if not errors:
            return RedirectIn(
                kind="neighbour", neighbour=NeighbourIn(name=name, house_number=house)
            )
    elif kind == "safe_place":
        place = _text(form, "place")
        if not place or len(place) > PLACE_MAX:
            errors["place"] = _("Describe the safe place.")
        if form.get("photo_consent") != "yes":
            errors["photo_consent"] = _(
                "The driver must photograph the parcel where it is left: please agree to it."
            )
        if not errors:
            return RedirectIn(
                kind="safe_place", safe_place=SafePlaceIn(place=place, photo_consent=True)
            )
    elif kind == "pickup_point":
        point = _text(form, "pickup_point_id")
        if point:
            return RedirectIn(kind="pickup_point", pickup_point_id=point[:32])
        errors["pickup_point_id"] = _("Choose a pickup point.")
    else:
        errors["kind"] = _("Choose where the parcel should go.")
    first = next(iter(errors.values()))
    raise FormRefused(FormErrors(f"redirect-{kind}" if kind else "redirect", first, errors))


def refusal(action: str, form: dict[str, str], exc: DomainError, lang: str) -> FormErrors:
    """The domain's refusal of a change, in the recipient's words, for the form that sent it."""
    _ = Texts(lang)
    key = action
    if action == "redirect":
        key = f"redirect-{_text(form, 'kind')}"
    if isinstance(exc, SelfServiceClosed):
        return FormErrors(key, _("Too late to change this delivery."))
    fields = {e.field for e in exc.errors}
    if action == "reschedule":
        if "start" in fields and any(e.code == "same_window" for e in exc.errors):
            msg = _("Your delivery is already in that window.")
        else:
            msg = _("That window is no longer available. Please choose another one.")
        return FormErrors(key, msg, {"window": msg})
    if action == "hold":
        msg = _("Choose a date after today and no later than the last date offered.")
        return FormErrors(key, msg, {"until": msg})
    if action == "redirect" and "pickup_point_id" in fields:
        msg = _("Choose a pickup point.")
        return FormErrors(key, msg, {"pickup_point_id": msg})
    return FormErrors(key, _("This change could not be made."))
