"""The warehouse: versions of documents, chunks and vectors in a DuckLake, plus index files.

`open(path)` gives a `Warehouse` for readers: `versions()`, `connect(version=)` (a read-only DuckDB
connection whose views show one version), `vectors(version)`, `chunk_rows(version, keys)`.
Writers go through `Warehouse.writer()` (see `warehouse/writer.py`), which holds the lock.

Directory layout: `catalog.sqlite` (the DuckLake catalog, unless PostgreSQL), `data/` (Parquet),
`indexes/<version_id>/` (HNSW index + meta.json), `writer.lock`. A warehouse at `s3://bucket/prefix`
has the same layout under that prefix (no catalog file, no lock file: both are in PostgreSQL),
and `path` is then this machine's cache of its files (see `warehouse/location.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from warehouse import queries, sandbox
from warehouse.codec import decode_table
from warehouse.errors import NoActiveVersion, VersionExpired, VersionNotFound
from warehouse.lake import connect as lake_connect
from warehouse.location import Location, location_of
from warehouse.schema import UNVERSIONED_VIEWS, VERSIONED_TABLES


@dataclass(frozen=True)
class Version:
    """One row of `versions`, typed."""

    version_id: int
    parent_id: int | None
    status: str
    pinned: bool
    model_name: str
    model_location: str
    model_fingerprint: str
    model_backend: str | None  # None: written before backends were recorded (torch)
    dimension: int
    chunker_config: dict[str, Any]
    corpus_fingerprint: str
    lake_snapshot: int
    n_documents: int
    n_chunks: int
    n_embedded: int
    n_reused: int
    n_quarantined: int
    max_chunk_key: int
    created_at: Any
    message: str | None
    summary: dict[str, Any]
    index_meta: dict[str, Any]
    gate: dict[str, Any]
    # The source file(s) and read/clean settings it was ingested from (tasks.prep.source_key);
    # None for a retrain's corpus or a warehouse from before sources were fingerprinted.
    source_fingerprint: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Version:
        # .get: a warehouse from an older embedpipe lacks columns until its next writer adds them
        parsed: dict[str, Any] = {f.name: row.get(f.name) for f in fields(cls)}
        for key in ("chunker_config", "summary", "index_meta", "gate"):
            parsed[key] = json.loads(parsed[key]) if parsed[key] else {}
        return cls(**parsed)

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["created_at"] = str(self.created_at)
        return out


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


class Warehouse:
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

    @contextmanager
    def _reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = lake_connect(self.location, self.catalog, read_only=True)
        try:
            yield con
        finally:
            con.close()

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
        present = _tables(con)  # an older warehouse may lack tables until its next writer
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

    def _table(self, sql: str, params: list | None = None) -> pa.Table:
        """One query's result as an Arrow table, on a short-lived read-only connection."""
        with self._reader() as con:
            return con.execute(sql, params or []).to_arrow_table()

    def vectors(self, version: Version) -> tuple[np.ndarray, np.ndarray]:
        """(chunk_keys int64, vectors float32 (n, d)) of one version, ordered by chunk_key."""
        table = self._table(queries.version_vectors(int(version.lake_snapshot), self._coded()),
                            [version.model_fingerprint])
        return table["chunk_key"].to_numpy().astype(np.int64), self._decode(table, version)

    def distinct_vectors(self, version: Version) -> tuple[pa.Array, np.ndarray]:
        """(text hashes, vectors (n, d) float32): one per distinct chunk text of `version`,
        sorted by text hash."""
        table = self._table(queries.distinct_vectors(int(version.lake_snapshot), self._coded()),
                            [version.model_fingerprint])
        return table["text_hash"].combine_chunks().cast(pa.string()), self._decode(table, version)

    def reference_sample(self, version: Version, size: int, seed: int
                         ) -> tuple[list[str], np.ndarray]:
        """(texts, vectors) of a seeded sample of `size` chunks, one per document."""
        table = self._table(queries.reference_chunks(int(version.lake_snapshot), self._coded()),
                            [seed, version.model_fingerprint, seed, size])
        return table["text"].to_pylist(), self._decode(table, version)

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

    def recent_alarms(self, version_id: int, kind: str, limit: int) -> list[bool]:
        """Alarms of the last `limit` drift checks of one kind on `version_id`, oldest first."""
        with self._reader() as con:
            if "drift_metrics" not in _tables(con):
                return []
            rows = con.execute(queries.DRIFT_ALARMS, [version_id, kind, limit]).fetchall()
        return [bool(r[1]) for r in reversed(rows)]

    def last_drift_check(self) -> dict[str, Any] | None:
        """The newest drift check (check_id, version_id, kind, source, checked_at, alarm,
        drifted), or None when there was none."""
        with self._reader() as con:
            if "drift_metrics" not in _tables(con):
                return None
            rows = queries.fetch_dicts(con, queries.LAST_DRIFT_CHECK)
        return rows[0] if rows else None

    def projection(self, version_id: int, check_id: str | None = None) -> pa.Table:
        """The 2-D map rows of a version (or of one drift check's sample placed on it)."""
        with self._reader() as con:
            if "projections" not in _tables(con):
                return pa.table({})
            return con.execute(queries.PROJECTION, [version_id, check_id]).to_arrow_table()

    def chunk_vectors(self, version: Version, keys: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(chunk keys, vectors) of the given chunks of `version`, by key."""
        sql = queries.version_vectors(int(version.lake_snapshot), self._coded(), of_keys=True)
        table = self._table(sql, [version.model_fingerprint, keys])
        return table["chunk_key"].to_numpy().astype(np.int64), self._decode(table, version)

    def _coded(self) -> bool:
        """Has `embeddings` the precision columns (a warehouse of an older embedpipe gains them
        with its next writer)?"""
        with self._reader() as con:
            return "codes" in {r[0] for r in con.execute(queries.EMBEDDING_COLUMNS).fetchall()}

    def _decode(self, table: pa.Table, version: Version) -> np.ndarray:
        """The float32 vectors of a result with `vector`, `dtype` and `codes` columns, whatever
        precision each row was stored in (see `store.vector_dtype`)."""
        dimension = int(version.dimension)
        dtypes = table["dtype"].to_pylist() if "dtype" in table.column_names else []
        if all(d in (None, "float32") for d in dtypes):
            return _vector_matrix(table, dimension)
        scale = self.vector_scale(version.model_fingerprint) if "int8" in dtypes else None
        return decode_table(table, dimension, scale)

    def vector_scale(self, fingerprint: str) -> np.ndarray | None:
        """The per-dimension int8 scale of a model's stored vectors, if it has one."""
        with self._reader() as con:
            if "vector_scales" not in _tables(con):
                return None
            row = con.execute(queries.VECTOR_SCALE, [fingerprint]).fetchone()
        return np.asarray(row[0], dtype=np.float32) if row else None

    def query_reference(self) -> tuple[str, str, list[str]] | None:
        """(set id, source, texts) of the query sample query drift compares with, if any."""
        with self._reader() as con:
            if "query_references" not in _tables(con):
                return None
            rows = con.execute(queries.LATEST_QUERY_REFERENCE).fetchall()
        return (rows[0][0], rows[0][1], [r[2] for r in rows]) if rows else None

    def drift_checks_since(self, since: Any) -> list[dict[str, Any]]:
        """Drift checks (one row each: kind, source, checked_at, alarm, drifted) since `since`."""
        with self._reader() as con:
            if "drift_metrics" not in _tables(con):
                return []
            return queries.fetch_dicts(con, queries.DRIFT_CHECKS_SINCE, [since])

    def chunk_spread(self, version: Version, many: int) -> float:
        """Share of the version's documents cut into `many` chunks or more."""
        with self._reader() as con:
            row = con.execute(queries.chunk_spread(int(version.lake_snapshot)), [many]).fetchone()
        return float(row[0]) if row else 0.0

    def text_sample(self, version: Version, size: int) -> list[str]:
        """A deterministic sample of the version's document texts (their first 2,000 chars)."""
        return self._table(queries.text_sample(int(version.lake_snapshot)), [size]
                           )["text"].to_pylist()

    def runs(self, flow: str, limit: int = 10) -> list[dict[str, Any]]:
        """The newest runs of one flow (ingest, monitor, retrain, evaluate), newest first;
        `summary` parsed from JSON."""
        with self._reader() as con:
            if "runs" not in _tables(con):
                return []
            rows = queries.fetch_dicts(con, queries.RECENT_RUNS, [flow, limit])
        return [{**r, "summary": json.loads(r["summary"]) if r["summary"] else {}} for r in rows]

    def metrics(self, version_id: int) -> list[dict[str, Any]]:
        """The quality_metrics rows of one version."""
        with self._reader() as con:
            return queries.fetch_dicts(con, queries.VERSION_METRICS, [version_id])

    def documents_state(self, version: Version) -> pa.Table:
        """(doc_id, content_hash) of every document of `version`."""
        with self.session() as session:
            return session.documents_at(version)


class SqlSession:
    """A locked-down connection and the views it may read; close it (or use `with`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, views: frozenset[str]) -> None:
        self.con = con
        self.views = views

    def query(self, sql: str, timeout: float | None = None, max_rows: int | None = None
              ) -> sandbox.QueryResult:
        return sandbox.run_query(self.con, sql, self.views, timeout, max_rows)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> SqlSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute(queries.LAKE_TABLES).fetchall()}


def _vector_matrix(table: Any, dimension: int) -> np.ndarray:
    if table.num_rows == 0:
        return np.zeros((0, dimension), dtype=np.float32)
    flat = pa.concat_arrays([c.flatten() for c in table["vector"].chunks])
    matrix = flat.to_numpy(zero_copy_only=False).astype(np.float32)
    return matrix.reshape(table.num_rows, dimension)


def open(path: str | Path, catalog: str | None = None) -> Warehouse:  # noqa: A001 - the API name
    """The warehouse at `path`.

    >>> wh = open("/tmp/nowhere")   # doctest: +SKIP
    >>> [v.version_id for v in wh.versions()]   # doctest: +SKIP
    [1, 2]
    """
    return Warehouse(path, catalog)
