"""Background geocoding: orders a CSV import queued for a rate-limited geocoder server are
placed a few at a time, each geocoded outside any transaction (a slow server never holds a
database lock) and written in a short transaction of its own."""

from __future__ import annotations

from doorstep.db.engine import transaction
from doorstep.domain.orders.location import apply_geocode, queued_addresses
from doorstep.geocoding import GeocoderUnavailable, geocoder_from_settings
from doorstep.runtime import Runtime

BATCH = 20


def run_geocode_pending(runtime: Runtime) -> int:
    """One round of the worker job: geocode up to :data:`BATCH` queued orders; returns how
    many were placed or given a reason. Stops early (leaving the rest queued) when the
    geocoder cannot answer."""
    geocoder = geocoder_from_settings(runtime.settings)
    with transaction(runtime.read_sessions) as session:
        queued = queued_addresses(session, limit=BATCH)
    done = 0
    for order_id, query in queued:
        try:
            result = geocoder.geocode(query)
        except GeocoderUnavailable:
            break
        with transaction(runtime.sessions) as session:
            done += apply_geocode(session, runtime.clock, order_id, result, geocoder.name)
    return done
