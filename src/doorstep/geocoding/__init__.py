"""Addresses to coordinates behind one interface (:class:`~.base.Geocoder`).

Providers: the embedded :class:`~.offline.OfflineGeocoder` (the OSM extract the travel times
use; the default) and :class:`~.http.HttpGeocoder` (a Nominatim, Photon or Pelias server by
URL, its answers cached by :class:`~.cache.CachedGeocoder`). :func:`geocoder_from_settings`
picks one; :mod:`.countries` checks coordinates against the address's country. Nothing here
touches the database."""

from __future__ import annotations

from doorstep.geocoding.base import (
    PRECISE,
    AddressQuery,
    Candidate,
    Geocoder,
    GeocodeResult,
    GeocoderUnavailable,
    Outcome,
    Precision,
)
from doorstep.geocoding.factory import clear_geocoder_cache, geocoder_from_settings

__all__ = [
    "PRECISE",
    "AddressQuery",
    "Candidate",
    "GeocodeResult",
    "Geocoder",
    "GeocoderUnavailable",
    "Outcome",
    "Precision",
    "clear_geocoder_cache",
    "geocoder_from_settings",
]
