"""The geocoding interface every provider implements, in plain data.

A provider turns a postal address into zero or more :class:`Candidate` points; what the order
does with them (place it, or mark it ``needs_location``) is the domain's business
(:mod:`doorstep.domain.orders.location`). Providers touch no database."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class Precision(StrEnum):
    """How exactly a point stands for the address, best first."""

    POINT = "point"  # coordinates given by the sender or picked by a dispatcher
    HOUSE = "house"  # the house number was found
    INTERPOLATED = "interpolated"  # between numbered houses of the street
    STREET = "street"  # on the street, the number unknown or not given
    POSTCODE = "postcode"  # the middle of the postcode area
    CITY = "city"


PRECISE = frozenset({Precision.POINT, Precision.HOUSE, Precision.INTERPOLATED, Precision.STREET})
"""Precisions good enough to plan a delivery on; anything coarser needs a dispatcher."""


class Outcome(StrEnum):
    FOUND = "found"
    AMBIGUOUS = "ambiguous"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class AddressQuery:
    """A postal address as orders carry it (``country`` ISO 3166-1 alpha-2)."""

    line1: str
    city: str
    country: str
    postal_code: str | None = None
    line2: str | None = None

    def key(self) -> str:
        """A stable text of the query, for caches."""
        parts = (self.line1, self.line2 or "", self.postal_code or "", self.city, self.country)
        return "|".join(" ".join(p.lower().split()) for p in parts)


@dataclass(frozen=True)
class Candidate:
    """One place the address may be."""

    lat: float
    lon: float
    precision: Precision
    label: str
    source: str

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "precision": self.precision.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Candidate:
        return cls(
            lat=float(data["lat"]),
            lon=float(data["lon"]),
            precision=Precision(data["precision"]),
            label=str(data["label"]),
            source=str(data["source"]),
        )


@dataclass(frozen=True)
class GeocodeResult:
    """``FOUND``: ``candidates[0]`` is the place. ``AMBIGUOUS``: several places fit as well as
    each other (all listed). ``NOT_FOUND``: nothing precise enough; ``candidates`` may still
    hold coarse guesses (a street elsewhere, the postcode's middle). ``detail`` says why in a
    sentence a dispatcher can act on."""

    outcome: Outcome
    candidates: list[Candidate] = field(default_factory=list)
    detail: str = ""

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.outcome is Outcome.FOUND and self.candidates else None

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "candidates": [c.as_json() for c in self.candidates],
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GeocodeResult:
        return cls(
            Outcome(data["outcome"]),
            [Candidate.from_json(c) for c in data.get("candidates", [])],
            str(data.get("detail", "")),
        )


class GeocoderUnavailable(Exception):
    """The provider cannot answer at all (no extract, server down); an address that merely
    is not found is a :class:`GeocodeResult`, not an error."""


class Geocoder(Protocol):
    name: str

    def geocode(self, query: AddressQuery) -> GeocodeResult:
        """Where ``query`` is."""
        ...


AMBIGUOUS_M = 250.0
"""Two equally good candidates farther apart than this make an address ambiguous."""
