"""How the dispatch map and route list mark what is wrong or has happened: the styles of the
stop statuses a dispatcher follows (each a colour *and* a shape and a word, never colour
alone), and the orders a plan left out, as cards grouped by reason with their address and
window, and as map points.

Pure shaping of an already loaded :class:`~doorstep.domain.dispatch.views.PlanView`; used by
:mod:`doorstep.web.pages.dispatch_view` and the map data handler.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from doorstep.domain.dispatch import views

__all__ = [
    "STOP_STATUS",
    "StatusMark",
    "UnassignedCard",
    "UnassignedGroup",
    "status_mark",
    "unassigned_features",
    "unassigned_groups",
]

DASH = "\u2013"


@dataclass(frozen=True)
class StatusMark:
    """How a stop in this status looks: ``key`` names the CSS modifier (``stop-marker--KEY``,
    ``status-tag--KEY``), ``label`` the word shown, ``glyph`` the symbol on the marker."""

    key: str
    label: str
    glyph: str


# The statuses a dispatcher follows during the day. Planned/scheduled stops need no mark.
STOP_STATUS: dict[str, StatusMark] = {
    "out_for_delivery": StatusMark("out", "Out for delivery", "\u279c"),  # ➜
    "delivery_delayed": StatusMark("delayed", "Delayed", "\u25f7"),  # ◷ (a clock face)
    "delivered": StatusMark("delivered", "Delivered", "\u2713"),  # ✓
    "delivery_failed": StatusMark("failed", "Failed", "\u2715"),  # ✕
}


def status_mark(order_status: str) -> StatusMark | None:
    """The mark of an order status, or None for statuses the map does not single out."""
    return STOP_STATUS.get(order_status)


# Unassigned reasons in the order their groups are listed (the most actionable first);
# unknown codes follow in alphabetical order.
REASON_ORDER: tuple[str, ...] = (
    "needs_location",
    "window_impossible",
    "outside_every_shift",
    "no_vehicle_time_left",
    "over_capacity",
    "needs_missing_skill",
    "unreachable",
    "no_vehicle_at_depot",
)


@dataclass(frozen=True)
class UnassignedCard:
    """An order the plan left out, as its card and map point show it."""

    order_id: str
    reference: str
    reason: str
    detail: str
    address: str
    window: str  # "HH:MM-HH:MM" (en dash) local, or "" when any time suits
    lat: float | None
    lon: float | None
    # Where the geocoder thought the address might be (``needs_location`` orders).
    candidates: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class UnassignedGroup:
    """The left-out orders that share a reason code."""

    reason: str
    cards: list[UnassignedCard]


def _hhmm(value: datetime | None, view: views.PlanView) -> str:
    return value.astimezone(view.tz).strftime("%H:%M") if value is not None else ""


def _card(item: dict[str, Any], view: views.PlanView) -> UnassignedCard:
    order = view.orders.get(item["order_id"])
    address = window = ""
    lat = lon = None
    if order is not None:
        parts = [order.address_line1, order.address_line2, order.postal_code, order.city]
        address = ", ".join(p for p in parts if p)
        if order.window_start is not None and order.window_end is not None:
            window = f"{_hhmm(order.window_start, view)}{DASH}{_hhmm(order.window_end, view)}"
        lat, lon = order.lat, order.lon
    return UnassignedCard(
        order_id=item["order_id"],
        reference=str(item.get("reference") or (order.reference if order else "")),
        reason=str(item.get("reason") or "unknown"),
        detail=str(item.get("detail") or ""),
        address=address,
        window=window,
        lat=lat,
        lon=lon,
        candidates=list(item.get("candidates") or []),
    )


def unassigned_groups(view: views.PlanView) -> list[UnassignedGroup]:
    """The plan's left-out orders grouped by reason (see :data:`REASON_ORDER`), each group's
    cards by reference."""
    by_reason: dict[str, list[UnassignedCard]] = {}
    for item in view.plan.unassigned or []:
        card = _card(item, view)
        by_reason.setdefault(card.reason, []).append(card)

    def rank(code: str) -> tuple[int, str]:
        return (REASON_ORDER.index(code) if code in REASON_ORDER else len(REASON_ORDER), code)

    return [
        UnassignedGroup(code, sorted(by_reason[code], key=lambda c: c.reference))
        for code in sorted(by_reason, key=rank)
    ]


def unassigned_features(
    groups: list[UnassignedGroup], labels: dict[str, str]
) -> list[dict[str, Any]]:
    """GeoJSON points (``kind: unassigned``) for the left-out orders that have coordinates,
    with their reason (code and ``reason_label`` from ``labels``), address and window."""
    features = []
    for group in groups:
        for card in group.cards:
            if card.lat is None or card.lon is None:
                continue
            features.append(
                {
                    "type": "Feature",
                    "geometry": {
                        "type": "Point",
                        "coordinates": [round(card.lon, 6), round(card.lat, 6)],
                    },
                    "properties": {
                        "kind": "unassigned",
                        "order_id": card.order_id,
                        "reference": card.reference,
                        "reason": card.reason,
                        "reason_label": labels.get(card.reason, card.reason),
                        "detail": card.detail,
                        "address": card.address,
                        "window": card.window,
                    },
                }
            )
    return features
