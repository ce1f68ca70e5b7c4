"""``doorstep bench eta`` end to end at a tiny size on the shipped Monaco extract, and the
Monaco extract as the default city. Figures only: nothing here asserts a time or a target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doorstep.cli import app
from doorstep.routing.travel.osm_load import resolve_source
from doorstep.settings import Settings


def test_monaco_ships_inside_the_package_and_is_the_default_city() -> None:
    """`monaco` resolves to the extract inside the installed package, with its attribution
    beside it, and is the default DOORSTEP_OSM_SOURCE."""
    path = resolve_source("monaco")
    assert path.name == "monaco.osm.pbf"
    assert path.parent.parts[-3:] == ("doorstep", "data", "osm")
    assert path.stat().st_size == 1_759_101
    assert "OpenStreetMap contributors" in (path.parent / "SOURCES.md").read_text()
    assert Settings().osm_source == "monaco"


def test_bench_eta_prints_figures_per_horizon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm-up day and a measured day of one 4-stop route, the measured one replayed from
    GPX, print error, coverage and width for every horizon in one JSON object."""
    monkeypatch.setenv("DOORSTEP_DATA_DIR", str(tmp_path / "data"))
    args = ["bench", "eta", "--routes", "1", "--stops", "6", "--warmup-days", "1"]
    args += ["--refresh-s", "120", "--gpx-every", "1", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["source"] == "monaco"
    assert figures["measured_stops"] == 6
    assert figures["gpx_routes"] == 1
    assert figures["refreshes"] > 12  # positions and the stop events of two routes
    horizons = {h["horizon"]: h for h in figures["horizons"]}
    assert set(horizons) == {"route start", "5 stops", "1 stop", "30 min"}
    start, one = horizons["route start"], horizons["1 stop"]
    assert start["n"] == 6 and one["n"] == 5  # the first stop is never 1 stop away
    for h in (start, one):
        assert 0 <= h["median_abs_error_min"] <= h["p90_abs_error_min"]
        assert 0 <= h["coverage"] <= 1
        assert h["mean_width_min"] > 0
    assert (tmp_path / "data" / "cache" / "roads").is_dir()  # the road graph was cached
