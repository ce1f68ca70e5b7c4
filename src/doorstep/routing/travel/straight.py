"""Straight-line travel times: great-circle distance x a detour factor at an average speed.

The zero-configuration provider: no map data, no server, instant. Good enough to plan a day in
a city grid; the OSM and OSRM providers follow the real streets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from doorstep.routing.travel.base import LatLon, Profile, TravelMatrix

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AverageSpeed:
    """A door-to-door average speed, stops, lights and parking included."""

    kmh: float

    @property
    def mps(self) -> float:
        return self.kmh / 3.6


AVERAGE_SPEEDS: MappingProxyType[Profile, AverageSpeed] = MappingProxyType(
    {
        Profile.VAN: AverageSpeed(30.0),  # urban van average
        Profile.CARGO_BIKE: AverageSpeed(15.0),
        Profile.WALKING: AverageSpeed(5.0),
    }
)
DEFAULT_DETOUR_FACTOR = 1.3


def haversine_m(
    lat1: FloatArray | float,
    lon1: FloatArray | float,
    lat2: FloatArray | float,
    lon2: FloatArray | float,
) -> FloatArray:
    """Great-circle distance in metres; the arguments broadcast like numpy arrays."""
    p1 = np.radians(lat1)
    p2 = np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin(dp / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    out: FloatArray = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return out


def latlon_arrays(points: Sequence[LatLon]) -> tuple[FloatArray, FloatArray]:
    """The latitudes and longitudes of ``points`` as two float arrays."""
    lat = np.fromiter((p.lat for p in points), dtype=np.float64, count=len(points))
    lon = np.fromiter((p.lon for p in points), dtype=np.float64, count=len(points))
    return lat, lon


class StraightLineProvider:
    """Distance = great circle x ``detour_factor``; duration = distance / the profile's average
    speed. Symmetric, always complete, integer seconds and metres."""

    name = "straight"

    def __init__(
        self,
        detour_factor: float = DEFAULT_DETOUR_FACTOR,
        speeds: dict[Profile, AverageSpeed] | None = None,
    ) -> None:
        if detour_factor < 1.0:
            raise ValueError("detour_factor must be at least 1.0")
        self.detour_factor = detour_factor
        self.speeds = dict(AVERAGE_SPEEDS) if speeds is None else dict(speeds)

    def matrix(self, points: Sequence[LatLon], profile: Profile) -> TravelMatrix:
        """Durations (s) and distances (m) between every pair of points."""
        lat, lon = latlon_arrays(points)
        metres = (
            haversine_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :]) * self.detour_factor
        )
        seconds = metres / self.speeds[Profile(profile)].mps
        return TravelMatrix(
            durations_s=np.rint(seconds).astype(np.int64),
            distances_m=np.rint(metres).astype(np.int64),
            snapped=list(points),
            snap_distance_m=[0.0] * len(points),
        )

    def path(self, points: Sequence[LatLon], profile: Profile) -> list[LatLon]:
        """The points themselves: straight segments between consecutive stops."""
        return list(points)
