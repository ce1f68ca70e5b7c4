"""The travel-time provider the settings ask for, one per configuration per process."""

from __future__ import annotations

import threading
from pathlib import Path

from doorstep.routing.travel.base import TravelTimeProvider
from doorstep.settings import Settings

_PROVIDERS: dict[tuple[str, str, str, float, str], TravelTimeProvider] = {}
_LOCK = threading.Lock()


def default_cache_dir(settings: Settings) -> Path:
    """Where built road graphs and downloaded extracts are kept: ``<data_dir>/cache/roads``."""
    return settings.data_dir / "cache" / "roads"


def provider_from_settings(settings: Settings, cache_dir: Path | None = None) -> TravelTimeProvider:
    """``DOORSTEP_TRAVEL_PROVIDER``: ``straight`` (default), ``osm`` (``DOORSTEP_OSM_SOURCE``:
    ``monaco``, the default shipped in the package; ``helsinki``; a file path or a place name)
    or ``osrm`` (``DOORSTEP_OSRM_URL``).

    Providers are cached per process, so the road graph is built (or read from the disk cache)
    once; the OSM provider builds each profile lazily, on its first matrix."""
    cache = cache_dir if cache_dir is not None else default_cache_dir(settings)
    key = (
        settings.travel_provider,
        settings.osm_source,
        settings.osrm_url or "",
        settings.straight_detour_factor,
        str(cache),
    )
    with _LOCK:
        provider = _PROVIDERS.get(key)
        if provider is None:
            provider = _build(settings, cache)
            _PROVIDERS[key] = provider
        return provider


def _build(settings: Settings, cache_dir: Path) -> TravelTimeProvider:
    if settings.travel_provider == "osm":
        from doorstep.routing.travel.osm import OsmRoadProvider

        return OsmRoadProvider(settings.osm_source, cache_dir=cache_dir)
    if settings.travel_provider == "osrm":
        from doorstep.routing.travel.osrm import OsrmProvider

        if not settings.osrm_url:  # the settings validator already refuses this
            raise ValueError("DOORSTEP_TRAVEL_PROVIDER=osrm needs DOORSTEP_OSRM_URL")
        return OsrmProvider(settings.osrm_url)
    from doorstep.routing.travel.straight import StraightLineProvider

    return StraightLineProvider(settings.straight_detour_factor)


def clear_provider_cache() -> None:
    """Forget the cached providers (tests; settings changed at run time)."""
    with _LOCK:
        _PROVIDERS.clear()
