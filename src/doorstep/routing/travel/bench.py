"""Road-network matrix benchmark: build times (cold and from the disk cache), network size,
and matrix times for N seeded random points inside the extract's bounding box."""

from __future__ import annotations

import importlib
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doorstep.routing.travel.base import LatLon, Profile
from doorstep.routing.travel.osm import OsmRoadProvider
from doorstep.routing.travel.osm_graph import build_graph
from doorstep.routing.travel.osm_load import read_road_table


@dataclass(frozen=True)
class MatrixBench:
    """Figures for one profile. Times in seconds; ``imports_s`` (loading pyrosm/osmnx and scipy
    once per process) and ``read_s`` (parsing the extract) are shared by all profiles."""

    profile: Profile
    imports_s: float
    read_s: float
    build_s: float
    warm_load_s: float
    raw_nodes: int
    raw_segments: int
    nodes: int
    edges: int
    kept_nodes: int
    kept_edges: int
    size: int
    unreachable: int
    matrix_s: float
    matrix_memo_s: float
    path_s: float


def random_points(bbox: Sequence[float], size: int, seed: int) -> list[LatLon]:
    """``size`` uniform points in (min_lat, min_lon, max_lat, max_lon), reproducible."""
    rng = np.random.default_rng(seed)
    lat = rng.uniform(bbox[0], bbox[2], size)
    lon = rng.uniform(bbox[1], bbox[3], size)
    return [LatLon(float(a), float(b)) for a, b in zip(lat, lon, strict=True)]


def _import_readers(path: Path) -> float:
    """Import the libraries reading ``path`` and searching graphs; return the time taken, so
    that build and load times do not include one-off imports."""
    started = time.perf_counter()
    importlib.import_module("scipy.sparse.csgraph")
    importlib.import_module("scipy.spatial")
    if path.name.lower().endswith(".pbf"):
        importlib.import_module("pyrosm")
        importlib.import_module("geopandas")
    else:
        importlib.import_module("osmnx")
    return time.perf_counter() - started


def run_matrix_bench(
    source: str,
    profiles: Sequence[Profile],
    size: int = 200,
    seed: int = 42,
    cache_dir: Path | None = None,
) -> tuple[Path, list[MatrixBench]]:
    """Read the extract once, build each profile cold, reload it from a fresh disk cache (in a
    temporary directory unless ``cache_dir``), then time a ``size``x``size`` matrix twice (the
    second reuses the memoised Dijkstra rows) and a path through the first ten points."""
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-") as tmp:
        cache = cache_dir if cache_dir is not None else Path(tmp)
        probe = OsmRoadProvider(source, cache_dir=cache)
        path = probe.path_on_disk
        imports_s = _import_readers(path)
        started = time.perf_counter()
        table = read_road_table(path)
        read_s = time.perf_counter() - started
        results = []
        for profile in profiles:
            started = time.perf_counter()
            graph = build_graph(table, profile)
            build_s = time.perf_counter() - started
            cache_file = probe.cache_file(profile)
            assert cache_file is not None
            graph.save(cache_file)

            provider = OsmRoadProvider(source, cache_dir=cache)
            started = time.perf_counter()
            network = provider.network(profile)
            warm_load_s = time.perf_counter() - started

            points = random_points(graph.bbox.tolist(), size, seed)
            started = time.perf_counter()
            matrix = provider.matrix(points, profile)
            matrix_s = time.perf_counter() - started
            started = time.perf_counter()
            provider.matrix(points, profile)
            matrix_memo_s = time.perf_counter() - started
            started = time.perf_counter()
            provider.path(points[:10], profile)
            path_s = time.perf_counter() - started

            g = network.graph
            results.append(
                MatrixBench(
                    profile=profile,
                    imports_s=imports_s,
                    read_s=read_s,
                    build_s=build_s,
                    warm_load_s=warm_load_s,
                    raw_nodes=int(g.counts[0]),
                    raw_segments=int(g.counts[1]),
                    nodes=int(g.counts[2]),
                    edges=int(g.counts[3]),
                    kept_nodes=g.n_kept,
                    kept_edges=int(g.csr_indices.size),
                    size=size,
                    unreachable=len(matrix.unreachable),
                    matrix_s=matrix_s,
                    matrix_memo_s=matrix_memo_s,
                    path_s=path_s,
                )
            )
    return path, results
