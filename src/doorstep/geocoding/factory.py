"""The geocoder the settings ask for, one per configuration per process."""

from __future__ import annotations

import threading

from doorstep.geocoding.base import AddressQuery, Geocoder, GeocodeResult, Outcome
from doorstep.settings import Settings

_GEOCODERS: dict[tuple[str, ...], Geocoder] = {}
_LOCK = threading.Lock()


class NoGeocoder:
    """``DOORSTEP_GEOCODER=none``: every address without coordinates needs a dispatcher."""

    name = "none"

    def geocode(self, query: AddressQuery) -> GeocodeResult:
        return GeocodeResult(Outcome.NOT_FOUND, [], "geocoding is turned off")


def geocoder_from_settings(settings: Settings) -> Geocoder:
    """``DOORSTEP_GEOCODER``: ``osm`` (default: the extract of ``DOORSTEP_GEOCODER_SOURCE``,
    else ``DOORSTEP_OSM_SOURCE``), ``nominatim``/``photon``/``pelias`` (a server at
    ``DOORSTEP_GEOCODER_URL``, answers cached in the data directory) or ``none``."""
    source = settings.geocoder_source or settings.osm_source
    key = (
        settings.geocoder,
        source,
        settings.geocoder_url or "",
        str(settings.data_dir),
        settings.geocoder_user_agent,
        str(settings.geocoder_min_delay_s),
    )
    with _LOCK:
        geocoder = _GEOCODERS.get(key)
        if geocoder is None:
            geocoder = _build(settings, source)
            _GEOCODERS[key] = geocoder
        return geocoder


def _build(settings: Settings, source: str) -> Geocoder:
    cache_dir = settings.data_dir / "cache" / "geocoding"
    if settings.geocoder == "none":
        return NoGeocoder()
    if settings.geocoder == "osm":
        from doorstep.geocoding.offline import OfflineGeocoder

        return OfflineGeocoder(source, cache_dir=cache_dir)
    from doorstep.geocoding.cache import CachedGeocoder
    from doorstep.geocoding.http import HttpGeocoder

    if not settings.geocoder_url:  # the settings validator refuses this already
        raise ValueError(f"DOORSTEP_GEOCODER={settings.geocoder} needs DOORSTEP_GEOCODER_URL")
    inner = HttpGeocoder(
        settings.geocoder,
        settings.geocoder_url,
        user_agent=settings.geocoder_user_agent,
        min_delay_s=settings.geocoder_min_delay_s,
        timeout_s=settings.geocoder_timeout_s,
    )
    return CachedGeocoder(inner, cache_dir / "answers.sqlite3", f"{inner.name} {inner.url}")


def clear_geocoder_cache() -> None:
    """Forget the cached geocoders (tests; settings changed at run time)."""
    with _LOCK:
        _GEOCODERS.clear()
