"""Devices: the id a GPS app sends is the only credential it has.

* :func:`resolve_device` finds the active driver a device id belongs to and the route its
  positions belong to now: the driver's ``active`` route, else the route of the shift they are
  on (published plan, shift running now, give or take :data:`SHIFT_SLACK`).
* :func:`propose_device_id` makes a long random id (144 bits), and :func:`rotate_device_id`
  gives a driver a new one, so a lost phone's id stops working at once.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from doorstep.domain.dispatch.models import Driver, Plan, Route, Shift
from doorstep.domain.dispatch.resources import access_driver
from doorstep.domain.errors import DomainError

__all__ = [
    "SHIFT_SLACK",
    "UNKNOWN",
    "BindingCache",
    "DeviceBinding",
    "UnknownDevice",
    "propose_device_id",
    "resolve_device",
    "rotate_device_id",
]

# A driver often starts the app a little before the shift and stops it a little after.
SHIFT_SLACK = timedelta(minutes=30)
DEVICE_ID_BYTES = 18  # 144 random bits, 24 URL-safe characters


class UnknownDevice(DomainError):
    """The one answer for every device that may not post: unknown, inactive, malformed."""

    status_code = 403
    title = "Unknown device"
    type_slug = "unknown-device"

    def __init__(self) -> None:
        super().__init__("this device is not registered to an active driver")


@dataclass(frozen=True)
class DeviceBinding:
    """Whose positions a device sends, and to which route they belong right now."""

    device_id: str
    merchant_id: str
    driver_id: str
    route_id: str | None


def resolve_device(session: Session, candidates: Sequence[str], now: datetime) -> DeviceBinding:
    """The binding of the first candidate id that names an active driver (one statement).

    Raises :class:`UnknownDevice` otherwise, whatever the reason."""
    wanted = [c for c in dict.fromkeys(candidates) if c and len(c) <= 100]
    if not wanted:
        raise UnknownDevice()
    route_id = (
        select(Route.id)
        .join(Plan, Plan.id == Route.plan_id)
        .join(Shift, Shift.id == Route.shift_id)
        .where(
            Route.driver_id == Driver.id,
            Route.status != "done",
            (Route.status == "active")
            | (
                (Plan.status == "published")
                & (Shift.start_at <= now + SHIFT_SLACK)
                & (Shift.end_at >= now - SHIFT_SLACK)
            ),
        )
        .order_by(case((Route.status == "active", 0), else_=1), Shift.start_at.desc())
        .limit(1)
        .correlate(Driver)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Driver.device_id, Driver.merchant_id, Driver.id, route_id).where(
            Driver.device_id.in_(wanted), Driver.active.is_(True)
        )
    ).all()
    found = {row[0]: row for row in rows}
    for candidate in wanted:
        if candidate in found:
            device, merchant_id, driver_id, route = found[candidate]
            return DeviceBinding(device, merchant_id, driver_id, route)
    raise UnknownDevice()


class _Unknown:
    """The cache's note that a device id is not registered (so floods cost no statements)."""


UNKNOWN = _Unknown()


class BindingCache:
    """Device bindings (and unknown ids) remembered for ``ttl_s`` seconds of monotonic time
    (a technical lifetime, not business time), at most ``size`` of them, least recent first
    out. Thread-safe."""

    def __init__(self, ttl_s: float, size: int = 20_000) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._entries: OrderedDict[tuple[str, ...], tuple[float, DeviceBinding | _Unknown]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> DeviceBinding | _Unknown | None:
        if self.ttl_s <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: tuple[str, ...], value: DeviceBinding | _Unknown) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def forget_driver(self, driver_id: str) -> None:
        with self._lock:
            for key in [
                k
                for k, (_, v) in self._entries.items()
                if isinstance(v, DeviceBinding) and v.driver_id == driver_id
            ]:
                del self._entries[key]


def propose_device_id() -> str:
    """A fresh device id: long and random, since it is the device's only credential."""
    return secrets.token_urlsafe(DEVICE_ID_BYTES)


def rotate_device_id(session: Session, merchant_id: str, driver_id: str) -> Driver:
    """Give the merchant's driver a new random device id; the old one stops working now."""
    driver = access_driver(session, merchant_id, driver_id)
    driver.device_id = propose_device_id()
    session.flush()
    return driver
