"""Verbs for merchants and API keys."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from doorstep.clock import Clock
from doorstep.domain.accounts.models import ApiKey, Merchant
from doorstep.domain.errors import FieldError, Unauthorized, Unprocessable
from doorstep.ids import new_id, secret_digest

API_KEY_PREFIX = "dsk"
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    plaintext: str  # shown once, never stored


def create_merchant(
    session: Session,
    clock: Clock,
    *,
    name: str,
    timezone: str = "UTC",
    locale: str = "en",
    country: str | None = None,
) -> Merchant:
    name = name.strip()
    errors = []
    if not name or len(name) > 200:
        errors.append(FieldError("name", "must be 1 to 200 characters"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(FieldError("timezone", f"unknown IANA timezone {timezone!r}"))
    if errors:
        raise Unprocessable("invalid merchant", errors=errors)
    merchant = Merchant(
        id=new_id("mer", clock.now()),
        name=name,
        timezone=timezone,
        locale=locale,
        country=country.upper() if country else None,
        branding={},
        config={},
        created_at=clock.now(),
    )
    session.add(merchant)
    session.flush()
    return merchant


def issue_api_key(session: Session, clock: Clock, merchant: Merchant, name: str) -> IssuedKey:
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id("key", clock.now()),
        merchant_id=merchant.id,
        name=name,
        prefix=prefix,
        secret_hash=secret_digest(secret),
        created_at=clock.now(),
    )
    session.add(key)
    session.flush()
    return IssuedKey(key=key, plaintext=f"{API_KEY_PREFIX}_{prefix}_{secret}")


def authenticate_api_key(session: Session, clock: Clock, presented: str) -> tuple[Merchant, ApiKey]:
    """The merchant owning ``presented`` and the key; the same error for every wrong key.

    One query (key joined to its merchant), and no cache: a revoked key fails on its next
    request."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        raise Unauthorized("invalid API key")
    _, prefix, secret = parts
    row = session.execute(
        select(ApiKey, Merchant)
        .join(Merchant, Merchant.id == ApiKey.merchant_id)
        .where(ApiKey.prefix == prefix)
    ).first()
    key, merchant = (row[0], row[1]) if row is not None else (None, None)
    expected = key.secret_hash if key is not None else secret_digest("")
    ok = hmac.compare_digest(expected, secret_digest(secret))
    if key is None or merchant is None or not ok or key.revoked_at is not None:
        raise Unauthorized("invalid API key")
    return merchant, key


def needs_touch(key: ApiKey, clock: Clock) -> bool:
    """Whether ``last_used_at`` is stale enough to record again (once a minute at most)."""
    return key.last_used_at is None or clock.now() - key.last_used_at > _LAST_USED_RESOLUTION


def touch_api_key(session: Session, clock: Clock, key_id: str) -> None:
    key = session.get(ApiKey, key_id)
    if key is not None:
        key.last_used_at = clock.now()


def revoke_api_key(session: Session, clock: Clock, merchant: Merchant, key_id: str) -> None:
    key = session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.merchant_id == merchant.id)
    )
    if key is not None and key.revoked_at is None:
        key.revoked_at = clock.now()


@dataclass(frozen=True)
class MerchantRow:
    """A merchant as ``doorstep merchant list`` shows it."""

    id: str
    name: str
    timezone: str
    locale: str
    created_at: datetime
    key_prefixes: tuple[str, ...]  # active keys, as ``dsk_<prefix>``

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "timezone": self.timezone,
            "locale": self.locale,
            "created_at": self.created_at.isoformat(),
            "api_keys": list(self.key_prefixes),
        }


def list_merchants(session: Session) -> list[MerchantRow]:
    """Every merchant, oldest first, with the public prefixes of its unrevoked API keys (an
    operator's view across tenants, for the command line only)."""
    keys: dict[str, list[str]] = {}
    for merchant_id, prefix in session.execute(
        select(ApiKey.merchant_id, ApiKey.prefix)
        .where(ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.created_at, ApiKey.id)
    ):
        keys.setdefault(merchant_id, []).append(f"{API_KEY_PREFIX}_{prefix}")
    return [
        MerchantRow(
            id=m.id,
            name=m.name,
            timezone=m.timezone,
            locale=m.locale,
            created_at=m.created_at,
            key_prefixes=tuple(keys.get(m.id, ())),
        )
        for m in session.scalars(select(Merchant).order_by(Merchant.created_at, Merchant.id))
    ]
