"""The warehouse: versions of documents, chunks and vectors in a DuckLake, plus index files.

`open(path)` gives a `Warehouse` for readers: `versions()`, `connect(version=)` (a read-only DuckDB
connection whose views show one version), `vectors(version)`, `chunk_rows(version, keys)`.
Writers go through `Warehouse.writer()` (see `warehouse/writer.py`), which holds the lock.

Directory layout: `catalog.sqlite` (the DuckLake catalog, unless PostgreSQL), `data/` (Parquet),
`indexes/<version_id>/` (HNSW index + meta.json), `writer.lock`. The reads are split by what
they read: versions and chunks here, vectors in `vector_reads.py`, run, metric and drift
history in `run_reads.py`. A warehouse at `s3://bucket/prefix`
has the same layout under that prefix (no catalog file, no lock file: both are in PostgreSQL),
and `path` is then this machine's cache of its files (see `warehouse/location.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from warehouse import queries, sandbox
from warehouse.errors import NoActiveVersion, VersionExpired, VersionNotFound, WarehouseError
from warehouse.lake import connect as lake_connect
from warehouse.locate import location_of
from warehouse.location import Location
from warehouse.reads import lake_tables
from warehouse.run_reads import RunReads
from warehouse.sandbox import SqlSession
from warehouse.schema import UNVERSIONED_VIEWS, VERSIONED_TABLES
from warehouse.vector_reads import VectorReads
from warehouse.version import Version

# The public read API: `open(path)` and what it hands out.
__all__ = ["LakeSession", "SqlSession", "Version", "Warehouse", "open"]


class LakeSession:
    """Reads of the lake's latest state over one open connection (read-only or not)."""

    def __init__(self, warehouse: Warehouse, con: duckdb.DuckDBPyConnection) -> None:
        self.warehouse = warehouse
        self.con = con

    def all_versions(self) -> list[Version]:
        return [Version.from_row(r) for r in queries.fetch_dicts(self.con, queries.ALL_VERSIONS)]

    def head_version(self) -> Version | None:
        """The latest published version, whatever its status."""
        versions = self.all_versions()
        return versions[-1] if versions else None

    def active_version(self) -> Version | None:
        active = [v for v in self.all_versions() if v.status == "active"]
        return active[-1] if active else None

    def _version(self, version_id: int) -> Version:
        for v in self.all_versions():
            if v.version_id == version_id:
                return v
        raise VersionNotFound(f"version {version_id} is not in {self.warehouse.where}")

    def head_documents(self) -> pa.Table:
        """(doc_id, content_hash, n_tokens, n_unknown) of the latest published state."""
        return self.con.execute(queries.HEAD_DOCUMENTS).to_arrow_table()

    def count_head_chunks(self, doc_ids: list[str]) -> int:
        """Chunks the latest published state holds for these documents."""
        self.con.register("ids", pa.table({"doc_id": pa.array(doc_ids, pa.string())}))
        try:
            return int(self.con.execute(queries.COUNT_HEAD_CHUNKS_OF).fetchone()[0])  # type: ignore[index]
        finally:
            self.con.unregister("ids")

    def documents_at(self, version: Version) -> pa.Table:
        """(doc_id, content_hash) of every document of `version`."""
        return self.con.execute(queries.documents_state(int(version.lake_snapshot))
                                ).to_arrow_table()

    def known_hashes(self, fingerprint: str, text_hashes: pa.Array) -> pa.Array:
        """Which of `text_hashes` (distinct) already have a vector of model `fingerprint`."""
        self.con.register("hashes", pa.table({"text_hash": text_hashes.cast(pa.string())}))
        try:
            found = self.con.execute(queries.KNOWN_HASHES, [fingerprint]).to_arrow_table()
        finally:
            self.con.unregister("hashes")
        return found["text_hash"].combine_chunks().cast(pa.string())


class Warehouse(VectorReads, RunReads):
    """Read access to one warehouse (and its catalog).

    `location` is where it lives (a directory or s3://bucket/prefix); `path` is the directory
    this process reads and writes its files in: the warehouse itself, or the local cache of a
    remote one.
    """

    def __init__(self, path: str | Path | Location, catalog: str | None = None) -> None:
        self.location = location_of(path)
        self.path = self.location.local
        self.catalog = catalog

    @property
    def where(self) -> str:
        """The warehouse as a person named it: its directory, or its s3:// URL."""
        return self.location.url if self.location.is_remote else str(self.path)

    def index_dir(self, version_id: int) -> Path:
        return self.path / "indexes" / str(version_id)

    def models_dir(self) -> Path:
        return self.path / "models"

    def exists(self) -> bool:
        return self.catalog not in (None, "", "sqlite") or (self.path / "catalog.sqlite").exists()

    @contextmanager
    def session(self) -> Iterator[LakeSession]:
        """Read-only access to the lake's latest state (what an ingest would compare with)."""
        with self._reader() as con:
            yield LakeSession(self, con)

    def versions(self) -> list[Version]:
        """Every version, oldest first."""
        with self._reader() as con:
            return [Version.from_row(r) for r in queries.fetch_dicts(con, queries.ALL_VERSIONS)]

    def version(self, version_id: int | None = None) -> Version:
        """Version `version_id`, or the active one when None.

        Raises:
            VersionNotFound: no such version. NoActiveVersion: nothing is active yet.
        """
        versions = self.versions()
        if version_id is None:
            active = [v for v in versions if v.status == "active"]
            if not active:
                raise NoActiveVersion(f"warehouse {self.where} has no active version; "
                                      "run `embedpipe ingest SOURCE` first")
            return active[-1]
        for v in versions:
            if v.version_id == version_id:
                return v
        known = ", ".join(str(v.version_id) for v in versions) or "none"
        raise VersionNotFound(f"version {version_id} is not in {self.where} (versions: {known})")

    def readable(self, version_id: int | None = None) -> Version:
        """Like `version`, but refuses a version whose data `gc` has removed.

        Raises:
            VersionExpired: the version was expired; its rows and files are gone.
        """
        v = self.version(version_id)
        if v.status == "expired":
            kept = [str(x.version_id) for x in self.versions() if x.status != "expired"]
            raise VersionExpired(f"version {v.version_id} was expired by `embedpipe gc`: its "
                                 f"data is gone (readable versions: {', '.join(kept) or 'none'})")
        return v

    def recorded_backend(self) -> str | None:
        """The embedding backend of the latest version, None before the first (or for a
        catalog whose lake the first ingest has yet to create)."""
        if not self.exists():
            return None
        try:
            with self.session() as session:
                head = session.head_version()
        except WarehouseError:
            return None
        return (head.model_backend or "torch") if head else None

    def active_or_none(self) -> Version | None:
        """The active version, or None when nothing is active (or nothing exists) yet."""
        if not self.exists():
            return None
        active = [v for v in self.versions() if v.status == "active"]
        return active[-1] if active else None

    def connect(self, version: int | None = None) -> duckdb.DuckDBPyConnection:
        """A read-only DuckDB connection with views resolved at one version (trusted code only).

        Views: `documents`, `chunks`, `quarantine` (as of that version), `embeddings` (chunk_key,
        chunk_id, doc_id, vector FLOAT[d] of that version's model), `versions`, `quality_metrics`,
        `drift_metrics`. The lake itself stays attached as `lake` for time travel of your own.
        For SQL typed by a person use `sandbox()`.
        """
        con, _ = self._version_views(self.readable(version))
        return con

    def _version_views(self, v: Version) -> tuple[duckdb.DuckDBPyConnection, frozenset[str]]:
        con = lake_connect(self.location, self.catalog, read_only=True)
        snap = int(v.lake_snapshot)
        for table in VERSIONED_TABLES:
            con.execute(queries.versioned_view(table, snap, v.version_id))
        con.execute(queries.embeddings_view(snap, v.model_fingerprint, int(v.dimension)))
        present = lake_tables(con)  # an older warehouse may lack tables until its next writer
        unversioned = [t for t in UNVERSIONED_VIEWS if t in present]
        for table in unversioned:
            con.execute(queries.current_view(table))
        return con, frozenset([*VERSIONED_TABLES, "embeddings", *unversioned])

    def sandbox(self, version: int | None = None) -> SqlSession:
        """A session for SQL typed by a person: one SELECT over one version's views, no files.

        See `warehouse/sandbox.py` for what it refuses and how.
        """
        con, views = self._version_views(self.readable(version))
        try:
            data = self.location.join("data") + "/"
            sandbox.lock_down(con, [data], [str(self.path.resolve() / "catalog.sqlite")])
        except BaseException:
            con.close()
            raise
        return SqlSession(con, views)

    def chunks(self, version: Version) -> pa.Table:
        """Every chunk of `version` (key, ids, seq, text hash, text, tokens, title), by key."""
        return self._table(queries.version_chunks(int(version.lake_snapshot)))

    def documents(self, version: Version) -> pa.Table:
        """The documents of `version` (doc_id, title, text, content_hash, source, row)."""
        return self._table(queries.version_documents(int(version.lake_snapshot)))

    def chunk_rows(self, version: Version, keys: list[int]) -> dict[int, dict[str, Any]]:
        """Chunk and document fields of the given chunk keys, at `version`."""
        with self._reader() as con:
            rows = queries.fetch_dicts(con, queries.chunks_by_keys(int(version.lake_snapshot)),
                                       [keys])
        return {int(r["chunk_key"]): r for r in rows}

    def chunk_map(self, version: Version) -> pa.Table:
        """(chunk_key, chunk_id, doc_id, text_hash) of every chunk of `version`."""
        return self._table(queries.chunk_map(int(version.lake_snapshot)))

    def chunk_spread(self, version: Version, many: int) -> float:
        """Share of the version's documents cut into `many` chunks or more."""
        with self._reader() as con:
            row = con.execute(queries.chunk_spread(int(version.lake_snapshot)), [many]).fetchone()
        return float(row[0]) if row else 0.0

    def text_sample(self, version: Version, size: int) -> list[str]:
        """A deterministic sample of the version's document texts (their first 2,000 chars)."""
        return self._table(queries.text_sample(int(version.lake_snapshot)), [size]
                           )["text"].to_pylist()

    def documents_state(self, version: Version) -> pa.Table:
        """(doc_id, content_hash) of every document of `version`."""
        with self.session() as session:
            return session.documents_at(version)


def open(path: str | Path, catalog: str | None = None) -> Warehouse:  # noqa: A001 - the API name
    """The warehouse at `path`.

    >>> wh = open("/tmp/nowhere")   # doctest: +SKIP
    >>> [v.version_id for v in wh.versions()]   # doctest: +SKIP
    [1, 2]
    """
    return Warehouse(path, catalog)
