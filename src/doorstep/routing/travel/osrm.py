"""Travel times from an OSRM server over HTTP (``table`` and ``route`` services).

One I/O seam (``_get``), everything else is a pure transform of OSRM's JSON. Large matrices
are cut into blocks of at most ``max_table_size`` sources x ``max_table_size`` destinations
(osrm-routed's ``--max-table-size`` default is 100). ``null`` cells (no route) become
``UNREACHABLE``; the points to blame are chosen greedily (the point with the most missing
cells first) and listed in ``unreachable``, as are points OSRM snapped farther than
``max_snap_m`` away.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from doorstep.routing.travel.base import (
    UNREACHABLE,
    LatLon,
    Profile,
    TravelMatrix,
    TravelTimeError,
)

OSRM_PROFILES: Mapping[Profile, str] = MappingProxyType(
    {Profile.VAN: "driving", Profile.CARGO_BIKE: "cycling", Profile.WALKING: "foot"}
)


def _coordinates(points: Sequence[LatLon]) -> str:
    return ";".join(f"{p.lon:.6f},{p.lat:.6f}" for p in points)


def _blocks(n: int, size: int) -> list[range]:
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


def _blame(missing: npt.NDArray[np.bool_]) -> set[int]:
    """The fewest points (greedily) whose removal leaves no missing cell."""
    missing = missing.copy()
    np.fill_diagonal(missing, False)
    blamed: set[int] = set()
    while missing.any():
        worst = int(np.argmax(missing.sum(axis=0) + missing.sum(axis=1)))
        blamed.add(worst)
        missing[worst, :] = False
        missing[:, worst] = False
    return blamed


def _record_waypoints(
    rows: range,
    cols: range,
    waypoints: tuple[list[Any], list[Any]],
    snapped: list[LatLon | None],
    snap_m: list[float],
) -> None:
    """Note where OSRM snapped each point (the first answer wins)."""
    for indices, found in ((rows, waypoints[0]), (cols, waypoints[1])):
        for i, waypoint in zip(indices, found, strict=False):
            if snapped[i] is None and isinstance(waypoint, dict) and waypoint.get("location"):
                lon, lat = waypoint["location"]
                snapped[i] = LatLon(float(lat), float(lon))
                snap_m[i] = float(waypoint.get("distance") or 0.0)


class OsrmProvider:
    """Ask an OSRM server (``osrm-routed`` or compatible) for matrices and paths."""

    name = "osrm"

    def __init__(
        self,
        base_url: str,
        *,
        profiles: Mapping[Profile, str] | None = None,
        max_table_size: int = 100,
        max_route_points: int = 100,
        max_snap_m: float = 1000.0,
        timeout_s: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        if max_table_size < 1 or max_route_points < 2:
            raise ValueError("max_table_size must be ≥ 1 and max_route_points ≥ 2")
        self.base_url = base_url.rstrip("/")
        self.profiles = dict(OSRM_PROFILES if profiles is None else profiles)
        self.max_table_size = max_table_size
        self.max_route_points = max_route_points
        self.max_snap_m = max_snap_m
        self._client = client or httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def _get(self, service: str, profile: Profile, points: Sequence[LatLon], **params: str) -> Any:
        """One OSRM request; raises ``TravelTimeError`` for transport and HTTP failures, returns
        the JSON body otherwise (its ``code`` may still be a routing failure like NoRoute)."""
        url = f"{self.base_url}/{service}/v1/{self.profiles[profile]}/{_coordinates(points)}"
        try:
            response = self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise TravelTimeError(f"OSRM at {self.base_url} did not answer: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise TravelTimeError(
                f"OSRM {service} answered HTTP {response.status_code} without JSON: "
                f"{response.text[:200]!r}"
            )
        code = body.get("code")
        if response.status_code >= 400 and code not in ("NoRoute", "NoTable"):
            message = body.get("message") or response.reason_phrase
            raise TravelTimeError(
                f"OSRM {service} failed (HTTP {response.status_code}, {code}): {message}"
            )
        return body

    def matrix(self, points: Sequence[LatLon], profile: Profile) -> TravelMatrix:
        """Durations and distances between every pair of points, block by block."""
        profile = Profile(profile)
        n = len(points)
        durations = np.full((n, n), np.nan)
        distances = np.full((n, n), np.nan)
        snapped: list[LatLon | None] = [None] * n
        snap_m = [0.0] * n
        for rows in _blocks(n, self.max_table_size):
            for cols in _blocks(n, self.max_table_size):
                waypoints = self._table_block(profile, points, rows, cols, durations, distances)
                _record_waypoints(rows, cols, waypoints, snapped, snap_m)
        missing = np.isnan(durations) | np.isnan(distances)
        unreachable = _blame(missing) | {i for i in range(n) if snap_m[i] > self.max_snap_m}
        dur = np.where(missing, UNREACHABLE, np.rint(np.nan_to_num(durations))).astype(np.int64)
        dist = np.where(missing, UNREACHABLE, np.rint(np.nan_to_num(distances))).astype(np.int64)
        for i in unreachable:
            dur[i, :] = dur[:, i] = UNREACHABLE
            dist[i, :] = dist[:, i] = UNREACHABLE
        np.fill_diagonal(dur, 0)
        np.fill_diagonal(dist, 0)
        return TravelMatrix(
            durations_s=dur,
            distances_m=dist,
            snapped=[s if s is not None else p for s, p in zip(snapped, points, strict=True)],
            snap_distance_m=snap_m,
            unreachable=unreachable,
        )

    def _table_block(
        self,
        profile: Profile,
        points: Sequence[LatLon],
        rows: range,
        cols: range,
        durations: npt.NDArray[np.float64],
        distances: npt.NDArray[np.float64],
    ) -> tuple[list[Any], list[Any]]:
        """Fill one block of the matrices; returns OSRM's source and destination waypoints."""
        coords = [points[i] for i in rows] + [points[j] for j in cols]
        body = self._get(
            "table",
            profile,
            coords,
            annotations="duration,distance",
            sources=";".join(str(k) for k in range(len(rows))),
            destinations=";".join(str(len(rows) + k) for k in range(len(cols))),
        )
        waypoints = (body.get("sources") or [], body.get("destinations") or [])
        if body.get("code") != "Ok":  # NoTable: nothing in this block is reachable
            return waypoints
        block = np.ix_(list(rows), list(cols))
        for key, target in (("durations", durations), ("distances", distances)):
            values = body.get(key)
            if values is None:
                raise TravelTimeError(f"OSRM table answered without {key}")
            array = np.array(
                [[np.nan if v is None else float(v) for v in row] for row in values],
                dtype=np.float64,
            )
            if array.shape != (len(rows), len(cols)):
                raise TravelTimeError(f"OSRM table {key} has shape {array.shape}")
            target[block] = array
        return waypoints

    def path(self, points: Sequence[LatLon], profile: Profile) -> list[LatLon]:
        """The road geometry through ``points`` in order (``route``, ``overview=full``); a leg
        OSRM cannot route is drawn straight."""
        profile = Profile(profile)
        if len(points) < 2:
            return list(points)
        out: list[LatLon] = []
        step = self.max_route_points - 1
        for start in range(0, len(points) - 1, step):
            chunk = points[start : start + step + 1]
            geometry = self._route(profile, chunk)
            if geometry is None:
                geometry = []
                for a, b in itertools.pairwise(chunk):
                    geometry.extend(self._route(profile, [a, b]) or [a, b])
            for p in geometry:
                if not out or out[-1] != p:
                    out.append(p)
        return out

    def _route(self, profile: Profile, points: Sequence[LatLon]) -> list[LatLon] | None:
        body = self._get("route", profile, points, overview="full", geometries="geojson")
        if body.get("code") != "Ok":
            return None
        routes = body.get("routes") or []
        if not routes:
            return None
        coordinates = routes[0].get("geometry", {}).get("coordinates", [])
        return [LatLon(float(lat), float(lon)) for lon, lat in coordinates]
