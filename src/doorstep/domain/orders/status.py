"""The canonical delivery status, its reasons, and the one transition table.

Status says *where* a delivery is, reason says *why* (Karrio's split). Every status maps to an
AfterShip tag for integrators who already speak that vocabulary.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERY_DELAYED = "delivery_delayed"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    READY_FOR_PICKUP = "ready_for_pickup"
    RETURN_TO_SENDER = "return_to_sender"
    CANCELLED = "cancelled"
    ON_HOLD = "on_hold"


class Reason(StrEnum):
    """Karrio's ``TrackingIncidentReason`` names, plus a few of Doorstep's own (unprefixed ones
    describe merchant or recipient decisions rather than incidents)."""

    CARRIER_DAMAGED_PARCEL = "carrier_damaged_parcel"
    CARRIER_SORTING_ERROR = "carrier_sorting_error"
    CARRIER_ADDRESS_NOT_FOUND = "carrier_address_not_found"
    CARRIER_PARCEL_LOST = "carrier_parcel_lost"
    CARRIER_NOT_ENOUGH_TIME = "carrier_not_enough_time"
    CARRIER_VEHICLE_ISSUE = "carrier_vehicle_issue"
    CONSIGNEE_REFUSED = "consignee_refused"
    CONSIGNEE_BUSINESS_CLOSED = "consignee_business_closed"
    CONSIGNEE_NOT_AVAILABLE = "consignee_not_available"
    CONSIGNEE_NOT_HOME = "consignee_not_home"
    CONSIGNEE_INCORRECT_ADDRESS = "consignee_incorrect_address"
    CONSIGNEE_ACCESS_RESTRICTED = "consignee_access_restricted"
    CUSTOMS_DELAY = "customs_delay"
    CUSTOMS_DOCUMENTATION = "customs_documentation"
    CUSTOMS_DUTIES_UNPAID = "customs_duties_unpaid"
    WEATHER_DELAY = "weather_delay"
    NATURAL_DISASTER = "natural_disaster"
    DELIVERY_EXCEPTION_HOLD = "delivery_exception_hold"
    DELIVERY_EXCEPTION_UNDELIVERABLE = "delivery_exception_undeliverable"
    MERCHANT_CANCELLED = "merchant_cancelled"
    CONSIGNEE_CANCELLED = "consignee_cancelled"
    CONSIGNEE_RESCHEDULED = "consignee_rescheduled"
    UNKNOWN = "unknown"


class AfterShipTag(StrEnum):
    PENDING = "Pending"
    INFO_RECEIVED = "InfoReceived"
    IN_TRANSIT = "InTransit"
    OUT_FOR_DELIVERY = "OutForDelivery"
    ATTEMPT_FAIL = "AttemptFail"
    DELIVERED = "Delivered"
    AVAILABLE_FOR_PICKUP = "AvailableForPickup"
    EXCEPTION = "Exception"
    EXPIRED = "Expired"


AFTERSHIP_TAG: dict[Status, AfterShipTag] = {
    Status.PENDING: AfterShipTag.PENDING,
    Status.SCHEDULED: AfterShipTag.INFO_RECEIVED,
    Status.PICKED_UP: AfterShipTag.IN_TRANSIT,
    Status.IN_TRANSIT: AfterShipTag.IN_TRANSIT,
    Status.OUT_FOR_DELIVERY: AfterShipTag.OUT_FOR_DELIVERY,
    # AfterShip files a late shipment under Exception (Exception_011: "delayed").
    Status.DELIVERY_DELAYED: AfterShipTag.EXCEPTION,
    Status.DELIVERED: AfterShipTag.DELIVERED,
    Status.DELIVERY_FAILED: AfterShipTag.ATTEMPT_FAIL,
    Status.READY_FOR_PICKUP: AfterShipTag.AVAILABLE_FOR_PICKUP,
    Status.RETURN_TO_SENDER: AfterShipTag.EXCEPTION,
    Status.CANCELLED: AfterShipTag.EXCEPTION,
    Status.ON_HOLD: AfterShipTag.EXCEPTION,
}

TERMINAL: frozenset[Status] = frozenset({Status.DELIVERED, Status.CANCELLED})

_S = Status
TRANSITIONS: dict[Status, frozenset[Status]] = {
    _S.PENDING: frozenset({_S.SCHEDULED, _S.PICKED_UP, _S.ON_HOLD, _S.CANCELLED}),
    # A merchant's own driver loads at the depot and leaves: scheduled -> out_for_delivery when
    # the route starts, with no separate pick-up scan (ADR 0007).
    _S.SCHEDULED: frozenset(
        {
            _S.PENDING,
            _S.SCHEDULED,
            _S.PICKED_UP,
            _S.OUT_FOR_DELIVERY,
            _S.ON_HOLD,
            _S.CANCELLED,
            _S.DELIVERY_DELAYED,
        }
    ),
    _S.PICKED_UP: frozenset(
        {_S.IN_TRANSIT, _S.OUT_FOR_DELIVERY, _S.DELIVERY_DELAYED, _S.ON_HOLD, _S.RETURN_TO_SENDER}
    ),
    _S.IN_TRANSIT: frozenset(
        {
            _S.OUT_FOR_DELIVERY,
            _S.DELIVERY_DELAYED,
            _S.ON_HOLD,
            _S.READY_FOR_PICKUP,
            _S.RETURN_TO_SENDER,
        }
    ),
    _S.OUT_FOR_DELIVERY: frozenset(
        {
            _S.DELIVERED,
            _S.DELIVERY_FAILED,
            _S.DELIVERY_DELAYED,
            _S.ON_HOLD,
            _S.READY_FOR_PICKUP,
            _S.RETURN_TO_SENDER,
        }
    ),
    _S.DELIVERY_DELAYED: frozenset(
        {
            _S.SCHEDULED,
            _S.PICKED_UP,
            _S.IN_TRANSIT,
            _S.OUT_FOR_DELIVERY,
            _S.DELIVERED,
            _S.DELIVERY_FAILED,
            _S.ON_HOLD,
            _S.CANCELLED,
            _S.RETURN_TO_SENDER,
        }
    ),
    _S.DELIVERY_FAILED: frozenset(
        {
            _S.PENDING,
            _S.SCHEDULED,
            _S.OUT_FOR_DELIVERY,
            _S.READY_FOR_PICKUP,
            _S.RETURN_TO_SENDER,
            _S.ON_HOLD,
        }
    ),
    _S.READY_FOR_PICKUP: frozenset({_S.DELIVERED, _S.RETURN_TO_SENDER, _S.ON_HOLD}),
    _S.ON_HOLD: frozenset(
        {
            _S.PENDING,
            _S.SCHEDULED,
            _S.IN_TRANSIT,
            _S.OUT_FOR_DELIVERY,
            _S.CANCELLED,
            _S.RETURN_TO_SENDER,
            _S.READY_FOR_PICKUP,
        }
    ),
    _S.RETURN_TO_SENDER: frozenset({_S.CANCELLED}),
    _S.DELIVERED: frozenset(),
    _S.CANCELLED: frozenset(),
}

# While an order is in one of these, the recipient's details, address and window may change.
EDITABLE: frozenset[Status] = frozenset(
    {
        Status.PENDING,
        Status.SCHEDULED,
        Status.ON_HOLD,
        Status.DELIVERY_FAILED,
        Status.DELIVERY_DELAYED,
    }
)

# Orders in these statuses are waiting to be planned onto a route.
PLANNABLE: frozenset[Status] = frozenset(
    {Status.PENDING, Status.SCHEDULED, Status.DELIVERY_FAILED, Status.DELIVERY_DELAYED}
)


def can_transition(current: Status, target: Status) -> bool:
    return target in TRANSITIONS[current]


def status_words(status: Status) -> str:
    """``out_for_delivery`` -> ``out for delivery``."""
    return status.value.replace("_", " ")


def next_statuses(current: Status) -> list[Status]:
    """The statuses ``current`` may become, in the enum's (lifecycle) order."""
    return [s for s in Status if s in TRANSITIONS[current]]


def transition_refusal(current: Status, target: Status) -> str:
    """Why ``current`` cannot become ``target``, and what it can become instead."""
    allowed = [s for s in next_statuses(current) if s is not current]
    head = f"an order that is {status_words(current)} cannot become {status_words(target)}"
    if not allowed:
        return f"{head}: {status_words(current)} is final"
    return f"{head}; it can become: {', '.join(status_words(s) for s in allowed)}"
