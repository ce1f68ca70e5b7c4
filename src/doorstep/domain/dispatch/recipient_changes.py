"""What recipients changed about the stops a driver carries, read for the driver app and the
driver endpoints' JSON (``/v1/drivers/{id}/route``, ``/v1/routes/{id}/start``,
``/v1/stops/{id}/...``).

* **Redirects** (:func:`~doorstep.domain.slots.choices.redirects_for`): leave the parcel with a
  neighbour (name, house number), at a safe place (with or without consent to a photo), or at a
  pickup point (which has become the order's address, so the stop's navigation already leads
  there; its name is shown).
* **Held**: an order ``on_hold`` is not to be delivered. A recipient's hold takes the stop off
  the plans (ADR 0012); a merchant's hold through the status API may leave it on a route, so
  the driver is told "do not deliver".
* **Instructions changed**: the order's latest ``order.instructions_changed`` event, so the
  app can highlight the new instructions with when they changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.orders.status import Status
from doorstep.domain.slots.choices import redirects_for
from doorstep.domain.slots.models import DeliveryChoice

INSTRUCTIONS_CHANGED = "order.instructions_changed"


class RedirectOut(BaseModel):
    """Where the parcel goes instead of the door."""

    kind: Literal["neighbour", "safe_place", "pickup_point"]
    name: str | None = Field(None, description="The neighbour's or the pickup point's name")
    house_number: str | None = Field(None, description="The neighbour's house number")
    place: str | None = Field(None, description="The safe place, in the recipient's words")
    photo_consent: bool | None = Field(
        None, description="Safe place: the recipient agreed to a photo of the parcel there"
    )
    pickup_point_id: str | None = None
    address: str | None = Field(None, description="The pickup point's street and city")


class RecipientChangeOut(BaseModel):
    """What the recipient changed since the order was sent (None on a stop when nothing)."""

    redirect: RedirectOut | None = None
    do_not_deliver: bool = Field(
        False, description="The order is on hold: the driver must not deliver it"
    )
    held_until: date | None = None
    instructions_changed_at: datetime | None = Field(
        None, description="When the instructions were last changed (highlight them)"
    )


def _redirect_out(detail: dict[str, Any]) -> RedirectOut:
    kind = detail["kind"]
    if kind == "neighbour":
        return RedirectOut(
            kind=kind, name=detail.get("name"), house_number=detail.get("house_number")
        )
    if kind == "safe_place":
        return RedirectOut(
            kind=kind, place=detail.get("place"), photo_consent=bool(detail.get("photo_consent"))
        )
    address = ", ".join(p for p in (detail.get("line1"), detail.get("city")) if p) or None
    return RedirectOut(
        kind="pickup_point",
        name=detail.get("name"),
        pickup_point_id=detail.get("pickup_point_id"),
        address=address,
    )


def recipient_changes(
    session: Session, merchant_id: str, orders: Iterable[Order], tz: ZoneInfo
) -> dict[str, RecipientChangeOut]:
    """The recipients' changes of these orders by order id (orders without any left out), times
    in ``tz``: at most three queries whatever the number of orders."""
    by_id = {o.id: o for o in orders}
    if not by_id:
        return {}
    redirects = redirects_for(session, merchant_id, by_id)
    held_ids = [o.id for o in by_id.values() if o.status == Status.ON_HOLD.value]
    held_until: dict[str, date | None] = {}
    if held_ids:
        held_until = {
            order_id: until
            for order_id, until in session.execute(
                select(DeliveryChoice.order_id, DeliveryChoice.held_until).where(
                    DeliveryChoice.merchant_id == merchant_id,
                    DeliveryChoice.order_id.in_(held_ids),
                )
            )
        }
    changed: dict[str | None, datetime] = {
        order_id: when
        for order_id, when in session.execute(
            select(DeliveryEvent.order_id, func.max(DeliveryEvent.occurred_at))
            .where(
                DeliveryEvent.merchant_id == merchant_id,
                DeliveryEvent.order_id.in_(list(by_id)),
                DeliveryEvent.type == INSTRUCTIONS_CHANGED,
            )
            .group_by(DeliveryEvent.order_id)
        )
    }
    out: dict[str, RecipientChangeOut] = {}
    for order_id in by_id:
        redirect = redirects.get(order_id)
        held = order_id in held_ids
        when = changed.get(order_id)
        if redirect is None and not held and when is None:
            continue
        out[order_id] = RecipientChangeOut(
            redirect=_redirect_out(redirect) if redirect is not None else None,
            do_not_deliver=held,
            held_until=held_until.get(order_id),
            instructions_changed_at=when.astimezone(tz) if when is not None else None,
        )
    return out
