"""Per-merchant tracking settings, read from ``Merchant.config`` through one accessor.

Keys (all optional):

* ``tracking_driver_visible_stops`` (int, default 5): the recipient sees the driver on the map
  only once at most this many stops are left before theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_DRIVER_VISIBLE_STOPS = 5


@dataclass(frozen=True)
class TrackingConfig:
    driver_visible_stops: int = DEFAULT_DRIVER_VISIBLE_STOPS


def tracking_config(config: dict[str, Any] | None) -> TrackingConfig:
    """The tracking settings in a merchant's ``config``, with defaults for what is missing or
    not usable."""
    raw = (config or {}).get("tracking_driver_visible_stops")
    visible = DEFAULT_DRIVER_VISIBLE_STOPS
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= 100:
        visible = raw
    return TrackingConfig(driver_visible_stops=visible)
