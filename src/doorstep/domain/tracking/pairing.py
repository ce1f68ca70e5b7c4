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
    osmand_url: str  # OsmAnd "online tracking" / Traccar Client "server URL"
    owntracks_url: str  # OwnTracks HTTP mode URL
    # The server URL with the id as a query: Traccar Client reads ``id`` and ``url`` from a
    # scanned link; OsmAnd's online tracking takes the URL as it is.
    setup_url: str | None


def pairing_for(driver: Driver, base_url: str) -> Pairing:
    base = base_url.rstrip("/")
    osmand = f"{base}/ingest/osmand"
    setup = None
    if driver.device_id:
        setup = f"{osmand}?{urlencode({'id': driver.device_id, 'url': osmand})}"
    return Pairing(
        driver_id=driver.id,
        device_id=driver.device_id,
        osmand_url=osmand,
        owntracks_url=f"{base}/ingest/owntracks",
        setup_url=setup,
    )
