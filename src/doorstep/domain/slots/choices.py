"""What a recipient chose for their orders (redirect, hold), read for the pages that show it:
the order's own answer, the tracking page, the driver's stop list."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.domain.orders.models import Order
from doorstep.domain.slots.models import DeliveryChoice
from doorstep.domain.slots.schemas import ChoiceOut


def _redirect(choice: DeliveryChoice | None) -> dict[str, Any] | None:
    if choice is None or choice.redirect_kind is None:
        return None
    detail = {k: v for k, v in (choice.redirect_detail or {}).items() if k != "original_address"}
    return {"kind": choice.redirect_kind, **detail}


def redirects_for(
    session: Session, merchant_id: str, order_ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Where each of these orders goes instead of the door (neighbour with name and house
    number, safe place with photo consent, pickup point), by order id; orders delivered to
    the door are left out. For the driver's stop list."""
    ids = list(order_ids)
    if not ids:
        return {}
    rows = session.scalars(
        select(DeliveryChoice).where(
            DeliveryChoice.merchant_id == merchant_id,
            DeliveryChoice.order_id.in_(ids),
            DeliveryChoice.redirect_kind.is_not(None),
        )
    )
    return {c.order_id: r for c in rows if (r := _redirect(c)) is not None}


def choice_out(session: Session, order: Order, tz: ZoneInfo) -> ChoiceOut:
    choice = session.get(DeliveryChoice, order.id)
    redirect_ = None
    if choice is not None and choice.redirect_kind is not None:
        detail = {
            k: v for k, v in (choice.redirect_detail or {}).items() if k != "original_address"
        }
        redirect_ = {"kind": choice.redirect_kind, **detail}
    window = (
        {"start": order.window_start.astimezone(tz), "end": order.window_end.astimezone(tz)}
        if order.window_start is not None and order.window_end is not None
        else None
    )
    return ChoiceOut(
        order_id=order.id,
        status=order.status,
        window=window,
        window_sequence=order.window_sequence,
        instructions=order.instructions,
        redirect=redirect_,
        held_until=choice.held_until if choice is not None else None,
    )
