"""What a driver types (or scans) into their GPS app to send positions to Doorstep."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from doorstep.domain.dispatch.models import Driver

__all__ = ["Pairing", "pairing_for"]


@dataclass(frozen=True)
class Pairing:
    driver_id: str
    device_id: str | None
    osmand_url: str  # Traccar Client's "server URL"
    owntracks_url: str  # OwnTracks HTTP mode URL
    # What Traccar Client's QR scanner reads: the server URL (origin and path) and, from the
    # query, the device id and tracking settings suited to a delivery round.
    setup_url: str | None
    # OsmAnd's "online tracking web address", with OsmAnd's own placeholders.
    osmand_app_url: str | None


# Traccar Client settings for a delivery round: a fix every 15 s or 30 m (its defaults, 300 s
# and 75 m, are too coarse for an ETA), high accuracy, and points kept while offline.
TRACCAR_CLIENT_SETTINGS = {
    "accuracy": "high",
    "interval": "15",
    "distance": "30",
    "fastest_interval": "5",
    "buffer": "true",
}
# OsmAnd's placeholders: {0} lat, {1} lon, {2} time (ms), {3} accuracy (m), {4} altitude,
# {5} speed (m/s), {6} bearing.
OSMAND_TEMPLATE = "lat={0}&lon={1}&timestamp={2}&hdop={3}&altitude={4}&speed_mps={5}&bearing={6}"


def pairing_for(driver: Driver, base_url: str) -> Pairing:
    base = base_url.rstrip("/")
    osmand = f"{base}/ingest/osmand"
    setup = app = None
    if driver.device_id:
        setup = f"{osmand}?{urlencode({'id': driver.device_id, **TRACCAR_CLIENT_SETTINGS})}"
        app = f"{osmand}?{urlencode({'id': driver.device_id})}&{OSMAND_TEMPLATE}"
    return Pairing(
        driver_id=driver.id,
        device_id=driver.device_id,
        osmand_url=osmand,
        owntracks_url=f"{base}/ingest/owntracks",
        setup_url=setup,
        osmand_app_url=app,
    )
