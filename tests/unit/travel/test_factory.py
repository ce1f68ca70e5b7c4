"""provider_from_settings: the provider the settings ask for, once per process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from doorstep.routing.travel.factory import (
    clear_provider_cache,
    default_cache_dir,
    provider_from_settings,
)
from doorstep.routing.travel.osm import OsmRoadProvider
from doorstep.routing.travel.osrm import OsrmProvider
from doorstep.routing.travel.straight import StraightLineProvider
from doorstep.settings import Settings


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    clear_provider_cache()
    yield
    clear_provider_cache()


def test_default_is_straight_line_with_the_configured_detour(tmp_path: Path) -> None:
    """No configuration: straight lines; the detour factor comes from the settings."""
    provider = provider_from_settings(Settings(data_dir=tmp_path, straight_detour_factor=1.5))
    assert isinstance(provider, StraightLineProvider) and provider.detour_factor == 1.5


def test_osm_provider_caches_under_the_data_dir(tmp_path: Path) -> None:
    """travel_provider=osm uses osm_source (monaco by default) and <data_dir>/cache/roads."""
    settings = Settings(data_dir=tmp_path, travel_provider="osm")
    provider = provider_from_settings(settings)
    assert isinstance(provider, OsmRoadProvider)
    assert provider.source == "monaco"
    assert provider.cache_dir == default_cache_dir(settings) == tmp_path / "cache" / "roads"
    other = provider_from_settings(settings, cache_dir=tmp_path / "elsewhere")
    assert isinstance(other, OsmRoadProvider) and other.cache_dir == tmp_path / "elsewhere"


def test_osrm_provider_uses_the_url(tmp_path: Path) -> None:
    """travel_provider=osrm talks to osrm_url."""
    settings = Settings(
        data_dir=tmp_path, travel_provider="osrm", osrm_url="http://127.0.0.1:5000/"
    )
    provider = provider_from_settings(settings)
    assert isinstance(provider, OsrmProvider) and provider.base_url == "http://127.0.0.1:5000"


def test_providers_are_cached_per_configuration(tmp_path: Path) -> None:
    """The same configuration gets the same object (the graph is built once per process)."""
    a = Settings(data_dir=tmp_path, travel_provider="osm")
    b = Settings(data_dir=tmp_path, travel_provider="osm")
    assert provider_from_settings(a) is provider_from_settings(b)
    c = Settings(data_dir=tmp_path, travel_provider="straight")
    assert provider_from_settings(c) is not provider_from_settings(a)
