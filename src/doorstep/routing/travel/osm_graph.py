"""One profile's road graph, built from a ``RoadTable`` and saved as compressed numpy.

Building: apply the profile's way rules (``osm_tags``), make one directed edge per allowed
direction of each segment (the fastest of parallel edges wins), keep the largest strongly
connected component, then contract chains of degree-two nodes: a *chain* runs between two
*kept* nodes (junctions and dead ends) through nodes that only continue the road. Dijkstra runs
on the kept nodes (about a third of the nodes); points snap onto the original segments, which
remember their chain and their offset along it.

Weights are packed: ``duration_units * 2**26 + length_units`` as exact integers in float64
(units of 0.1 s and 0.1 m, coarsened by powers of two only for networks over 6,700 km). One
Dijkstra then yields the fastest duration and the length of that fastest path.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from doorstep.routing.travel.base import Profile, TravelTimeError
from doorstep.routing.travel.osm_load import RoadTable
from doorstep.routing.travel.osm_tags import way_rule
from doorstep.routing.travel.straight import haversine_m

GRAPH_VERSION = 1
LEN_BITS = 26
DUR_BITS = 27  # LEN_BITS + DUR_BITS = 53, the exact-integer range of float64

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass
class RoadGraph:
    """A profile's network. Node indices point into ``node_lat``/``node_lon`` (the nodes of the
    largest strongly connected component); *kept* indices point into ``kept_nodes``.

    Chains: ``chain_nodes[chain_ptr[c]:chain_ptr[c + 1]]`` from its start A to its end B;
    forward (A→B) is always allowed, backward only when ``chain_two_way``. Segments: segment
    ``j`` is ``seg_pos[j]``-th of chain ``seg_chain[j]``; ``seg_f_*``/``seg_b_*`` are its
    forward/backward cost in units, ``seg_fcum_*`` the forward cost from A to its start and
    ``seg_bcum_*`` the backward cost from B to its end."""

    profile: str
    bbox: FloatArray  # min_lat, min_lon, max_lat, max_lon of the whole extract
    units: FloatArray  # seconds per duration unit, metres per length unit
    counts: IntArray  # raw nodes, raw segments, component nodes, component directed edges
    node_lat: FloatArray
    node_lon: FloatArray
    kept_nodes: IntArray
    chain_ptr: IntArray
    chain_nodes: IntArray
    chain_two_way: BoolArray
    chain_a: IntArray  # kept index of the start
    chain_b: IntArray  # kept index of the end
    chain_f_dur: IntArray
    chain_f_len: IntArray
    chain_b_dur: IntArray
    chain_b_len: IntArray
    seg_chain: IntArray
    seg_pos: IntArray
    seg_f_dur: IntArray
    seg_f_len: IntArray
    seg_b_dur: IntArray
    seg_b_len: IntArray
    seg_fcum_dur: IntArray
    seg_fcum_len: IntArray
    seg_bcum_dur: IntArray
    seg_bcum_len: IntArray
    csr_indptr: IntArray
    csr_indices: IntArray
    csr_weight: FloatArray  # packed
    csr_chain: IntArray
    csr_forward: BoolArray

    @property
    def dur_unit_s(self) -> float:
        return float(self.units[0])

    @property
    def len_unit_m(self) -> float:
        return float(self.units[1])

    @property
    def n_kept(self) -> int:
        return int(self.kept_nodes.size)

    def seg_nodes(self, j: IntArray) -> tuple[IntArray, IntArray]:
        """The start and end node of segments ``j`` in chain order."""
        start = self.chain_ptr[self.seg_chain[j]] + self.seg_pos[j]
        return self.chain_nodes[start], self.chain_nodes[start + 1]

    def save(self, path: Path) -> None:
        """Write atomically as a compressed ``.npz``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "profile"
        }
        meta = json.dumps({"version": GRAPH_VERSION, "profile": self.profile})
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez_compressed(fh, meta=np.array(meta), **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> RoadGraph | None:
        """Read a saved graph; ``None`` when the file is missing, damaged or outdated."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("version") != GRAPH_VERSION:
                    return None
                values = {f.name: data[f.name] for f in fields(cls) if f.name != "profile"}
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            return None
        return cls(profile=str(meta["profile"]), **values)


def code_fingerprint() -> str:
    """A short hash of the modules that decide what a built graph contains, so a cached graph
    is never reused after the rules or the builder change (``GRAPH_VERSION`` covers installs
    without source files)."""
    digest = hashlib.sha256(str(GRAPH_VERSION).encode())
    here = Path(__file__).parent
    for name in ("osm_tags.py", "osm_graph.py", "osm_load.py"):
        try:
            digest.update((here / name).read_bytes())
        except OSError:
            continue
    return digest.hexdigest()[:12]


def build_graph(table: RoadTable, profile: Profile) -> RoadGraph:
    """Build ``profile``'s graph from an extract (see the module docstring)."""
    rules = [way_rule(tags, profile) for tags in table.way_tags]
    fwd_ok = np.array([r.forward for r in rules], dtype=bool)
    bwd_ok = np.array([r.backward for r in rules], dtype=bool)
    speed_mps = np.array([max(r.speed_kmh, 1.0) / 3.6 for r in rules], dtype=np.float64)

    u, v, way = table.seg_u, table.seg_v, table.seg_way
    length = haversine_m(table.node_lat[u], table.node_lon[u], table.node_lat[v], table.node_lon[v])
    proper = u != v
    f = proper & fwd_ok[way]
    b = proper & bwd_ok[way]
    src = np.concatenate([u[f], v[b]])
    dst = np.concatenate([v[f], u[b]])
    e_len = np.concatenate([length[f], length[b]])
    e_dur = e_len / np.concatenate([speed_mps[way[f]], speed_mps[way[b]]])
    if src.size == 0:
        raise TravelTimeError(f"the extract has no roads usable by profile {profile.value!r}")

    dur_unit = _unit(0.1, float(e_dur.sum()), DUR_BITS)
    len_unit = _unit(0.1, float(e_len.sum()), LEN_BITS)
    d_units = np.maximum(1, np.rint(e_dur / dur_unit)).astype(np.int64)
    l_units = np.rint(e_len / len_unit).astype(np.int64)

    order = np.lexsort((l_units, d_units, dst, src))
    src, dst, d_units, l_units = src[order], dst[order], d_units[order], l_units[order]
    first = np.ones(src.size, dtype=bool)
    first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    src, dst, d_units, l_units = src[first], dst[first], d_units[first], l_units[first]

    keep, nodes, renumber = _largest_scc(src, dst, table.node_lat.size)
    src, dst, d_units, l_units = (
        renumber[src[keep]],
        renumber[dst[keep]],
        d_units[keep],
        l_units[keep],
    )
    if src.size == 0:
        raise TravelTimeError(f"the extract has no connected roads for profile {profile.value!r}")
    chains = _contract(src, dst, d_units, l_units, nodes.size)
    return _assemble(table, profile, nodes, src.size, chains, (dur_unit, len_unit))


def _unit(base: float, total: float, bits: int) -> float:
    unit = base
    while total / unit >= 2**bits:
        unit *= 2.0
    return unit


def _largest_scc(src: IntArray, dst: IntArray, n: int) -> tuple[BoolArray, IntArray, IntArray]:
    """Which edges lie in the largest strongly connected component, the original index of
    each of its nodes, and the map from original index to component index (-1 outside)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    adjacency = coo_matrix((np.ones(src.size), (src, dst)), shape=(n, n)).tocsr()
    _, labels = connected_components(adjacency, directed=True, connection="strong")
    used = np.zeros(n, dtype=bool)
    used[src] = True
    sizes = np.bincount(labels[used])
    biggest = int(np.argmax(sizes))
    inside = labels == biggest
    nodes = np.flatnonzero(inside).astype(np.int64)
    renumber = np.full(n, -1, dtype=np.int64)
    renumber[nodes] = np.arange(nodes.size)
    return inside[src] & inside[dst], nodes, renumber


@dataclass
class _Chains:
    kept: BoolArray
    node_lists: list[list[int]]
    two_way: list[bool]
    seg_d: list[list[tuple[int, int]]]  # per chain, per segment: forward (dur, len)
    seg_bd: list[list[tuple[int, int]]]  # per chain, per segment: backward (dur, len)


def _contract(src: IntArray, dst: IntArray, dur: IntArray, ln: IntArray, n: int) -> _Chains:
    """Cut the component into chains between kept nodes. A node is contracted when it only
    continues one road: one way in from ``p`` and out to ``q`` (p ≠ q), or both ways between
    ``p`` and ``q`` and nowhere else."""
    cost = {
        (int(a), int(b)): (int(d), int(x)) for a, b, d, x in zip(src, dst, dur, ln, strict=True)
    }
    out: list[set[int]] = [set() for _ in range(n)]
    inn: list[set[int]] = [set() for _ in range(n)]
    for a, b in cost:
        out[a].add(b)
        inn[b].add(a)
    kept = np.ones(n, dtype=bool)
    for x in range(n):
        o, i = out[x], inn[x]
        through_oneway = len(o) == 1 and len(i) == 1 and o != i
        through_two_way = len(o) == 2 and o == i
        if through_oneway or through_two_way:
            kept[x] = False
    if not kept.any():  # the whole component is one ring
        kept[0] = True

    chains = _Chains(kept, [], [], [], [])
    visited: set[tuple[int, int]] = set()
    for start in np.flatnonzero(kept).tolist():
        for first in sorted(out[start]):
            if (min(start, first), max(start, first)) in visited:
                continue
            seq = [start, first]
            visited.add((min(start, first), max(start, first)))
            prev, cur = start, first
            while not kept[cur]:
                nxt = next(iter(out[cur] - {prev})) if len(out[cur]) == 2 else next(iter(out[cur]))
                visited.add((min(cur, nxt), max(cur, nxt)))
                seq.append(nxt)
                prev, cur = cur, nxt
            two_way = (first, start) in cost
            pairs = list(itertools.pairwise(seq))
            chains.node_lists.append(seq)
            chains.two_way.append(two_way)
            chains.seg_d.append([cost[(a, b)] for a, b in pairs])
            chains.seg_bd.append([cost[(b, a)] if two_way else (0, 0) for a, b in pairs])
    return chains


def _assemble(
    table: RoadTable,
    profile: Profile,
    nodes: IntArray,
    n_edges: int,
    chains: _Chains,
    units: tuple[float, float],
) -> RoadGraph:
    kept_nodes = np.flatnonzero(chains.kept).astype(np.int64)
    kept_index = np.full(nodes.size, -1, dtype=np.int64)
    kept_index[kept_nodes] = np.arange(kept_nodes.size)

    lengths = np.array([len(s) for s in chains.node_lists], dtype=np.int64)
    chain_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    chain_nodes = np.array([x for s in chains.node_lists for x in s], dtype=np.int64)
    n_seg = lengths - 1
    seg_chain = np.repeat(np.arange(n_seg.size), n_seg).astype(np.int64)
    seg_base = np.concatenate([[0], np.cumsum(n_seg)])[:-1]
    seg_pos = np.arange(seg_chain.size, dtype=np.int64) - seg_base[seg_chain]

    fwd = np.array([c for s in chains.seg_d for c in s], dtype=np.int64).reshape(-1, 2)
    bwd = np.array([c for s in chains.seg_bd for c in s], dtype=np.int64).reshape(-1, 2)

    def cum_before(values: IntArray) -> IntArray:
        total = np.cumsum(values)
        per_chain_start = np.concatenate([[0], total])[seg_base]
        out: IntArray = (total - values - per_chain_start[seg_chain]).astype(np.int64)
        return out

    f_dur_tot = np.add.reduceat(fwd[:, 0], seg_base) if fwd.size else fwd[:, 0]
    f_len_tot = np.add.reduceat(fwd[:, 1], seg_base) if fwd.size else fwd[:, 1]
    b_dur_tot = np.add.reduceat(bwd[:, 0], seg_base) if bwd.size else bwd[:, 0]
    b_len_tot = np.add.reduceat(bwd[:, 1], seg_base) if bwd.size else bwd[:, 1]
    b_dur_before = cum_before(bwd[:, 0])
    b_len_before = cum_before(bwd[:, 1])

    chain_a = kept_index[chain_nodes[chain_ptr[:-1]]]
    chain_b = kept_index[chain_nodes[chain_ptr[1:] - 1]]
    two_way = np.array(chains.two_way, dtype=bool)
    indptr, indices, weight, csr_chain, csr_forward = _csr(
        chain_a, chain_b, two_way, (f_dur_tot, f_len_tot, b_dur_tot, b_len_tot), kept_nodes.size
    )
    bbox = np.array(table.bbox, dtype=np.float64)
    return RoadGraph(
        profile=profile.value,
        bbox=bbox,
        units=np.array(units, dtype=np.float64),
        counts=np.array(
            [table.node_lat.size, table.seg_u.size, nodes.size, n_edges], dtype=np.int64
        ),
        node_lat=table.node_lat[nodes],
        node_lon=table.node_lon[nodes],
        kept_nodes=kept_nodes,
        chain_ptr=chain_ptr,
        chain_nodes=chain_nodes,
        chain_two_way=two_way,
        chain_a=chain_a,
        chain_b=chain_b,
        chain_f_dur=f_dur_tot,
        chain_f_len=f_len_tot,
        chain_b_dur=b_dur_tot,
        chain_b_len=b_len_tot,
        seg_chain=seg_chain,
        seg_pos=seg_pos,
        seg_f_dur=fwd[:, 0].copy(),
        seg_f_len=fwd[:, 1].copy(),
        seg_b_dur=bwd[:, 0].copy(),
        seg_b_len=bwd[:, 1].copy(),
        seg_fcum_dur=cum_before(fwd[:, 0]),
        seg_fcum_len=cum_before(fwd[:, 1]),
        seg_bcum_dur=b_dur_tot[seg_chain] - b_dur_before - bwd[:, 0],
        seg_bcum_len=b_len_tot[seg_chain] - b_len_before - bwd[:, 1],
        csr_indptr=indptr,
        csr_indices=indices,
        csr_weight=weight,
        csr_chain=csr_chain,
        csr_forward=csr_forward,
    )


def _csr(
    a: IntArray,
    b: IntArray,
    two_way: BoolArray,
    totals: tuple[IntArray, IntArray, IntArray, IntArray],
    n: int,
) -> tuple[IntArray, IntArray, FloatArray, IntArray, BoolArray]:
    """Kept-node adjacency in CSR form, one edge per chain direction; the fastest of parallel
    chains wins and self-loops are dropped."""
    f_dur, f_len, b_dur, b_len = totals
    chain = np.arange(a.size, dtype=np.int64)
    src = np.concatenate([a, b[two_way]])
    dst = np.concatenate([b, a[two_way]])
    weight = np.concatenate(
        [f_dur * 2.0**LEN_BITS + f_len, b_dur[two_way] * 2.0**LEN_BITS + b_len[two_way]]
    )
    e_chain = np.concatenate([chain, chain[two_way]])
    forward = np.concatenate([np.ones(a.size, bool), np.zeros(int(two_way.sum()), bool)])
    proper = src != dst
    src, dst, weight, e_chain, forward = (x[proper] for x in (src, dst, weight, e_chain, forward))
    order = np.lexsort((weight, dst, src))
    src, dst, weight, e_chain, forward = (x[order] for x in (src, dst, weight, e_chain, forward))
    first = np.ones(src.size, dtype=bool)
    first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    src, dst, weight, e_chain, forward = (x[first] for x in (src, dst, weight, e_chain, forward))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))]).astype(np.int64)
    return indptr, dst.astype(np.int64), weight.astype(np.float64), e_chain, forward
