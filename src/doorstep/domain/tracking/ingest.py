"""Positions from GPS apps, from payload to stored row: the one verb the ingest endpoints
(``/ingest/osmand``, ``/ingest/owntracks``) and the OwnTracks MQTT subscriber call.

:meth:`PositionIngest.take` resolves the device (one statement; an unknown device is refused
with :class:`~doorstep.domain.tracking.devices.UnknownDevice`, the same answer whatever the
reason), passes each fix through the :class:`~doorstep.domain.tracking.screen.Screen` and hands
what it accepts to the batching :class:`~doorstep.domain.tracking.writer.PositionWriter`.
Everything it does is synchronous and quick, so an endpoint runs it in one threadpool call.

Device bindings are cached for ``DOORSTEP_POSITION_DEVICE_CACHE_S`` (5 s; 0 turns it off), so a
busy device costs no database statement per fix: a rotated or deactivated id keeps working for
at most that long in other processes (at once in the process that changed it), and a route that
becomes active is picked up within that time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.orm import Session, sessionmaker

from doorstep.clock import Clock
from doorstep.domain.tracking.devices import (
    UNKNOWN,
    BindingCache,
    DeviceBinding,
    UnknownDevice,
    resolve_device,
)
from doorstep.domain.tracking.payloads import Fix
from doorstep.domain.tracking.screen import Screen
from doorstep.domain.tracking.writer import (
    PendingPosition,
    PositionWriter,
    prune_positions,
    stored_current,
)
from doorstep.observability import POSITIONS_ACCEPTED, POSITIONS_DROPPED, POSITIONS_REFUSED
from doorstep.runtime import Runtime
from doorstep.settings import Settings

log = structlog.get_logger(__name__)

__all__ = ["IngestResult", "PositionIngest", "Sighting", "run_prune_positions"]


@dataclass(frozen=True)
class Sighting:
    """A fix and the device ids that may have sent it (most specific first)."""

    devices: tuple[str, ...]
    fix: Fix


@dataclass
class IngestResult:
    accepted: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"accepted": self.accepted, "dropped": self.dropped}


class PositionIngest:
    """One per process: the screen's memory and the write buffer live here."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        sessions: sessionmaker[Session],
        read_sessions: sessionmaker[Session],
    ) -> None:
        self.clock = clock
        self._read_sessions = read_sessions
        self.screen = Screen(
            max_speed_mps=settings.position_max_speed_kmh / 3.6,
            max_future=timedelta(seconds=settings.position_max_future_s),
        )
        self._cache = BindingCache(settings.position_device_cache_s)
        self.writer = PositionWriter(
            sessions, flush_ms=settings.position_flush_ms, batch=settings.position_flush_batch
        )
        # Called (in the request's thread; keep them quick) with the fixes of each request that
        # moved a driver's current position, once buffered: the live bus publishes them.
        self.on_current: list[Callable[[list[PendingPosition]], None]] = []

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> PositionIngest:
        return cls(runtime.settings, runtime.clock, runtime.sessions, runtime.read_sessions)

    def take(self, source: str, sightings: Sequence[Sighting]) -> IngestResult:
        """Screen and buffer the fixes; refuse the whole request if any device is unknown."""
        now = self.clock.now()
        try:
            bindings = self._bindings(dict.fromkeys(s.devices for s in sightings), now)
        except UnknownDevice:
            POSITIONS_REFUSED.labels(source).inc()
            raise
        result = IngestResult()
        dropped: Counter[str] = Counter()
        pending: list[PendingPosition] = []
        for sighting in sightings:
            binding = bindings[sighting.devices]
            reason = self.screen.check(binding.driver_id, sighting.fix, now)
            if reason is not None:
                dropped[reason.value] += 1
                POSITIONS_DROPPED.labels(source, reason.value).inc()
                continue
            pending.append(
                PendingPosition(
                    merchant_id=binding.merchant_id,
                    driver_id=binding.driver_id,
                    route_id=binding.route_id,
                    source=source,
                    received_at=now,
                    fix=sighting.fix,
                )
            )
        self.writer.add(pending)
        if pending:
            POSITIONS_ACCEPTED.labels(source).inc(len(pending))
            self._announce(pending)
        result.accepted = len(pending)
        result.dropped = dict(dropped)
        return result

    def _announce(self, pending: list[PendingPosition]) -> None:
        current = [p for p in pending if self.screen.is_current(p.driver_id, p.fix)]
        for listener in self.on_current:
            try:
                listener(current)
            except Exception:
                log.exception("a current-position listener failed")

    def _bindings(
        self, keys: Iterable[tuple[str, ...]], now: datetime
    ) -> dict[tuple[str, ...], DeviceBinding]:
        """Each device's binding, from the cache or (one statement each) the database; a
        driver new to this process also gets the screen seeded with their stored position."""
        out: dict[tuple[str, ...], DeviceBinding] = {}
        missing: list[tuple[str, ...]] = []
        for key in keys:
            cached = self._cache.get(key)
            if cached is UNKNOWN:
                raise UnknownDevice()
            if isinstance(cached, DeviceBinding) and self.screen.knows(cached.driver_id):
                out[key] = cached
            else:
                missing.append(key)
        if not missing:
            return out
        with self._read_sessions() as session:
            for key in missing:
                try:
                    binding = resolve_device(session, key, now)
                except UnknownDevice:
                    self._cache.put(key, UNKNOWN)
                    raise
                self._cache.put(key, binding)
                out[key] = binding
                if not self.screen.knows(binding.driver_id):
                    self.screen.seed(binding.driver_id, stored_current(session, binding.driver_id))
        return out

    def check_device(self, source: str, devices: Sequence[str]) -> DeviceBinding:
        """The device's binding, for a message without a position; refused like :meth:`take`."""
        try:
            return self._bindings([tuple(devices)], self.clock.now())[tuple(devices)]
        except UnknownDevice:
            POSITIONS_REFUSED.labels(source).inc()
            raise

    def forget_driver(self, driver_id: str) -> None:
        """Drop what this process remembers of a driver's device (after a rotation or a
        deactivation here; other processes notice within the cache's lifetime)."""
        self._cache.forget_driver(driver_id)

    def start(self) -> None:
        self.writer.start()

    def close(self) -> None:
        """Write everything still buffered (a clean stop loses nothing)."""
        self.writer.close()


def run_prune_positions(runtime: Runtime) -> int:
    """Worker job: delete positions older than ``DOORSTEP_POSITION_RETENTION_DAYS``."""
    with runtime.sessions() as session, session.begin():
        return prune_positions(session, runtime.clock, runtime.settings.position_retention_days)
