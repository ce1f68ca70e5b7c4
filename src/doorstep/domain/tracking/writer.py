"""Batched position writes, the current position per driver, and pruning by age.

:class:`PositionWriter` buffers accepted positions in memory and writes them in one
transaction every ``flush_ms`` milliseconds or as soon as ``batch`` wait, from a thread of its
own; :meth:`PositionWriter.close` writes what is left (a clean stop loses nothing). A crash
(SIGKILL, power loss) loses what was still buffered: at most ``flush_ms`` of positions, or
``batch`` of them; GPS apps send a new fix every few seconds, so the next one replaces it.

Each flush also moves every driver's row in ``current_positions`` to their newest fix, and only
forwards: ``recorded_at`` must grow, so late, out-of-order fixes never move it back.

Rows are written with a bulk INSERT, not ORM objects, so session events do not see them: code
that reacts to new positions (the live bus) registers on :attr:`PositionWriter.on_written` and
is called with each committed batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from doorstep.clock import Clock
from doorstep.domain.tracking.models import CurrentPosition, Position
from doorstep.domain.tracking.payloads import Fix
from doorstep.observability import POSITIONS_LOST, POSITIONS_WRITTEN

__all__ = [
    "LatestPosition",
    "PendingPosition",
    "PositionWriter",
    "StoredPosition",
    "current_positions",
    "latest_position",
    "prune_positions",
    "stored_current",
    "write_positions",
]

log = structlog.get_logger(__name__)
MAX_BUFFERED = 100_000  # while the database is down, keep at most this many
PRUNE_CHUNK = 10_000


@dataclass(frozen=True)
class PendingPosition:
    """An accepted fix waiting to be written, with whose it is."""

    merchant_id: str
    driver_id: str
    route_id: str | None
    source: str
    received_at: datetime
    fix: Fix


@dataclass(frozen=True)
class LatestPosition:
    """A route's vehicle where it was last seen (the newest fix by the device's time)."""

    driver_id: str
    route_id: str | None
    recorded_at: datetime
    received_at: datetime
    lat: float
    lon: float
    speed_mps: float | None
    heading_deg: float | None
    accuracy_m: float | None
    source: str


def latest_position(session: Session, merchant_id: str, route_id: str) -> LatestPosition | None:
    """The merchant's route's current vehicle position, or ``None`` before its first fix."""
    row = session.scalars(
        select(CurrentPosition)
        .where(CurrentPosition.merchant_id == merchant_id, CurrentPosition.route_id == route_id)
        .order_by(CurrentPosition.recorded_at.desc())
        .limit(1)
    ).first()
    return None if row is None else _latest(row)


def current_positions(session: Session, merchant_id: str) -> list[LatestPosition]:
    """Every driver of the merchant where last seen (e.g. the dispatch map's first draw)."""
    rows = session.scalars(
        select(CurrentPosition)
        .where(CurrentPosition.merchant_id == merchant_id)
        .order_by(CurrentPosition.driver_id)
    )
    return [_latest(row) for row in rows]


def _latest(row: CurrentPosition) -> LatestPosition:
    return LatestPosition(
        driver_id=row.driver_id,
        route_id=row.route_id,
        recorded_at=row.recorded_at,
        received_at=row.received_at,
        lat=row.lat,
        lon=row.lon,
        speed_mps=row.speed_mps,
        heading_deg=row.heading_deg,
        accuracy_m=row.accuracy_m,
        source=row.source,
    )


def stored_current(session: Session, driver_id: str) -> Fix | None:
    """A driver's stored current position as a :class:`Fix` (to seed the screen)."""
    row = session.get(CurrentPosition, driver_id)
    if row is None:
        return None
    return Fix(
        recorded_at=row.recorded_at,
        lat=row.lat,
        lon=row.lon,
        speed_mps=row.speed_mps,
        heading_deg=row.heading_deg,
        accuracy_m=row.accuracy_m,
    )


# A bulk INSERT (insertmanyvalues), ids back in the order given: a third of what the ORM's unit
# of work costs per row. No Position objects pass through the session, so listeners learn of
# the rows through PositionWriter.on_written, after the commit.
INSERT_POSITIONS = insert(Position).returning(Position.id, sort_by_parameter_order=True)


@dataclass(frozen=True)
class StoredPosition:
    """A position as written: its row id and what was written."""

    id: int
    position: PendingPosition


def write_positions(session: Session, batch: list[PendingPosition]) -> list[StoredPosition]:
    """Insert the positions and move each driver's current position forward (never back)."""
    ids = session.scalars(
        INSERT_POSITIONS,
        [
            {
                "merchant_id": p.merchant_id,
                "driver_id": p.driver_id,
                "route_id": p.route_id,
                "source": p.source,
                "recorded_at": p.fix.recorded_at,
                "received_at": p.received_at,
                "lat": p.fix.lat,
                "lon": p.fix.lon,
                "speed_mps": p.fix.speed_mps,
                "heading_deg": p.fix.heading_deg,
                "accuracy_m": p.fix.accuracy_m,
                "altitude_m": p.fix.altitude_m,
                "battery_pct": p.fix.battery_pct,
            }
            for p in batch
        ],
    ).all()
    newest: dict[str, PendingPosition] = {}
    for p in batch:
        seen = newest.get(p.driver_id)
        if seen is None or p.fix.recorded_at > seen.fix.recorded_at:
            newest[p.driver_id] = p
    upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    rows = [
        {
            "driver_id": p.driver_id,
            "merchant_id": p.merchant_id,
            "route_id": p.route_id,
            "source": p.source,
            "recorded_at": p.fix.recorded_at,
            "received_at": p.received_at,
            "lat": p.fix.lat,
            "lon": p.fix.lon,
            "speed_mps": p.fix.speed_mps,
            "heading_deg": p.fix.heading_deg,
            "accuracy_m": p.fix.accuracy_m,
        }
        for p in newest.values()
    ]
    # One statement for all drivers (one row each): insert, or move forward only.
    stmt = upsert(CurrentPosition).values(rows)
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=["driver_id"],
        set_={k: excluded[k] for k in rows[0] if k != "driver_id"},
        where=CurrentPosition.recorded_at < excluded.recorded_at,
    )
    session.execute(stmt)
    return [StoredPosition(i, p) for i, p in zip(ids, batch, strict=True)]


class PositionWriter:
    """The buffer between the ingest endpoints and the database (see the module's text)."""

    def __init__(self, sessions: sessionmaker[Session], *, flush_ms: int, batch: int) -> None:
        self._sessions = sessions
        self._interval = flush_ms / 1000.0
        self._batch = batch
        self._buffer: list[PendingPosition] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Called with each committed batch, in the writer's thread (e.g. the live bus publishing
        # new positions); keep them quick.
        self.on_written: list[Callable[[list[StoredPosition]], None]] = []

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._buffer)

    def start(self) -> None:
        """Flush from a background thread from now on."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="doorstep-position-writer", daemon=True
            )
            self._thread.start()

    def add(self, positions: list[PendingPosition]) -> None:
        if not positions:
            return
        with self._lock:
            self._buffer.extend(positions)
            full = len(self._buffer) >= self._batch
        if full:
            if self._thread is None:
                self.flush()  # no background thread (a script, a test without lifespan)
            else:
                self._wake.set()

    def flush(self) -> int:
        """Write everything buffered now; the number written."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, []
            if not batch:
                return 0
            try:
                self._write(batch)
            except IntegrityError:
                # A driver or route deleted meanwhile: write driver by driver, drop the rest.
                written = 0
                for group in _by_driver(batch):
                    try:
                        self._write(group)
                        written += len(group)
                    except IntegrityError:
                        log.warning("positions of a removed driver dropped", count=len(group))
                        POSITIONS_LOST.inc(len(group))
                POSITIONS_WRITTEN.inc(written)
                return written
            except Exception:
                log.exception("positions not written; kept for the next flush", count=len(batch))
                with self._lock:
                    self._buffer[:0] = batch
                    overflow = len(self._buffer) - MAX_BUFFERED
                    if overflow > 0:
                        del self._buffer[:overflow]
                        POSITIONS_LOST.inc(overflow)
                return 0
            POSITIONS_WRITTEN.inc(len(batch))
            return len(batch)

    def _write(self, batch: list[PendingPosition]) -> None:
        with self._sessions() as session, session.begin():
            stored = write_positions(session, batch)
        for listener in self.on_written:  # after the commit: the rows are there for everyone
            try:
                listener(stored)
            except Exception:
                log.exception("a position listener failed", listener=repr(listener))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()


def _by_driver(batch: list[PendingPosition]) -> list[list[PendingPosition]]:
    groups: dict[str, list[PendingPosition]] = {}
    for p in batch:
        groups.setdefault(p.driver_id, []).append(p)
    return list(groups.values())


def prune_positions(session: Session, clock: Clock, retention_days: int) -> int:
    """Delete positions recorded more than ``retention_days`` ago, and current positions as
    old; the number of positions deleted.

    Deletes in chunks so no single statement holds locks for long (bounded loop)."""
    cutoff = clock.now() - timedelta(days=retention_days)
    session.execute(delete(CurrentPosition).where(CurrentPosition.recorded_at < cutoff))
    total = 0
    for _ in range(10_000):
        ids = session.scalars(
            select(Position.id).where(Position.recorded_at < cutoff).limit(PRUNE_CHUNK)
        ).all()
        if not ids:
            break
        session.execute(delete(Position).where(Position.id.in_(ids)))
        total += len(ids)
        if len(ids) < PRUNE_CHUNK:
            break
    return total
