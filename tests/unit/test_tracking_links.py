"""Tracking tokens are unguessable capabilities: at least 128 bits, derived, stored only as a
hash, and looked up without revealing why a token is wrong."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from doorstep.domain.orders.models import Order
from doorstep.domain.tracking.links import (
    TOKEN_CHARS,
    derive_token,
    find_order_by_token,
    hash_token,
    new_tracking_token,
    tracking_token_for,
    tracking_url,
)

SECRET = "unit-test-secret-0123456789abcdefghijklmnop"


def test_a_token_carries_at_least_128_bits_in_url_safe_characters() -> None:
    """Tokens are base64url, at least 22 characters (≥ 128 bits), with a 128-bit nonce."""
    token, nonce, token_hash = new_tracking_token(SECRET, "ord_1")
    assert TOKEN_CHARS >= 22 and len(token) == TOKEN_CHARS
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert len(bytes.fromhex(nonce)) == 16
    assert token_hash == hashlib.sha256(token.encode()).hexdigest() == hash_token(token)


def test_the_token_is_re_derived_from_secret_order_and_nonce() -> None:
    """The same secret, order and nonce give the same token; changing any one changes it."""
    token, nonce, _ = new_tracking_token(SECRET, "ord_1")
    assert derive_token(SECRET, "ord_1", nonce) == token
    assert derive_token(SECRET + "x", "ord_1", nonce) != token
    assert derive_token(SECRET, "ord_2", nonce) != token
    assert derive_token(SECRET, "ord_1", "0" * 32) != token
    order = Order(id="ord_1", tracking_nonce=nonce)
    assert tracking_token_for(SECRET, order) == token


def test_each_new_link_is_different() -> None:
    """Drawing links for the same order twice (a rotation) gives unrelated tokens."""
    tokens = {new_tracking_token(SECRET, "ord_1").token for _ in range(100)}
    assert len(tokens) == 100


def test_tracking_url_is_base_url_slash_t_slash_token() -> None:
    """The public URL is {base_url}/t/{token}, whatever the trailing slash of base_url."""
    assert tracking_url("https://track.example/", "abc") == "https://track.example/t/abc"
    assert tracking_url("https://track.example", "abc") == "https://track.example/t/abc"


class _NoDatabase:
    """A session that fails the test if it is queried."""

    def scalar(self, *_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a malformed token must not reach the database")


def test_a_malformed_token_is_refused_without_a_query() -> None:
    """Tokens of the wrong length or alphabet are refused before any lookup."""
    session: Any = _NoDatabase()
    for token in ("", "short", "x" * (TOKEN_CHARS + 1), "!" * TOKEN_CHARS, "é" * TOKEN_CHARS):
        assert find_order_by_token(session, token) is None
