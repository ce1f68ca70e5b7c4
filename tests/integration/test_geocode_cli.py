"""``doorstep geocode`` builds the offline index once and finds an address as orders do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doorstep.cli import app
from doorstep.geocoding import clear_geocoder_cache
from tests.conftest import shared_data


def test_build_then_geocode_from_the_cached_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--build writes the index into the data dir and prints its figures; an address is then
    found (from the cached index) with its precision and source, as JSON."""
    monkeypatch.setenv("DOORSTEP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOORSTEP_GEOCODER_SOURCE", str(shared_data("osm", "monaco.osm.pbf")))
    clear_geocoder_cache()
    runner = CliRunner()
    built = runner.invoke(app, ["geocode", "--build"])
    assert built.exit_code == 0, built.output
    figures = json.loads(built.output)
    assert figures["houses"] > 50 and figures["streets"] > 500
    assert Path(figures["cache_file"]).is_file() and figures["cache_bytes"] > 0
    clear_geocoder_cache()
    found = runner.invoke(app, ["geocode", "6 quai Antoine 1er", "--city", "Monaco"])
    assert found.exit_code == 0, found.output
    answer = json.loads(found.output)
    assert answer["outcome"] == "found"
    assert answer["candidates"][0]["precision"] == "house"
    again = runner.invoke(app, ["geocode", "--build"])
    assert json.loads(again.output)["build_s"] is None  # read back, not rebuilt
    clear_geocoder_cache()
