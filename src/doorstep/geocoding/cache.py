"""A geocoder's answers kept on disk, so an address is asked once per provider.

The cache is a small SQLite file in the data directory (shared by the processes of one
installation); errors are never cached, answers never expire (delete the file to forget)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from doorstep.geocoding.base import AddressQuery, Geocoder, GeocodeResult


class CachedGeocoder:
    """``inner`` with its answers kept in ``path`` under ``namespace`` (e.g. its URL)."""

    def __init__(self, inner: Geocoder, path: Path, namespace: str) -> None:
        self.inner = inner
        self.name = inner.name
        self.remote = bool(getattr(inner, "remote", False))
        self.path = path
        self.namespace = namespace
        self.hits = 0
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS answers ("
                "namespace TEXT NOT NULL, query TEXT NOT NULL, answer TEXT NOT NULL, "
                "PRIMARY KEY (namespace, query))"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def geocode(self, query: AddressQuery) -> GeocodeResult:
        key = query.key()
        with self._lock, self._connect() as db:
            row = db.execute(
                "SELECT answer FROM answers WHERE namespace = ? AND query = ?",
                (self.namespace, key),
            ).fetchone()
        if row is not None:
            self.hits += 1
            return GeocodeResult.from_json(json.loads(row[0]))
        result = self.inner.geocode(query)
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO answers (namespace, query, answer) VALUES (?, ?, ?)",
                (self.namespace, key, json.dumps(result.as_json())),
            )
        return result
