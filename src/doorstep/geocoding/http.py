"""Geocoding servers by URL through geopy: Nominatim, Photon or Pelias (self-hosted or a
public instance whose usage policy allows it).

Each request names Doorstep in its ``User-Agent``, waits for the provider's rate limit
(``min_delay_s`` between requests across threads, geopy's ``RateLimiter``), and asks for a
few results, so an address that fits several places is reported as ambiguous rather than
placed at the first. Each server's answer is mapped to one :class:`~.base.Precision`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from doorstep.geocoding.base import (
    AMBIGUOUS_M,
    AddressQuery,
    Candidate,
    GeocodeResult,
    GeocoderUnavailable,
    Outcome,
    Precision,
)
from doorstep.geocoding.osm_index import distance_m

RESULTS = 5
PRECISION_RANK = list(Precision)


def _nominatim_precision(raw: dict[str, Any]) -> Precision:
    address = raw.get("address") or {}
    kind = raw.get("addresstype") or raw.get("type") or ""
    if address.get("house_number") or kind in ("house", "building"):
        return Precision.HOUSE
    if kind == "postcode":
        return Precision.POSTCODE
    if raw.get("class") == "highway" or kind in ("road", "street"):
        return Precision.STREET
    return Precision.CITY


def _photon_precision(raw: dict[str, Any]) -> Precision:
    props = raw.get("properties") or {}
    kind = props.get("type") or ""
    if props.get("housenumber") or kind == "house":
        return Precision.HOUSE
    if kind == "street" or props.get("osm_key") == "highway":
        return Precision.STREET
    if kind == "postcode" or props.get("osm_value") == "postcode":
        return Precision.POSTCODE
    return Precision.CITY


def _pelias_precision(raw: dict[str, Any]) -> Precision:
    layer = (raw.get("properties") or {}).get("layer") or ""
    return {
        "address": Precision.HOUSE,
        "street": Precision.STREET,
        "postalcode": Precision.POSTCODE,
    }.get(layer, Precision.CITY)


class HttpGeocoder:
    """A geocoding server by URL (``kind``: ``nominatim``, ``photon`` or ``pelias``).
    ``remote``: bulk work (CSV imports) is left to the worker rather than done inline."""

    remote = True

    def __init__(
        self,
        kind: str,
        url: str,
        *,
        user_agent: str,
        min_delay_s: float = 1.0,
        timeout_s: float = 10.0,
        api_key: str | None = None,
        retries: int = 1,
    ) -> None:
        from geopy.extra.rate_limiter import RateLimiter  # type: ignore[import-untyped]
        from geopy.geocoders import Nominatim, Pelias, Photon  # type: ignore[import-untyped]

        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"a geocoder URL needs http(s)://host: {url!r}")
        domain = parts.netloc + parts.path
        self.name = kind
        self.url = url.rstrip("/")
        common: dict[str, Any] = {
            "scheme": parts.scheme,
            "timeout": timeout_s,
            "user_agent": user_agent,
        }
        client: Any
        if kind == "nominatim":
            client = Nominatim(domain=domain, **common)
            self._precision: Callable[[dict[str, Any]], Precision] = _nominatim_precision
        elif kind == "photon":
            client = Photon(domain=domain, **common)
            self._precision = _photon_precision
        elif kind == "pelias":
            client = Pelias(domain, api_key=api_key, **common)
            self._precision = _pelias_precision
        else:
            raise ValueError(f"unknown geocoder kind {kind!r}")
        self._client = client
        self._geocode = RateLimiter(
            client.geocode,
            min_delay_seconds=min_delay_s,
            max_retries=retries,
            error_wait_seconds=max(2.0, min_delay_s),
            swallow_exceptions=False,
        )

    def _ask(self, query: AddressQuery) -> list[Any]:
        if self.name == "nominatim":
            structured: dict[str, str] = {"street": query.line1, "city": query.city}
            if query.postal_code:
                structured["postalcode"] = query.postal_code
            return list(
                self._geocode(
                    structured,
                    exactly_one=False,
                    limit=RESULTS,
                    addressdetails=True,
                    country_codes=[query.country.lower()],
                )
                or []
            )
        text = ", ".join(p for p in (query.line1, query.postal_code, query.city) if p)
        if self.name == "photon":
            return list(self._geocode(text, exactly_one=False, limit=RESULTS) or [])
        return list(self._geocode(text, exactly_one=False, countries=[query.country.upper()]) or [])

    def geocode(self, query: AddressQuery) -> GeocodeResult:
        from geopy.exc import GeopyError  # type: ignore[import-untyped]

        try:
            locations = self._ask(query)
        except GeopyError as exc:
            raise GeocoderUnavailable(f"{self.name} at {self.url}: {exc}") from exc
        candidates = [
            Candidate(
                float(loc.latitude),
                float(loc.longitude),
                self._precision(loc.raw if isinstance(loc.raw, dict) else {}),
                str(loc.address),
                self.name,
            )
            for loc in locations
        ]
        return judge(candidates)


def judge(candidates: list[Candidate]) -> GeocodeResult:
    """Found when the most precise answers agree on one place, ambiguous when they name
    several places farther apart than :data:`~.base.AMBIGUOUS_M`, not found when nothing is
    precise enough to deliver to (the coarse answers are kept as guesses)."""
    from doorstep.geocoding.base import PRECISE

    if not candidates:
        return GeocodeResult(Outcome.NOT_FOUND, [], "the geocoder knows no such address")
    best = min(PRECISION_RANK.index(c.precision) for c in candidates)
    top = [c for c in candidates if PRECISION_RANK.index(c.precision) == best]
    places: list[Candidate] = []
    for c in top:
        if all(distance_m((c.lat, c.lon), (p.lat, p.lon)) > AMBIGUOUS_M for p in places):
            places.append(c)
    if places[0].precision not in PRECISE:
        return GeocodeResult(
            Outcome.NOT_FOUND,
            places,
            f"only found to the {places[0].precision.value}, not the street",
        )
    if len(places) > 1:
        return GeocodeResult(
            Outcome.AMBIGUOUS, places, f"the address fits {len(places)} places; pick one"
        )
    return GeocodeResult(Outcome.FOUND, places)
