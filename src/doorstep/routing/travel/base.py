"""The travel-time interface every provider implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np
import numpy.typing as npt


class Profile(StrEnum):
    VAN = "van"
    CARGO_BIKE = "cargo_bike"
    WALKING = "walking"


@dataclass(frozen=True)
class LatLon:
    lat: float
    lon: float


@dataclass
class TravelMatrix:
    """Square matrices over the given points. ``unreachable`` lists point indices that cannot be
    reached from (or cannot reach) the others; their rows/columns hold ``UNREACHABLE``.
    ``outside`` are those of them beyond the map's coverage (outside the loaded extract), as
    opposed to inside it but off its roads. ``snapped`` is where each point met the network
    (the point itself for straight lines)."""

    durations_s: npt.NDArray[np.int64]
    distances_m: npt.NDArray[np.int64]
    snapped: list[LatLon]
    snap_distance_m: list[float]
    unreachable: set[int] = field(default_factory=set)
    outside: set[int] = field(default_factory=set)


UNREACHABLE = 10**9


class TravelTimeError(Exception):
    """A provider cannot answer at all: its data is missing or its server failed. Points that
    merely cannot be reached are not errors; they go into ``TravelMatrix.unreachable``."""


class TravelTimeProvider(Protocol):
    name: str

    def matrix(self, points: Sequence[LatLon], profile: Profile) -> TravelMatrix:
        """Durations and distances between every pair of points."""
        ...

    def path(self, points: Sequence[LatLon], profile: Profile) -> list[LatLon]:
        """The travelled path through ``points`` in order (straight segments if no roads)."""
        ...
