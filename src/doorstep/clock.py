"""Injectable time. Nothing else in Doorstep calls ``datetime.now()``.

* :class:`SystemClock` for production,
* :class:`FrozenClock` for tests (moves only when told),
* :class:`SimulatedClock` for the simulator (runs faster than real time from a chosen start).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._at

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._at += delta

    def set(self, at: datetime) -> None:
        with self._lock:
            self._at = at.astimezone(UTC)


class SimulatedClock:
    """Starts at ``start`` and runs ``speed`` times faster than the wall clock.

    :meth:`set` re-anchors it (``now()`` is then ``at`` and runs on from there at the same
    speed), so a simulator can move the clock back to a booking time or jump over a quiet
    hour while the server and the worker keep reading the one clock.
    """

    def __init__(self, start: datetime, speed: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs a timezone-aware datetime")
        if speed < 0:
            raise ValueError("SimulatedClock needs a speed of 0 or more")
        self._start = start.astimezone(UTC)
        self._speed = float(speed)
        self._t0 = time.monotonic()
        self._lock = threading.Lock()

    @property
    def speed(self) -> float:
        """How many simulated seconds pass in one wall-clock second."""
        return self._speed

    def now(self) -> datetime:
        with self._lock:
            start, t0 = self._start, self._t0
        return start + timedelta(seconds=(time.monotonic() - t0) * self._speed)

    def set(self, at: datetime) -> None:
        """Re-anchor: ``now()`` is ``at`` from this instant, then runs on at :attr:`speed`."""
        if at.tzinfo is None:
            raise ValueError("SimulatedClock needs a timezone-aware datetime")
        with self._lock:
            self._start = at.astimezone(UTC)
            self._t0 = time.monotonic()
