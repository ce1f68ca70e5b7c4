"""``Idempotency-Key`` for creating and state-changing requests (IETF httpapi draft "The
Idempotency-Key HTTP Header Field"), shared by every router that accepts the header.

* The first request with a key *claims* it: an ``in_flight`` record, committed on its own so a
  concurrent retry sees it and gets **409**.
* :func:`run` does the work in a second transaction which, on a 2xx answer, also marks the
  record ``done`` with the answer, so "order created" and "answer stored" commit together.
  :func:`run_with_own_transactions` is for verbs that open their own short transactions (the
  optimiser runs between them): the verb hands its last transaction, the one that commits its
  work, to a ``store`` callback, so there too the work and the answer commit together. A
  process that dies during the work leaves the claim ``in_flight`` until its lease ends; a
  retry after that does the work again, and nothing of the first attempt was committed.
* A retry with the same key and the same request (method, path, canonical body) gets the stored
  answer again, flagged as replayed; the same key with a different request is **422**. Keys
  belong to a merchant, not to an endpoint: a key used on ``POST /v1/orders`` and again on
  ``POST /v1/plans`` is a reuse (422), never a replay of the other endpoint's answer.
* A 4xx/5xx answer, or an exception, releases the key so the client can fix the request and
  retry with it. Keys expire 24 hours after first use. A claim older than its lease
  (:data:`IN_FLIGHT_LEASE` unless the endpoint needs longer) is taken to belong to a process
  that died, and may be taken over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from doorstep.clock import Clock
from doorstep.db.base import Base
from doorstep.db.engine import transaction
from doorstep.db.types import UTCDateTime
from doorstep.domain.errors import Conflict, DomainError, FieldError, Unprocessable

KEY_TTL = timedelta(hours=24)
IN_FLIGHT_LEASE = timedelta(minutes=5)
MAX_KEY_LENGTH = 255
IN_FLIGHT = "in_flight"
DONE = "done"


class IdempotencyRecord(Base):
    """The first answer to a request sent with an ``Idempotency-Key`` (IETF httpapi draft)."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("merchant_id", "key"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # in_flight | done
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KeyInFlight(Conflict):
    title = "Request still in progress"
    type_slug = "idempotency-key-in-flight"


class KeyReused(Unprocessable):
    title = "Idempotency-Key reused"
    type_slug = "idempotency-key-reused"


class InvalidKey(DomainError):
    title = "Invalid Idempotency-Key"
    type_slug = "invalid-idempotency-key"


@dataclass(frozen=True)
class IdempotentRequest:
    """Who sent which request under which key."""

    merchant_id: str
    key: str
    method: str
    path: str
    fingerprint: str


@dataclass(frozen=True)
class Answer:
    """A JSON answer as stored and replayed."""

    status_code: int
    body: Any
    replayed: bool = False

    @property
    def success(self) -> bool:
        return 200 <= self.status_code < 300


def parse_key(header: str) -> str:
    """The key from an ``Idempotency-Key`` header (a structured-field string, quotes optional)."""
    key = header.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise InvalidKey(
            f"an Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            errors=[FieldError("Idempotency-Key", "invalid key", "invalid_key")],
        )
    return key


def canonical_body(body: bytes) -> bytes:
    """JSON bodies with keys sorted and no insignificant whitespace; anything else as sent."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 over method, path and canonical body: what "the same request" means."""
    digest = hashlib.sha256()
    digest.update(method.upper().encode() + b"\n" + path.encode() + b"\n")
    digest.update(canonical_body(body))
    return digest.hexdigest()


def _reused(record: IdempotencyRecord, request: IdempotentRequest) -> KeyReused:
    first = f"{record.method} {record.path}"
    if (record.method, record.path) == (request.method.upper(), request.path[:255]):
        first += " with another body"
    return KeyReused(
        f"this Idempotency-Key was already used for a different request ({first}); "
        "use a new key for a new request"
    )


@dataclass(frozen=True)
class Claim:
    """A request's hold on a key: the record and when it was claimed. A claim taken over after
    its lease keeps the record but not the time, so the two together name one claim."""

    record_id: int
    claimed_at: datetime


def _is_still(claimed: Claim) -> tuple[Any, ...]:
    """WHERE clauses: the record still holds ``claimed``, unfinished."""
    return (
        IdempotencyRecord.id == claimed.record_id,
        IdempotencyRecord.created_at == claimed.claimed_at,
        IdempotencyRecord.state == IN_FLIGHT,
    )


def _claim_once(
    session: Session, clock: Clock, request: IdempotentRequest, lease: timedelta
) -> Claim | Answer:
    now = clock.now()
    record = session.scalar(
        select(IdempotencyRecord)
        .where(
            IdempotencyRecord.merchant_id == request.merchant_id,
            IdempotencyRecord.key == request.key,
        )
        .with_for_update()
    )
    if record is not None and record.expires_at <= now:
        session.delete(record)
        session.flush()
        record = None
    if record is not None:
        if record.fingerprint != request.fingerprint:
            raise _reused(record, request)
        if record.state == DONE and record.response_status is not None:
            body = json.loads(record.response_body) if record.response_body else None
            return Answer(record.response_status, body, replayed=True)
        if now - record.created_at < lease:
            raise KeyInFlight(
                "a request with this Idempotency-Key is still being processed; retry shortly"
            )
        # The claim outlived its lease: its process died. Take it over with a new claim time,
        # which (with the id) names the claim, so a late finish of the old one cannot mark the
        # new claim done. (A new row would not do: SQLite may give it the old row's id.)
        record.created_at = now
        record.expires_at = now + KEY_TTL
        session.flush()
        return Claim(record.id, now)
    fresh = IdempotencyRecord(
        merchant_id=request.merchant_id,
        key=request.key,
        method=request.method.upper(),
        path=request.path[:255],
        fingerprint=request.fingerprint,
        state=IN_FLIGHT,
        created_at=now,
        expires_at=now + KEY_TTL,
    )
    session.add(fresh)
    session.flush()
    return Claim(fresh.id, now)


def claim(
    sessions: sessionmaker[Session],
    clock: Clock,
    request: IdempotentRequest,
    *,
    lease: timedelta = IN_FLIGHT_LEASE,
) -> Claim | Answer:
    """Claim the key (committed at once): a claim to finish later, or a stored answer.

    Raises :class:`KeyReused` (422) or :class:`KeyInFlight` (409, while an earlier claim is
    younger than ``lease``)."""
    for attempt in range(2):
        try:
            with transaction(sessions) as session:
                return _claim_once(session, clock, request, lease)
        except IntegrityError:
            # A concurrent request inserted the same key first; look again at what it left.
            if attempt:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _store(session: Session, claimed: Claim, answer: Answer) -> bool:
    """Mark the claim done with ``answer``; False if a newer request took it over."""
    result = session.execute(
        update(IdempotencyRecord)
        .where(*_is_still(claimed))
        .values(
            state=DONE,
            response_status=answer.status_code,
            response_body=json.dumps(answer.body, separators=(",", ":")),
        )
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 1) == 1


def release(sessions: sessionmaker[Session], claimed: Claim) -> None:
    """Forget an unfinished claim so the client may retry with the same key."""
    with transaction(sessions) as session:
        session.execute(
            delete(IdempotencyRecord)
            .where(*_is_still(claimed))
            .execution_options(synchronize_session=False)
        )


def run(
    sessions: sessionmaker[Session],
    clock: Clock,
    request: IdempotentRequest | None,
    action: Callable[[Session], Answer],
    *,
    lease: timedelta = IN_FLIGHT_LEASE,
) -> Answer:
    """Run ``action`` in a transaction, at most once per idempotency key.

    Without a key (``request is None``) this is just a transaction around ``action``. With one,
    the answer is stored in the same transaction on success and the key released on failure
    (see the module notes)."""
    if request is None:
        with transaction(sessions) as session:
            return action(session)
    claimed = claim(sessions, clock, request, lease=lease)
    if isinstance(claimed, Answer):
        return claimed
    try:
        with transaction(sessions) as session:
            answer = action(session)
            if answer.success and not _store(session, claimed, answer):
                raise KeyInFlight("this Idempotency-Key was taken over by a newer request")
    except BaseException:
        release(sessions, claimed)
        raise
    if not answer.success:
        release(sessions, claimed)
    return answer


StoreAnswer = Callable[[Session, Answer], None]
"""Stores a successful answer in the given transaction, the one that commits the work."""


def run_with_own_transactions(
    sessions: sessionmaker[Session],
    clock: Clock,
    request: IdempotentRequest | None,
    action: Callable[[StoreAnswer], Answer],
    *,
    lease: timedelta = IN_FLIGHT_LEASE,
) -> Answer:
    """Run ``action``, which opens its own transactions, at most once per idempotency key.

    For long verbs (planning) that must not run inside one transaction. ``action`` is given a
    ``store(session, answer)`` to call inside the transaction that commits its work, so that
    the work and the stored answer commit together (or neither does). If a newer request took
    the key over meanwhile (``lease`` must outlast the longest ``action`` for that never to
    happen), ``store`` raises :class:`KeyInFlight` and the work is rolled back. An ``action``
    that returns success without calling ``store`` has its answer stored just after (and
    returned even if the key was taken over, since its work has committed)."""
    if request is None:
        return action(lambda _session, _answer: None)
    claimed = claim(sessions, clock, request, lease=lease)
    if isinstance(claimed, Answer):
        return claimed
    stored = False

    def store(session: Session, answer: Answer) -> None:
        nonlocal stored
        if not answer.success:
            return
        if not _store(session, claimed, answer):
            raise KeyInFlight("this Idempotency-Key was taken over by a newer request")
        stored = True

    try:
        answer = action(store)
    except BaseException:
        release(sessions, claimed)  # a no-op once the answer has committed (no longer in flight)
        raise
    if answer.success and not stored:
        # The work is committed: answer with it even if a newer request took the claim over.
        with transaction(sessions) as session:
            _store(session, claimed, answer)
    elif not answer.success:
        release(sessions, claimed)
    return answer


def purge_expired(session: Session, clock: Clock) -> int:
    """Delete records past their 24-hour lifetime; returns how many (for a periodic job)."""
    result = session.execute(
        delete(IdempotencyRecord)
        .where(IdempotencyRecord.expires_at <= clock.now())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
