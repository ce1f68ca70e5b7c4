"""The screen every fix passes before it is stored: drop what cannot be true.

Dropped (never stored; counted by reason):

* ``invalid_coordinates``: latitude outside ±90, longitude outside ±180, not a number, or
  exactly 0,0 (what a phone reports before it has a fix);
* ``future``: stamped further ahead of the server's clock than the allowed skew;
* ``duplicate``: the same time and place as a fix already taken from this driver (apps resend
  their buffer after a lost connection);
* ``teleport``: a move from the driver's current position faster than any vehicle drives.

A *late* fix (older than the current one) passes: it is stored, but the current position
stays (the writer updates it only with newer fixes).

State is per process and per driver, in memory: the current fix, the keys of recent fixes and
the run of rejected teleports. A driver's first fix in this process is checked against the
stored current position, which the caller passes in.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from doorstep.domain.tracking.payloads import Fix

__all__ = ["DropReason", "Screen", "distance_m"]

EARTH_RADIUS_M = 6_371_008.8
RECENT_KEYS = 256  # per driver, for duplicates
MAX_DRIVERS = 50_000  # least recently seen drivers are forgotten beyond this
# A run of this many "teleports" that agree with each other means the anchor was the outlier.
REANCHOR_AFTER = 3


class DropReason(StrEnum):
    INVALID_COORDINATES = "invalid_coordinates"
    FUTURE = "future"
    DUPLICATE = "duplicate"
    TELEPORT = "teleport"


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _key(fix: Fix) -> tuple[float, float, float]:
    return (fix.recorded_at.timestamp(), fix.lat, fix.lon)


@dataclass
class _DriverState:
    current: Fix | None
    recent: deque[tuple[float, float, float]] = field(
        default_factory=lambda: deque(maxlen=RECENT_KEYS)
    )
    recent_set: set[tuple[float, float, float]] = field(default_factory=set)
    rejected: list[Fix] = field(default_factory=list)

    def remember(self, fix: Fix) -> None:
        key = _key(fix)
        if len(self.recent) == self.recent.maxlen:
            self.recent_set.discard(self.recent[0])
        self.recent.append(key)
        self.recent_set.add(key)


class Screen:
    """Thread-safe: the ingest endpoints call it from several threadpool threads at once."""

    def __init__(self, max_speed_mps: float, max_future: timedelta) -> None:
        self.max_speed_mps = max_speed_mps
        self.max_future = max_future
        self._drivers: OrderedDict[str, _DriverState] = OrderedDict()
        self._lock = threading.Lock()

    def knows(self, driver_id: str) -> bool:
        with self._lock:
            return driver_id in self._drivers

    def seed(self, driver_id: str, current: Fix | None) -> None:
        """Start a driver's state from their stored current position (if not known yet)."""
        with self._lock:
            if driver_id not in self._drivers:
                self._drivers[driver_id] = _DriverState(current)
                if current is not None:
                    self._drivers[driver_id].remember(current)
                while len(self._drivers) > MAX_DRIVERS:
                    self._drivers.popitem(last=False)

    def forget(self, driver_id: str) -> None:
        with self._lock:
            self._drivers.pop(driver_id, None)

    def check(self, driver_id: str, fix: Fix, now: datetime) -> DropReason | None:
        """``None`` when the fix is taken (and remembered), else why it is dropped."""
        if not _valid_coordinates(fix):
            return DropReason.INVALID_COORDINATES
        if fix.recorded_at > now + self.max_future:
            return DropReason.FUTURE
        with self._lock:
            state = self._drivers.get(driver_id)
            if state is None:
                state = self._drivers[driver_id] = _DriverState(None)
            self._drivers.move_to_end(driver_id)
            if _key(fix) in state.recent_set:
                return DropReason.DUPLICATE
            teleport = state.current is not None and self._too_fast(state.current, fix)
            if teleport and not self._reanchor(state, fix):
                return DropReason.TELEPORT
            state.rejected.clear()
            state.remember(fix)
            if state.current is None or fix.recorded_at > state.current.recorded_at:
                state.current = fix
            return None

    def is_current(self, driver_id: str, fix: Fix) -> bool:
        """Whether ``fix`` (taken by :meth:`check`) is the driver's newest one, not a late
        fix taken in passing."""
        with self._lock:
            state = self._drivers.get(driver_id)
            return state is not None and state.current is fix

    def _too_fast(self, a: Fix, b: Fix) -> bool:
        seconds = abs((b.recorded_at - a.recorded_at).total_seconds())
        # Both fixes may be off by their accuracy; give them that much room.
        slack = (a.accuracy_m or 0.0) + (b.accuracy_m or 0.0)
        moved = max(0.0, distance_m(a.lat, a.lon, b.lat, b.lon) - slack)
        return moved > self.max_speed_mps * max(seconds, 1.0)

    def _reanchor(self, state: _DriverState, fix: Fix) -> bool:
        """After a run of rejected fixes that agree with each other, the current position was
        the outlier (a bad first fix, a phone handed to another van): take the new one."""
        run = state.rejected
        if run and self._too_fast(run[-1], fix):
            run.clear()
        run.append(fix)
        if len(run) < REANCHOR_AFTER:
            return False
        state.current = None
        return True


def _valid_coordinates(fix: Fix) -> bool:
    lat, lon = fix.lat, fix.lon
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return False
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return False
    return not (lat == 0.0 and lon == 0.0)
