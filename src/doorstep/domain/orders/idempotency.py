"""``Idempotency-Key`` for creating requests (IETF httpapi draft "The Idempotency-Key HTTP
Header Field").

* The first request with a key *claims* it: an ``in_flight`` record, committed on its own so a
  concurrent retry sees it and gets **409**.
* The work runs in a second transaction which, on a 2xx answer, also marks the record ``done``
  with the answer, so "orders created" and "answer stored" commit together.
* A retry with the same key and the same request (method, path, canonical body) gets the stored
  answer again, flagged as replayed; the same key with a different request is **422**.
* A 4xx/5xx answer, or an exception, releases the key so the client can fix the request and
  retry with it. Keys expire 24 hours after first use. A claim older than
  :data:`IN_FLIGHT_LEASE` is taken to belong to a process that died, and may be taken over.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from doorstep.clock import Clock
from doorstep.db.engine import transaction
from doorstep.domain.errors import Conflict, DomainError, FieldError, Unprocessable
from doorstep.domain.orders.models import IdempotencyRecord

KEY_TTL = timedelta(hours=24)
IN_FLIGHT_LEASE = timedelta(minutes=5)
MAX_KEY_LENGTH = 255
IN_FLIGHT = "in_flight"
DONE = "done"


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


def _claim_once(session: Session, clock: Clock, request: IdempotentRequest) -> int | Answer:
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
            raise KeyReused(
                "this Idempotency-Key was already used for a different request; "
                "use a new key for a new request"
            )
        if record.state == DONE and record.response_status is not None:
            body = json.loads(record.response_body) if record.response_body else None
            return Answer(record.response_status, body, replayed=True)
        if now - record.created_at < IN_FLIGHT_LEASE:
            raise KeyInFlight(
                "a request with this Idempotency-Key is still being processed; retry shortly"
            )
        # The claim outlived its lease: its process died. Take it over under a new record id,
        # so a late finish of the old one cannot mark the new claim done.
        session.delete(record)
        session.flush()
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
    return fresh.id


def claim(
    sessions: sessionmaker[Session], clock: Clock, request: IdempotentRequest
) -> int | Answer:
    """Claim the key (committed at once): a record id to finish later, or a stored answer.

    Raises :class:`KeyReused` (422) or :class:`KeyInFlight` (409)."""
    for attempt in range(2):
        try:
            with transaction(sessions) as session:
                return _claim_once(session, clock, request)
        except IntegrityError:
            # A concurrent request inserted the same key first; look again at what it left.
            if attempt:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _store(session: Session, record_id: int, answer: Answer) -> None:
    result = session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id, IdempotencyRecord.state == IN_FLIGHT)
        .values(
            state=DONE,
            response_status=answer.status_code,
            response_body=json.dumps(answer.body, separators=(",", ":")),
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 1) != 1:
        raise KeyInFlight("this Idempotency-Key was taken over by a newer request")


def release(sessions: sessionmaker[Session], record_id: int) -> None:
    """Forget an unfinished claim so the client may retry with the same key."""
    with transaction(sessions) as session:
        session.execute(
            delete(IdempotencyRecord)
            .where(IdempotencyRecord.id == record_id, IdempotencyRecord.state == IN_FLIGHT)
            .execution_options(synchronize_session=False)
        )


def run(
    sessions: sessionmaker[Session],
    clock: Clock,
    request: IdempotentRequest | None,
    action: Callable[[Session], Answer],
) -> Answer:
    """Run ``action`` in a transaction, at most once per idempotency key.

    Without a key (``request is None``) this is just a transaction around ``action``. With one,
    the answer is stored on success and the key released on failure (see the module notes)."""
    if request is None:
        with transaction(sessions) as session:
            return action(session)
    claimed = claim(sessions, clock, request)
    if isinstance(claimed, Answer):
        return claimed
    try:
        with transaction(sessions) as session:
            answer = action(session)
            if answer.success:
                _store(session, claimed, answer)
    except BaseException:
        release(sessions, claimed)
        raise
    if not answer.success:
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
