"""The append-only delivery event log and the one way an order's status changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.errors import Actor, InvalidTransition
from doorstep.domain.orders.models import DeliveryEvent, Order
from doorstep.domain.orders.status import (
    Reason,
    Status,
    can_transition,
    next_statuses,
    transition_refusal,
)
from doorstep.ids import new_id

# Event types for status changes: integrators subscribe to these names.
STATUS_EVENT_TYPE: dict[Status, str] = {
    Status.PENDING: "order.pending",
    Status.SCHEDULED: "delivery.scheduled",
    Status.PICKED_UP: "delivery.picked_up",
    Status.IN_TRANSIT: "delivery.in_transit",
    Status.OUT_FOR_DELIVERY: "delivery.out_for_delivery",
    Status.DELIVERY_DELAYED: "delivery.delayed",
    Status.DELIVERED: "delivery.delivered",
    Status.DELIVERY_FAILED: "delivery.failed",
    Status.READY_FOR_PICKUP: "delivery.ready_for_pickup",
    Status.RETURN_TO_SENDER: "delivery.return_to_sender",
    Status.CANCELLED: "order.cancelled",
    Status.ON_HOLD: "delivery.on_hold",
}


def append_event(
    session: Session,
    clock: Clock,
    *,
    merchant_id: str,
    type: str,
    actor: Actor,
    order: Order | None = None,
    route_id: str | None = None,
    data: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> DeliveryEvent:
    """Append one event. ``status``/``reason`` are copied from ``order`` as it is now."""
    now = clock.now()
    ev = DeliveryEvent(
        id=new_id("evt", now),
        merchant_id=merchant_id,
        order_id=order.id if order is not None else None,
        route_id=route_id,
        type=type,
        status=order.status if order is not None else None,
        reason=order.reason if order is not None else None,
        actor_type=actor.type,
        actor_id=actor.id,
        occurred_at=occurred_at or now,
        recorded_at=now,
        data=data or {},
    )
    session.add(ev)
    return ev


def change_status(
    session: Session,
    clock: Clock,
    order: Order,
    target: Status,
    *,
    actor: Actor,
    reason: Reason | None = None,
    data: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> DeliveryEvent:
    """Move ``order`` to ``target`` through the transition table, or raise 409."""
    current = Status(order.status)
    if not can_transition(current, target):
        raise InvalidTransition(
            transition_refusal(current, target),
            extensions={
                "current": current.value,
                "requested": target.value,
                "allowed": [s.value for s in next_statuses(current)],
            },
        )
    order.status = target.value
    order.reason = reason.value if reason is not None else None
    order.updated_at = clock.now()
    order.version += 1
    if target is Status.DELIVERED:
        order.delivered_at = occurred_at or clock.now()
    payload = {"from": current.value, "to": target.value, **(data or {})}
    return append_event(
        session,
        clock,
        merchant_id=order.merchant_id,
        type=STATUS_EVENT_TYPE[target],
        actor=actor,
        order=order,
        data=payload,
        occurred_at=occurred_at,
    )


def timeline(session: Session, merchant_id: str, order_id: str) -> list[DeliveryEvent]:
    return list(
        session.scalars(
            select(DeliveryEvent)
            .where(DeliveryEvent.merchant_id == merchant_id, DeliveryEvent.order_id == order_id)
            .order_by(DeliveryEvent.seq)
        )
    )


@event.listens_for(Session, "before_flush")
def _refuse_event_rewrites(session: Session, _ctx: Any, _instances: Any) -> None:
    """The log is append-only: an update or delete of an event is a bug, refuse it loudly."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, DeliveryEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise RuntimeError("delivery events are append-only")


# Every new event may call for messages, written in the same flush (ADR 0011): registering the
# outbox's ``before_flush`` listener here means whoever can append events also queues them.
from doorstep.domain.notifications import outbox as _outbox  # noqa: E402, F401
