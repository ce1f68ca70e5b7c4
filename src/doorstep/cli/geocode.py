"""``doorstep geocode``: find an address with the configured geocoder, or build the offline
geocoder's index ahead of the first order (``--build``) and say what it holds."""

from __future__ import annotations

import json

import typer


def geocode(
    line1: str = typer.Argument("", help="Street and number, e.g. '6 Quai Antoine Ier'"),
    city: str = typer.Option("", help="City"),
    country: str = typer.Option("MC", help="ISO 3166-1 alpha-2 country of the address"),
    postal_code: str | None = typer.Option(None, "--postal-code", help="Postcode"),
    build: bool = typer.Option(
        False, "--build", help="Build (or read) the offline index and print its figures"
    ),
) -> None:
    """Geocode one address as orders are (JSON out), or prepare the offline index."""
    from doorstep.geocoding import AddressQuery, GeocoderUnavailable, geocoder_from_settings
    from doorstep.geocoding.offline import OfflineGeocoder
    from doorstep.settings import Settings

    geocoder = geocoder_from_settings(Settings())
    try:
        if build:
            if not isinstance(geocoder, OfflineGeocoder):
                raise typer.BadParameter("--build needs DOORSTEP_GEOCODER=osm")
            stats = geocoder.stats()
            figures = {
                "houses": stats.houses,
                "streets": stats.streets,
                "interpolations": stats.interpolations,
                "postcodes": stats.postcodes,
                "build_s": None if stats.build_s is None else round(stats.build_s, 2),
                "cache_file": str(stats.cache_file) if stats.cache_file else None,
                "cache_bytes": stats.cache_bytes,
            }
            typer.echo(json.dumps(figures, indent=2))
            return
        if not line1:
            raise typer.BadParameter("give an address, or --build")
        result = geocoder.geocode(AddressQuery(line1, city, country.upper(), postal_code))
    except GeocoderUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps({"geocoder": geocoder.name, **result.as_json()}, indent=2))
