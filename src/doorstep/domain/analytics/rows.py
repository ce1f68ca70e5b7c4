"""The rows the KPI functions read: plain, frozen copies of what the database holds, so the
arithmetic in :mod:`doorstep.domain.analytics.kpis` is pure and testable without a database.

:mod:`doorstep.domain.analytics.load` fills them from ``orders``, ``delivery_events``,
``stops``/``routes``/``drivers``, ``outbox_messages`` and ``service_zones`` for one merchant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

NO_ZONE = "no-zone"
UNASSIGNED = "unassigned"


@dataclass(frozen=True)
class OrderRow:
    """One order of the period, with the day, driver and zone it is counted under.

    ``listed`` orders have their (final) promised window, else their creation, in the period
    and count in every KPI. An order that is not listed had its first attempt in the period
    but was moved out of it (failed, then rebooked to another day): it counts only in the
    first-attempt rate and the failed attempts, under the day of that attempt."""

    id: str
    status: str
    window_start: datetime | None
    window_end: datetime | None
    day: date  # the local date of its (final) promised window, else of its creation
    driver_id: str = UNASSIGNED
    driver_name: str = "Unassigned"
    zone_id: str = NO_ZONE
    zone_name: str = "No zone"
    listed: bool = True


@dataclass(frozen=True)
class EventRow:
    """One ``delivery_events`` row of an order (``seq`` orders them)."""

    seq: int
    order_id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MessageRow:
    """One ``outbox_messages`` row of an order: ``topic`` is its trigger (the event type)."""

    order_id: str
    channel: str
    topic: str
    target: str
    status: str
    created_at: datetime
    # The event a webhook delivers: each event is its own message (two ETA updates are two
    # webhooks, not one sent twice).
    event_id: str | None = None


@dataclass(frozen=True)
class RouteRow:
    """One route of a published plan: who drove it, how far and how long it was planned."""

    id: str
    day: date
    driver_id: str
    driver_name: str
    status: str
    stops: int
    distance_m: float
    driving_s: float


@dataclass(frozen=True)
class Period:
    """What the KPI functions read for one merchant and a range of local dates."""

    start: date
    end: date
    timezone: str
    orders: list[OrderRow]
    events: list[EventRow]
    messages: list[MessageRow]
    routes: list[RouteRow]

    def bounds(self) -> tuple[datetime, datetime]:
        """The period's first and first-after instants, in UTC."""
        return local_bounds(self.start, self.end, ZoneInfo(self.timezone))


def local_bounds(start: date, end: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of ``start`` 00:00 and of the day after ``end`` 00:00, in ``tz``."""
    lo = datetime.combine(start, time(), tzinfo=tz).astimezone(UTC)
    hi = datetime.combine(end + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
    return lo, hi
