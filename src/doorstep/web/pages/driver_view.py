"""What the driver app shows: today's routes with their stops in order, read in one go, with
what recipients changed (redirect, hold, new instructions), in the driver's language; and the
signed-in driver behind the session cookie.

The language is the one the driver chose with the page's switch (kept in the session), else
the browser's ``Accept-Language``, else the merchant's locale, else English
(:func:`driver_language`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.accounts.models import Merchant
from doorstep.domain.dispatch.execution import FAILURE_REASONS
from doorstep.domain.dispatch.models import Driver, Route
from doorstep.domain.dispatch.publishing import driver_routes
from doorstep.domain.dispatch.recipient_changes import RecipientChangeOut, recipient_changes
from doorstep.domain.orders.models import Order, Parcel
from doorstep.web.i18n import N_, choose_language, supported, translations
from doorstep.web.pages.tracking_view import Texts, time_text

SESSION_LANGUAGE = "driver_lang"

STATUS_LABELS = {
    "planned": N_("To do"),
    "en_route": N_("On the way"),
    "arrived": N_("Arrived"),
    "done": N_("Delivered"),
    "failed": N_("Not delivered"),
    "skipped": N_("Skipped"),
}


def n(singular: str, plural: str) -> tuple[str, str]:
    """Mark a plural message for translation (extracted like the templates' ``_.n``)."""
    return singular, plural


# The words app.js shows, sent with the page (``#driver-texts``) in the driver's language.
# Entries with two texts are plural forms (one, other) of a ``%(count)s`` message.
JS_TEXTS: dict[str, str | tuple[str, str]] = {
    "waiting": N_("waiting to send"),
    "not_started": N_("Not started"),
    "under_way": N_("Under way · %(count)s to go"),
    "finished": N_("Finished"),
    "refused": N_("refused"),
    "start_refused": N_("Could not start the route: %(detail)s"),
    "arrive_refused": N_("Arrival not recorded: %(detail)s"),
    "deliver_refused": N_("Delivery not recorded: %(detail)s"),
    "fail_refused": N_("Failed attempt not recorded: %(detail)s"),
    "offline_queued": n(
        "Offline. %(count)s action saved on this phone, sent when the network returns.",
        "Offline. %(count)s actions saved on this phone, sent when the network returns.",
    ),
    "offline": N_("Offline. What you record is saved on this phone."),
    "sending": n("Sending %(count)s saved action…", "Sending %(count)s saved actions…"),
    "replayed": n("%(count)s saved action sent.", "%(count)s saved actions sent."),
    "signed_out": N_("You are signed out. Sign in again: your saved actions are kept."),
    "out_of_date": N_("This page is out of date. Reload it: your saved actions are kept."),
    "stop_label": N_("Stop %(number)s: %(reference)s"),
    "pin_hint": N_("Type the recipient's PIN (the digits they show you)."),
    "changed": N_("A recipient changed a delivery. The list is up to date."),
    # Refusals by the problem's field error code (else the server's own words are shown).
    "code_pin_required": N_("the recipient's PIN is required"),
    "code_pin_mismatch": N_("wrong PIN"),
    "code_invalid_image": N_("the photo is not a readable image"),
    "code_too_large": N_("the photo is too large"),
    "code_required": N_("a photo or signature is required"),
    "code_invalid_reason": N_("choose a reason from the list"),
    "conflict": N_("already recorded, or the route is not under way"),
    "not_found": N_("this stop is no longer on your route"),
}


@dataclass(frozen=True)
class SignedInDriver:
    """The driver behind a driver-app session."""

    id: str
    merchant_id: str
    name: str
    device_id: str | None
    merchant_name: str
    tz: ZoneInfo
    merchant_locale: str | None = None

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.split() else self.name


def load_signed_in(session: Session, driver_id: str) -> SignedInDriver | None:
    """The driver if they still exist and are active (a deactivated driver is signed out)."""
    driver = session.get(Driver, driver_id)
    if driver is None or not driver.active:
        return None
    merchant = session.get(Merchant, driver.merchant_id)
    if merchant is None:  # pragma: no cover - the foreign key guarantees it
        return None
    return SignedInDriver(
        driver.id,
        driver.merchant_id,
        driver.name,
        driver.device_id,
        merchant.name,
        ZoneInfo(merchant.timezone),
        merchant.locale,
    )


@dataclass(frozen=True)
class StopCard:
    id: str
    number: int
    status: str
    status_label: str
    reference: str
    recipient: str
    phone: str | None
    address: str
    window: str | None
    planned: str | None
    instructions: str | None
    parcels: str
    requires_pin: bool
    geo_url: str
    maps_url: str
    change: RecipientChangeOut | None = None
    changes: tuple[str, ...] = ()  # what the recipient changed, in the driver's words
    instructions_changed: str | None = None  # "changed at 10:42", when they were

    @property
    def do_not_deliver(self) -> bool:
        return self.change is not None and self.change.do_not_deliver


@dataclass(frozen=True)
class RouteCard:
    id: str
    status: str
    start: str | None
    stops: list[StopCard]
    stops_text: str = ""  # "3 stops", in the driver's language

    @property
    def open_stops(self) -> int:
        return sum(1 for s in self.stops if s.status in ("planned", "en_route", "arrived"))


def _hm(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).strftime("%H:%M") if value is not None else None


def _parcels(parcels: list[Parcel], count: int, weight: float, _: Texts) -> str:
    text = _.n("%(count)s parcel", "%(count)s parcels", count)
    if weight:
        text += f" · {weight:g} kg"
    if any(p.fragile for p in parcels):
        text += " · " + _("fragile")
    return text


def today(
    session: Session, clock: Clock, me: SignedInDriver, lang: str = "en"
) -> tuple[str, list[RouteCard]]:
    """The day's label and the driver's published routes of today, stops in order, with what
    recipients changed, in ``lang``."""
    day = driver_routes(session, clock, me.merchant_id, me.id, None)
    orders = [view.orders[s.order_id] for route, view in day.routes for s in route.stops]
    order_ids = [o.id for o in orders]
    parcels: dict[str, list[Parcel]] = {}
    if order_ids:
        for parcel in session.scalars(
            select(Parcel).where(
                Parcel.merchant_id == me.merchant_id, Parcel.order_id.in_(order_ids)
            )
        ):
            parcels.setdefault(parcel.order_id, []).append(parcel)
    changes = recipient_changes(session, me.merchant_id, orders, me.tz)
    _ = Texts(lang)
    cards = [
        _route_card(route, view.orders, parcels, changes, me.tz, _) for route, view in day.routes
    ]
    return format_date(day.day, "full", locale=_locale(lang)), cards


def _locale(lang: str) -> str:
    return "en_GB" if lang == "en" else lang


def change_texts(change: RecipientChangeOut | None, _: Texts, lang: str) -> tuple[str, ...]:
    """What the recipient changed, as sentences for the stop card."""
    if change is None:
        return ()
    out: list[str] = []
    if change.do_not_deliver:
        if change.held_until is not None:
            day = format_date(change.held_until, "medium", locale=_locale(lang))
            out.append(_("Do not deliver: on hold until %(day)s.", day=day))
        else:
            out.append(_("Do not deliver: this delivery is on hold."))
    redirect = change.redirect
    if redirect is not None and redirect.kind == "neighbour":
        out.append(
            _(
                "Leave it with the neighbour %(neighbour)s, house number %(house)s.",
                neighbour=redirect.name or "",
                house=redirect.house_number or "",
            )
        )
    elif redirect is not None and redirect.kind == "safe_place":
        out.append(_("Leave it at the safe place: %(place)s.", place=redirect.place or ""))
        out.append(
            _("Take a photo of the parcel where you leave it (the recipient agreed).")
            if redirect.photo_consent
            else _("The recipient did not agree to a photo.")
        )
    elif redirect is not None:
        out.append(_("Deliver to the pickup point %(point)s.", point=redirect.name or ""))
    return tuple(out)


def _route_card(
    route: Route,
    orders: dict[str, Order],
    parcels: dict[str, list[Parcel]],
    changes: dict[str, RecipientChangeOut],
    tz: ZoneInfo,
    _: Texts,
) -> RouteCard:
    stops = []
    for n, stop in enumerate(route.stops, start=1):
        order = orders[stop.order_id]
        change = changes.get(order.id)
        address = ", ".join(p for p in (order.address_line1, order.address_line2, order.city) if p)
        window = None
        if order.window_start is not None and order.window_end is not None:
            window = f"{_hm(order.window_start, tz)}\u2013{_hm(order.window_end, tz)}"
        where = order.address_line1
        redirect = change.redirect if change is not None else None
        if redirect is not None and redirect.kind == "neighbour" and redirect.house_number:
            where = f"{order.address_line1} ({redirect.house_number})"
        label = quote(f"{order.reference} {where}")
        changed_at = change.instructions_changed_at if change is not None else None
        stops.append(
            StopCard(
                id=stop.id,
                number=n,
                status=stop.status,
                status_label=_(STATUS_LABELS.get(stop.status, stop.status)),
                reference=order.reference,
                recipient=order.recipient_name,
                phone=order.recipient_phone,
                address=address,
                window=window,
                planned=_hm(stop.eta or stop.planned_arrival, tz),
                instructions=order.instructions,
                parcels=_parcels(parcels.get(order.id, []), order.parcel_count, order.weight_kg, _),
                requires_pin=order.requires_pin,
                geo_url=f"geo:{order.lat},{order.lon}?q={order.lat},{order.lon}({label})",
                maps_url=(
                    "https://www.openstreetmap.org/directions?to="
                    f"{order.lat}%2C{order.lon}#map=17/{order.lat}/{order.lon}"
                ),
                change=change,
                changes=change_texts(change, _, _.lang),
                instructions_changed=_(
                    "changed by the recipient at %(time)s",
                    time=time_text(changed_at, tz, _.lang),
                )
                if changed_at is not None
                else None,
            )
        )
    count = _.n("%(count)s stop", "%(count)s stops", len(stops))
    return RouteCard(route.id, route.status, _hm(route.start_at, tz), stops, count)


def failure_reasons(lang: str = "en") -> list[tuple[str, str]]:
    """(value, label) of the reasons the app offers for a failed attempt, in ``lang``."""
    _ = Texts(lang)
    return [(reason.value, _(label)) for reason, label in FAILURE_REASONS.items()]


def driver_language(chosen: str | None, accept_language: str | None, merchant: str | None) -> str:
    """The app's language: the driver's choice, the browser's, the merchant's, English."""
    return choose_language(chosen, accept_language, merchant)


def js_texts(lang: str) -> dict[str, Any]:
    """:data:`JS_TEXTS` in ``lang``; plural entries as ``{"one": ..., "other": ...}`` with
    ``%(count)s`` left for the script (it picks the form with ``Intl.PluralRules``)."""
    _ = Texts(lang)
    out: dict[str, Any] = {}
    for key, message in JS_TEXTS.items():
        if isinstance(message, tuple):
            one, other = message
            gettext = translations(lang)
            out[key] = {
                "one": gettext.ngettext(one, other, 1),
                "other": gettext.ngettext(one, other, 2),
            }
        else:
            out[key] = _(message)
    out["labels"] = {status: _(label) for status, label in STATUS_LABELS.items()}
    return out


def language_of(value: str | None) -> str | None:
    """A language the switch may set (en, fr, fi), or None."""
    return supported(value)


def state_stamp(session: Session, clock: Clock, me: SignedInDriver) -> str:
    """A short fingerprint of what others can change on the driver's day: the stops of each
    route in order, and each order's address, window, instructions, hold and redirect. The
    driver's own actions leave it alone, so the page reloads only for news."""
    day = driver_routes(session, clock, me.merchant_id, me.id, None)
    orders = [view.orders[s.order_id] for route, view in day.routes for s in route.stops]
    changes = recipient_changes(session, me.merchant_id, orders, me.tz)
    parts: list[Any] = []
    for route, view in day.routes:
        parts.append(route.id)
        for stop in route.stops:
            order = view.orders[stop.order_id]
            change = changes.get(order.id)
            parts.append(
                [
                    stop.id,
                    order.address_line1,
                    order.lat,
                    order.lon,
                    order.instructions,
                    order.window_start.isoformat() if order.window_start else None,
                    order.window_end.isoformat() if order.window_end else None,
                    change.model_dump(mode="json") if change is not None else None,
                ]
            )
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
