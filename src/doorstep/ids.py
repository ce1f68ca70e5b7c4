"""Public identifiers: a short type prefix and 128 random bits, time-ordered.

``ord_01JD...``: the first 48 bits are milliseconds since the epoch (so ids sort by creation and
make good pagination cursors), the remaining 80 bits are random. Crockford base32, 26 chars.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def new_id(prefix: str, at: datetime) -> str:
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | secrets.randbits(80)
    return f"{prefix}_{_b32(value, 26)}"


def secret_digest(secret: str) -> str:
    """The SHA-256 hex digest stored in place of a bearer secret (API keys, tracking tokens,
    sign-in links): a copy of the database cannot be replayed, and a look-up stays an index hit
    (the secrets carry 128+ random bits, so no salt or slow hash is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()
