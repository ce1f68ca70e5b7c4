"""Tracking links: the capability a recipient holds to follow one delivery.

A token is ``base64url(HMAC-SHA256(secret_key, "track:{order_id}:{nonce}"))`` truncated to
:data:`TOKEN_CHARS` characters, with a fresh 128-bit random nonce per order (ADR 0003). Only the
SHA-256 of the token is stored (``Order.tracking_token_hash``, unique), so a copy of the database
alone does not reveal live links; the API re-derives the token from the nonce when it shows a
``tracking_url``. Rotating a link means drawing a new nonce.

Lookups go through the hash only, and "no such token", "malformed token" and "expired link" all
give the same answer (``None``), so an attacker learns nothing from the difference.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.domain.orders.models import Order
from doorstep.domain.orders.status import TERMINAL, Status
from doorstep.ids import secret_digest

# 32 base64url characters carry 192 bits of the HMAC; the nonce itself has 128 random bits.
TOKEN_CHARS = 32
NONCE_BYTES = 16
_TOKEN_RE = re.compile(rf"^[A-Za-z0-9_-]{{{TOKEN_CHARS}}}$")


class TrackingToken(NamedTuple):
    """A freshly drawn link: the token to show, the nonce and hash to store."""

    token: str
    nonce: str
    token_hash: str


def derive_token(secret_key: str, order_id: str, nonce: str) -> str:
    """The token for ``order_id`` and ``nonce`` under ``secret_key`` (deterministic)."""
    mac = hmac.new(
        secret_key.encode(), f"track:{order_id}:{nonce}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")[:TOKEN_CHARS]


def hash_token(token: str) -> str:
    """The digest stored in ``Order.tracking_token_hash``."""
    return secret_digest(token)


def new_tracking_token(secret_key: str, order_id: str) -> TrackingToken:
    """Draw a new nonce for ``order_id`` and return ``(token, nonce, token_hash)``."""
    nonce = secrets.token_hex(NONCE_BYTES)
    token = derive_token(secret_key, order_id, nonce)
    return TrackingToken(token=token, nonce=nonce, token_hash=hash_token(token))


def tracking_token_for(secret_key: str, order: Order) -> str:
    """Re-derive the live token of ``order`` (for ``tracking_url`` in API answers)."""
    return derive_token(secret_key, order.id, order.tracking_nonce)


def tracking_url(base_url: str, token: str) -> str:
    """The public page of a token: ``{base_url}/t/{token}``."""
    return f"{base_url.rstrip('/')}/t/{token}"


def find_order_by_token(
    session: Session,
    token: str,
    *,
    now: datetime | None = None,
    ttl: timedelta | None = None,
) -> Order | None:
    """The order a token opens, or ``None`` for every kind of wrong, unknown or expired token.

    With ``now`` and ``ttl``, a link stops working ``ttl`` after the delivery ended (delivered
    or cancelled). The lookup compares SHA-256 digests through a unique index, so its timing
    does not depend on how much of a guessed token is right.
    """
    if not _TOKEN_RE.fullmatch(token):
        # The token format is public, so skipping the query for malformed input leaks nothing.
        return None
    order = session.scalar(select(Order).where(Order.tracking_token_hash == hash_token(token)))
    if order is None:
        return None
    if now is not None and ttl is not None and Status(order.status) in TERMINAL:
        ended = order.delivered_at or order.updated_at
        if ended + ttl < now:
            return None
    return order
