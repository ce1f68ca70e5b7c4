"""The tracking page's words: a :class:`~doorstep.domain.tracking.view.TrackingView` shaped into
translated, formatted texts (:func:`present`). The page template, its live updates over SSE and
nothing else use them, so the page rendered by the server and the page updated by JavaScript
always read the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_interval, format_time

from doorstep.domain.orders.status import Status
from doorstep.domain.tracking.view import TrackingView
from doorstep.web.i18n import N_, translations

HEADLINES: dict[Status, str] = {
    Status.PENDING: N_("Your order has been received"),
    Status.SCHEDULED: N_("Your delivery is scheduled"),
    Status.PICKED_UP: N_("Your parcel has been picked up"),
    Status.IN_TRANSIT: N_("Your parcel is on its way"),
    Status.OUT_FOR_DELIVERY: N_("Your parcel is out for delivery"),
    Status.DELIVERY_DELAYED: N_("Your delivery is running late"),
    Status.DELIVERED: N_("Your parcel has been delivered"),
    Status.DELIVERY_FAILED: N_("We could not deliver your parcel"),
    Status.READY_FOR_PICKUP: N_("Your parcel is ready for pickup"),
    Status.RETURN_TO_SENDER: N_("Your parcel is going back to the sender"),
    Status.CANCELLED: N_("This delivery was cancelled"),
    Status.ON_HOLD: N_("Your delivery is on hold"),
}

TIMELINE_TEXTS: dict[str, str] = {
    "order.created": N_("Order received"),
    "order.cancelled": N_("Delivery cancelled"),
    "delivery.scheduled": N_("Delivery scheduled"),
    "delivery.picked_up": N_("Parcel picked up"),
    "delivery.in_transit": N_("Parcel on its way"),
    "delivery.out_for_delivery": N_("Out for delivery"),
    "delivery.delayed": N_("Delivery running late"),
    "delivery.delivered": N_("Delivered"),
    "delivery.failed": N_("Delivery attempt failed"),
    "delivery.ready_for_pickup": N_("Ready for pickup"),
    "delivery.return_to_sender": N_("Returning to the sender"),
    "delivery.on_hold": N_("Delivery on hold"),
    "delivery.rescheduled": N_("Delivery time changed"),
    "order.rescheduled": N_("Delivery rescheduled"),
    "order.window_changed": N_("Delivery window changed"),
    "order.redirected": N_("Delivery redirected"),
    "order.instructions_changed": N_("Delivery instructions changed"),
    "order.held": N_("Delivery held"),
    "stop.arrived": N_("The driver has arrived"),
}

REASON_TEXTS: dict[str, str] = {
    "consignee_not_home": N_("Nobody was home"),
    "consignee_not_available": N_("Nobody was available"),
    "consignee_access_restricted": N_("The driver could not get in"),
    "consignee_incorrect_address": N_("The address could not be found"),
    "carrier_address_not_found": N_("The address could not be found"),
    "consignee_refused": N_("The parcel was refused"),
    "consignee_business_closed": N_("The business was closed"),
    "carrier_not_enough_time": N_("The driver ran out of time"),
    "carrier_vehicle_issue": N_("The vehicle broke down"),
    "weather_delay": N_("Bad weather"),
    "carrier_damaged_parcel": N_("The parcel was damaged"),
}


@dataclass(frozen=True)
class Texts:
    """Gettext bound to one language, with named ``%(name)s`` placeholders."""

    lang: str

    def __call__(self, message: str, **values: Any) -> str:
        text = translations(self.lang).gettext(message)
        return text % values if values else text

    def n(self, singular: str, plural: str, count: int, **values: Any) -> str:
        text = translations(self.lang).ngettext(singular, plural, count)
        return text % {"count": count, **values}


# Dates and times in English read the British way (24-hour clock, day before month).
FORMAT_LOCALES = {"en": "en_GB"}


def _fmt(lang: str) -> str:
    return FORMAT_LOCALES.get(lang, lang)


def _local(value: datetime, tz: ZoneInfo) -> datetime:
    return value.astimezone(tz)


def time_text(value: datetime, tz: ZoneInfo, lang: str) -> str:
    return format_time(_local(value, tz), "short", locale=_fmt(lang))


def range_text(start: datetime, end: datetime, tz: ZoneInfo, lang: str) -> str:
    return format_interval(_local(start, tz), _local(end, tz), "Hm", locale=_fmt(lang))


def day_text(value: datetime, tz: ZoneInfo, lang: str) -> str:
    return format_date(_local(value, tz).date(), "full", locale=_fmt(lang))


def short_day(value: datetime, tz: ZoneInfo, lang: str) -> str:
    return format_date(_local(value, tz).date(), "medium", locale=_fmt(lang))


def present(view: TrackingView, lang: str) -> dict[str, Any]:
    """The page's texts and live values (JSON-ready) for ``view`` in ``lang``."""
    _ = Texts(lang)
    tz = ZoneInfo(view.merchant_timezone)
    window_text = window_day = ""
    if view.window_start is not None and view.window_end is not None:
        window_day = day_text(view.window_start, tz, lang)
        window_text = range_text(view.window_start, view.window_end, tz, lang)
    eta_text = ""
    if view.eta is not None:
        eta = view.eta
        if eta.earliest is not None and eta.latest is not None:
            eta_text = _(
                "Between %(start)s and %(end)s",
                start=time_text(eta.earliest, tz, lang),
                end=time_text(eta.latest, tz, lang),
            )
        else:
            eta_text = _("Around %(time)s", time=time_text(eta.eta, tz, lang))
    stops_text = ""
    if view.stops_before is not None and view.status in (
        Status.OUT_FOR_DELIVERY,
        Status.DELIVERY_DELAYED,
    ):
        if view.stops_before == 0:
            stops_text = _("You are the next stop")
        else:
            stops_text = _.n(
                "%(count)s stop before yours", "%(count)s stops before yours", view.stops_before
            )
    driver_text = ""
    if view.driver_first_name and view.is_active:
        driver_text = _("Your driver today is %(name)s", name=view.driver_first_name)
    reason_text = ""
    if view.reason and view.reason in REASON_TEXTS:
        reason_text = _(REASON_TEXTS[view.reason])
    delivered_text = ""
    if view.status is Status.DELIVERED and view.delivered_at is not None:
        delivered_text = _(
            "Delivered on %(day)s at %(time)s",
            day=day_text(view.delivered_at, tz, lang),
            time=time_text(view.delivered_at, tz, lang),
        )
    received_text = ""
    if view.proof is not None and view.proof.received_by:
        received_text = _("Received by %(name)s", name=view.proof.received_by)
    timeline = [
        {
            "when": f"{short_day(e.occurred_at, tz, lang)}, {time_text(e.occurred_at, tz, lang)}",
            "datetime": e.occurred_at.isoformat(),
            "text": _(TIMELINE_TEXTS[e.type]),
            "reason": _(REASON_TEXTS[e.reason]) if e.reason in REASON_TEXTS else "",
        }
        for e in reversed(view.timeline)
        if e.type in TIMELINE_TEXTS
    ]
    driver = None
    if view.driver is not None:
        driver = {"lat": view.driver.lat, "lon": view.driver.lon, "heading": view.driver.heading}
    return {
        "status": view.status.value,
        "tag": view.tag,
        "headline": _(HEADLINES[view.status]),
        "reason_text": reason_text,
        "window_day": window_day,
        "window_text": window_text,
        "eta_text": eta_text,
        "eta_source": view.eta.source if view.eta is not None else "",
        "stops_text": stops_text,
        "driver_text": driver_text,
        "driver_visible": view.driver_visible,
        "driver": driver,
        "delivered_text": delivered_text,
        "received_text": received_text,
        "pin": view.pin or "",
        "active": view.is_active,
        "timeline": timeline,
        "seq": view.last_seq,
    }
