"""Small rules behind the tracking page, without a database: the per-client token bucket, the
merchant's tracking settings, branding that may reach the page's CSS, first names."""

from __future__ import annotations

from doorstep.domain.tracking.config import tracking_config
from doorstep.domain.tracking.view import first_name, safe_branding
from doorstep.web.ratelimit import RateLimiter


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_allows_a_burst_then_refills_per_client() -> None:
    """Six a minute: the seventh request waits ~10 s; after 10 s one more passes; another
    client is unaffected."""
    clock = FakeMonotonic()
    limiter = RateLimiter(6, monotonic=clock)
    assert [limiter.take("a") for _ in range(6)] == [0] * 6
    assert limiter.take("a") == 10
    assert limiter.take("b") == 0
    clock.now += 10
    assert limiter.take("a") == 0
    assert limiter.take("a") >= 1


def test_rate_limiter_forgets_the_oldest_clients_beyond_its_cap() -> None:
    """Memory stays bounded: past max_clients the least recently seen client starts afresh."""
    limiter = RateLimiter(1, max_clients=2, monotonic=FakeMonotonic())
    assert limiter.take("a") == 0 and limiter.take("a") > 0
    limiter.take("b")
    limiter.take("c")
    assert limiter.take("a") == 0


def test_tracking_config_defaults_and_refuses_unusable_values() -> None:
    """5 stops by default; a valid number is used; text, booleans and negatives are ignored."""
    assert tracking_config(None).driver_visible_stops == 5
    assert tracking_config({"tracking_driver_visible_stops": 2}).driver_visible_stops == 2
    for bad in ("3", True, -1, 1000):
        assert tracking_config({"tracking_driver_visible_stops": bad}).driver_visible_stops == 5


def test_branding_keeps_only_safe_colours_and_logo_urls() -> None:
    """Only "#RRGGBB" colours and http(s) or local logo URLs reach the page (its CSS and img)."""
    safe = safe_branding({"color": "#0B6E4F", "logo_url": "https://shop.example/l.png"})
    assert safe["color"] == "#0B6E4F" and safe["logo_url"] == "https://shop.example/l.png"
    bad = safe_branding({"color": "red;}body{display:none", "logo_url": "javascript:alert(1)"})
    assert bad["color"] == "" and bad["logo_url"] == ""


def test_first_name_is_the_first_word() -> None:
    """People are shown by their first name only."""
    assert first_name("Ada King Lovelace") == "Ada"
    assert first_name("  ") == ""
    assert first_name(None) == ""
