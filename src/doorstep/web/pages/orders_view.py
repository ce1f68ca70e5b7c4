"""What the console's orders pages show, in words: statuses, windows, and the order's
timeline (its delivery event log) as sentences a dispatcher reads without knowing the event
names. Pure functions over the rows; no queries."""

# The pages write ranges with an en dash.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.orders.status import EDITABLE, Reason, Status

DASH = "–"

STATUS_LABELS: dict[Status, str] = {
    Status.PENDING: "Pending",
    Status.SCHEDULED: "Scheduled",
    Status.PICKED_UP: "Picked up",
    Status.IN_TRANSIT: "In transit",
    Status.OUT_FOR_DELIVERY: "Out for delivery",
    Status.DELIVERY_DELAYED: "Delayed",
    Status.DELIVERED: "Delivered",
    Status.DELIVERY_FAILED: "Delivery failed",
    Status.READY_FOR_PICKUP: "Ready for pickup",
    Status.RETURN_TO_SENDER: "Returning to sender",
    Status.CANCELLED: "Cancelled",
    Status.ON_HOLD: "On hold",
}

PROBLEM_STATUSES = frozenset({"delivery_failed", "delivery_delayed", "cancelled"})

FIELD_WORDS: dict[str, str] = {
    "recipient.name": "recipient's name",
    "recipient.phone": "phone",
    "recipient.email": "e-mail",
    "recipient.locale": "language",
    "address.line1": "street",
    "address.line2": "address line 2",
    "address.city": "city",
    "address.postal_code": "postal code",
    "address.country": "country",
    "address.lat": "latitude",
    "address.lon": "longitude",
    "instructions": "instructions",
    "service_time_s": "time at the door",
}

ACTOR_WORDS: dict[str, str] = {
    "recipient": "the recipient",
    "driver": "the driver",
    "system": "Doorstep",
    "partner": "the delivery partner",
}


def status_label(status: str) -> str:
    try:
        return STATUS_LABELS[Status(status)]
    except ValueError:
        return status.replace("_", " ").capitalize()


def reason_label(reason: str | None) -> str:
    if not reason:
        return ""
    try:
        text = Reason(reason).value
    except ValueError:
        text = reason
    return text.removeprefix("carrier_").removeprefix("consignee_").replace("_", " ")


def editable(order: Order) -> bool:
    return Status(order.status) in EDITABLE


def window_text(start: datetime | None, end: datetime | None, tz: ZoneInfo) -> str:
    """``Wed 25 Nov, 09:00–11:00`` in the merchant's timezone (``no window`` when none)."""
    if start is None or end is None:
        return "no window"
    s, e = start.astimezone(tz), end.astimezone(tz)
    day = f"{s:%a} {s.day} {s:%b}"
    if s.date() == e.date():
        return f"{day}, {s:%H:%M}–{e:%H:%M}"
    return f"{day} {s:%H:%M} – {e:%a} {e.day} {e:%b} {e:%H:%M}"


def _iso_window(start: Any, end: Any, tz: ZoneInfo) -> str:
    try:
        s = datetime.fromisoformat(start) if isinstance(start, str) else None
        e = datetime.fromisoformat(end) if isinstance(end, str) else None
    except ValueError:
        return DASH
    return window_text(s, e, tz)


@dataclass(frozen=True)
class Entry:
    """One line of the timeline."""

    at: datetime  # local time
    title: str
    detail: str
    who: str
    kind: str  # a CSS modifier: status, change, problem, info


def _who(event: DeliveryEvent, users: Mapping[str, str]) -> str:
    if event.actor_type == "user":
        return users.get(event.actor_id or "", "a console user")
    if event.actor_type == "api_key":
        return f"the API (key {event.actor_id})" if event.actor_id else "the API"
    return ACTOR_WORDS.get(event.actor_type, event.actor_type.replace("_", " "))


def _changes(data: Mapping[str, Any], tz: ZoneInfo) -> str:
    changes = data.get("changes")
    if not isinstance(changes, dict):
        return ""
    parts = []
    if "window.start" in changes or "window.end" in changes:
        start = changes.get("window.start", {})
        end = changes.get("window.end", {})
        before = _iso_window(start.get("from"), end.get("from"), tz) if start or end else DASH
        after = _iso_window(start.get("to"), end.get("to"), tz)
        parts.append(f"window {before} → {after}")
    for name, change in changes.items():
        if name.startswith("window.") or not isinstance(change, dict):
            continue
        words = FIELD_WORDS.get(name, name)
        old, new = change.get("from"), change.get("to")
        if name in ("instructions",) or old is None or new is None:
            parts.append(
                f"{words} {'set' if old is None else 'cleared' if new is None else 'changed'}"
            )
        else:
            parts.append(f"{words} {old} → {new}")
    return "; ".join(parts)


def describe(event: DeliveryEvent, tz: ZoneInfo, users: Mapping[str, str]) -> Entry:
    """One event of an order's log as a line of its timeline."""
    data = event.data or {}
    at = event.occurred_at.astimezone(tz)
    who = _who(event, users)
    kind, title, detail = "info", event.type.replace(".", " ").replace("_", " ").capitalize(), ""
    if event.type == "order.created":
        kind, title = "info", "Order created"
        if data.get("source") == "csv":
            detail = f"from CSV import {data.get('import', '')}".strip()
        elif data.get("reservation_id"):
            detail = "through the API, with a reserved window"
        elif data.get("source") == "api":
            detail = "through the API"
    elif event.type == "order.updated":
        changes = data.get("changes") or {}
        moved = "window.start" in changes or "window.end" in changes
        only_window = moved and all(name.startswith("window.") for name in changes)
        kind, title = "change", "Window moved" if only_window else "Details changed"
        detail = _changes(data, tz)
        if only_window:
            detail = detail.removeprefix("window ")
    elif event.type == "order.rescheduled":
        kind, title = "change", "Window moved"
        by = "the recipient" if data.get("by") == "recipient" else "the merchant"
        detail = f"by {by} to {_iso_window(data.get('window_start'), data.get('window_end'), tz)}"
    elif event.type == "order.redirected":
        kind, title = "change", "Delivery redirected"
        detail = " ".join(str(data.get(k, "")).replace("_", " ") for k in ("kind", "detail"))
    elif event.type == "order.instructions_changed":
        kind, title = "change", "Instructions changed"
    elif event.type == "order.held":
        kind, title = "change", "Held"
        detail = f"until {data['until']}" if data.get("until") else ""
    elif event.type == "delivery.eta_updated":
        title = "Arrival time updated"
        detail = f"{data.get('minutes_away', '?')} min away" if "minutes_away" in data else ""
    elif event.type == "delivery.rescheduled":
        title = "Planned time changed"
    elif event.type.startswith("message."):
        kind = "problem" if event.type == "message.failed" else "info"
        verb = event.type.partition(".")[2]
        title = f"Message {verb}"
        detail = " ".join(str(data.get(k, "")) for k in ("channel", "trigger")).strip()
    elif "from" in data and "to" in data:  # a status change
        target = str(data["to"])
        kind = (
            "problem"
            if target in ("delivery_failed", "delivery_delayed", "cancelled")
            else "status"
        )
        title = status_label(target)
        parts = [f"was {status_label(str(data['from'])).lower()}"]
        if event.reason:
            parts.append(reason_label(event.reason))
        if data.get("note"):
            parts.append(str(data["note"]))
        if data.get("import"):
            parts.append(f"import {data['import']}")
        proof = data.get("proof")
        if isinstance(proof, dict):
            got = [k for k in ("photo", "signature", "pin_verified") if proof.get(k)]
            if proof.get("received_by"):
                got.append(f"received by {proof['received_by']}")
            if got:
                parts.append("proof: " + ", ".join(g.replace("_", " ") for g in got))
        detail = "; ".join(parts)
    return Entry(at=at, title=title, detail=detail, who=who, kind=kind)
