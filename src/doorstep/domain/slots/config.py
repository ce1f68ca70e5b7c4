"""The merchant's delivery-option settings, read from ``Merchant.config["slots"]`` with
defaults: nothing needs configuring.

* ``hold_minutes`` (10): how long a reservation holds a window while the customer pays;
* ``green_detour_minutes`` (5): a window is ``green`` when a route passes with at most this
  detour;
* ``nearby_stops`` (12): how many of the plan's nearest stops the insertion check tries;
* ``self_service_cutoff_minutes`` (None): recipients may change an order until this long before
  its window starts; None: until the driver sets off (``out_for_delivery``);
* ``max_hold_days`` (30): the longest a recipient may hold deliveries while away;
* ``quote_days`` (7): days a quote covers when no date range is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from doorstep.domain.accounts.models import Merchant


@dataclass(frozen=True)
class SlotSettings:
    hold_minutes: int = 10
    green_detour_minutes: int = 5
    nearby_stops: int = 12
    self_service_cutoff_minutes: int | None = None
    max_hold_days: int = 30
    quote_days: int = 7


def _int(raw: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return max(lo, min(hi, int(value)))


def slot_settings(merchant: Merchant) -> SlotSettings:
    """The merchant's settings; a missing or nonsensical value falls back to its default."""
    raw = (merchant.config or {}).get("slots") or {}
    if not isinstance(raw, dict):
        raw = {}
    cutoff = raw.get("self_service_cutoff_minutes")
    return SlotSettings(
        hold_minutes=_int(raw, "hold_minutes", 10, 1, 24 * 60),
        green_detour_minutes=_int(raw, "green_detour_minutes", 5, 0, 120),
        nearby_stops=_int(raw, "nearby_stops", 12, 1, 100),
        self_service_cutoff_minutes=(
            _int(raw, "self_service_cutoff_minutes", 0, 0, 7 * 24 * 60)
            if cutoff is not None
            else None
        ),
        max_hold_days=_int(raw, "max_hold_days", 30, 1, 365),
        quote_days=_int(raw, "quote_days", 7, 1, 31),
    )
