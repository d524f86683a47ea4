"""Publish and promote versions: the only code that writes to the lake.

A version is published in one DuckLake transaction: document/chunk changes, new vectors, the
quarantine of the run and the `versions` row commit together, so a reader (or a crash) sees the
whole version or none of it. Its snapshot id is the one that commit creates. Promotion moves the
active pointer with one UPDATE; no data is copied.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from warehouse import queries
from warehouse.busy import BUSY_SECONDS, busy, retrying
from warehouse.codec import int8_scale, to_storage
from warehouse.errors import MixedModels, WarehouseError
from warehouse.faults import checkpoint
from warehouse.lake import connect as lake_connect
from warehouse.lake import redact_catalog
from warehouse.lock import warehouse_lock
from warehouse.schema import (
    DRIFT_ROWS,
    METRICS_ROWS,
    PROJECTION_ROWS,
    QUERY_REFERENCE_ROWS,
    RUNS_ROWS,
)
from warehouse.store import LakeSession, Version, Warehouse


@dataclass(frozen=True)
class VersionDraft:
    """What a new version is made of, beside its data."""

    model_name: str
    model_location: str
    model_fingerprint: str
    dimension: int
    chunker_config: dict[str, Any]
    corpus_fingerprint: str
    message: str | None = None
    model_backend: str = "torch"
    summary: dict[str, Any] = field(default_factory=dict)
    source_fingerprint: str | None = None  # see tasks.prep.chain.source_key
    runtime: dict[str, str | None] = field(default_factory=dict)  # see Version.runtime


@dataclass(frozen=True)
class Changes:
    """The data of a new version relative to the lake's latest state.

    `documents`/`chunks` are the rows of added or re-chunked documents (chunks without
    `chunk_key`: keys are assigned here); `drop_doc_ids` are removed first (deleted, edited or
    re-chunked documents); `vectors` (model_fingerprint, text_hash, vector) are the new ones.
    """

    documents: pa.Table
    chunks: pa.Table
    drop_doc_ids: list[str]
    vectors: pa.Table
    quarantine: pa.Table
    n_reused: int = 0
    vector_dtype: str = "float32"  # how the new vectors are stored (see warehouse/codec.py)


class WarehouseWriter(LakeSession):
    """Write access, holding the warehouse lock for its lifetime."""

    def publish(self, draft: VersionDraft, changes: Changes) -> Version:
        """Commit `changes` as a new candidate version.

        Raises:
            MixedModels: a vector of another model, or a chunk without a vector of this model.
        """
        self.delete_orphaned_files()  # left behind by a writer killed mid-commit
        fingerprints = set(changes.vectors["model_fingerprint"].to_pylist())
        if fingerprints - {draft.model_fingerprint}:
            raise MixedModels(
                f"vectors of models {sorted(fingerprints)} cannot be published in a version of "
                f"model {draft.model_fingerprint}: a version holds one model's vectors")
        try:
            row = retrying(lambda: self._publish_once(draft, changes))
        except duckdb.TransactionException as exc:
            if not busy(exc):
                raise
            raise self._commit_failed(exc, "the new version (busy for "  # after BUSY_SECONDS
                                      f"{BUSY_SECONDS:.0f} s)") from exc
        # Committed: nothing below may run the publish again. A lock-free append that committed
        # while the transaction was open moves its snapshot on (PostgreSQL catalogs rebase).
        (actual,) = self.con.execute(queries.LAST_COMMITTED_SNAPSHOT).fetchone() or (None,)
        if actual != row["lake_snapshot"]:
            retrying(lambda: self.con.execute(queries.SET_LAKE_SNAPSHOT,
                                              [actual, row["version_id"]]))
        return self._version(int(row["version_id"]))

    def _publish_once(self, draft: VersionDraft, changes: Changes) -> dict[str, Any]:
        """One attempt at `publish`, up to its commit: one transaction, rolled back whole if
        anything fails; returns the committed `versions` row.

        SQLite can refuse a commit at once, without waiting, when a lock-free append (a drift
        row, a logged search) became the pending writer while this transaction read the catalog
        (duckdb/ducklake#1309): the soak lost an ingest so. That error propagates, for
        `publish` to try again; any other failure of the commit is a `WarehouseError`.
        """
        con = self.con
        last_id, last_key = con.execute(queries.MAX_VERSION).fetchone()  # type: ignore[misc]
        parent = self.active_version()
        chunks = _with_keys(changes.chunks, int(last_key) + 1)
        con.execute("BEGIN")
        try:
            con.register("ids", pa.table({"doc_id": pa.array(changes.drop_doc_ids, pa.string())}))
            con.execute(queries.DELETE_CHUNKS)
            con.execute(queries.DELETE_DOCUMENTS)
            for name, table in (("new_documents", changes.documents), ("new_chunks", chunks),
                                ("new_quarantine", changes.quarantine)):
                con.register(name, table)
            if changes.documents.num_rows:
                con.execute(queries.INSERT_DOCUMENTS)
            if chunks.num_rows:
                con.execute(queries.INSERT_CHUNKS)
            if changes.vectors.num_rows:
                con.register("new_vectors", self._storable(changes, draft.model_fingerprint))
                con.execute(queries.INSERT_EMBEDDINGS)
            if changes.quarantine.num_rows:
                con.execute(queries.INSERT_QUARANTINE, [int(last_id) + 1])
            missing = con.execute(queries.CHUNKS_WITHOUT_VECTOR,
                                  [draft.model_fingerprint]).fetchone()[0]  # type: ignore[index]
            if missing:
                raise MixedModels(f"{missing} chunks have no vector of model "
                                  f"{draft.model_fingerprint}; a version cannot mix models")
            n_docs, n_chunks = con.execute(queries.HEAD_COUNTS).fetchone()  # type: ignore[misc]
            # One transaction makes one snapshot: the next, unless a lock-free append commits
            # meanwhile (`publish` checks).
            snapshot = con.execute(queries.CURRENT_SNAPSHOT).fetchone()[0] + 1  # type: ignore[index]
            row = {
                "version_id": int(last_id) + 1,
                "parent_id": parent.version_id if parent else None,
                "status": "candidate", "pinned": False,
                "model_name": draft.model_name, "model_location": draft.model_location,
                "model_fingerprint": draft.model_fingerprint, "dimension": draft.dimension,
                "model_backend": draft.model_backend,
                "source_fingerprint": draft.source_fingerprint,
                "runtime": json.dumps(draft.runtime, sort_keys=True),
                "chunker_config": json.dumps(draft.chunker_config, sort_keys=True),
                "corpus_fingerprint": draft.corpus_fingerprint, "lake_snapshot": snapshot,
                "n_documents": n_docs, "n_chunks": n_chunks,
                "n_embedded": changes.vectors.num_rows, "n_reused": changes.n_reused,
                "n_quarantined": changes.quarantine.num_rows,
                "max_chunk_key": max(int(last_key), int(last_key) + chunks.num_rows),
                "created_at": datetime.now(UTC).replace(tzinfo=None),
                "message": draft.message, "summary": json.dumps(draft.summary, default=str),
                "index_meta": None, "gate": None,
            }
            con.register("new_version", pa.Table.from_pylist([row]))
            con.execute(queries.INSERT_VERSION)
            checkpoint("publish")
            try:
                con.execute("COMMIT")
            except duckdb.Error as exc:  # e.g. the catalog server restarted: its session is gone
                if busy(exc):
                    raise
                raise self._commit_failed(exc, f"version {row['version_id']}") from exc
        except BaseException:
            with suppress(duckdb.Error):  # a lost connection has no transaction to roll back
                con.execute("ROLLBACK")
            raise
        finally:
            for name in ("ids", "new_documents", "new_chunks", "new_vectors", "new_quarantine",
                         "new_version"):
                con.unregister(name)
        return row

    def _commit_failed(self, exc: duckdb.Error, what: str) -> WarehouseError:
        where = redact_catalog(self.warehouse.catalog) or self.warehouse.where
        detail = " ".join(str(exc).split())[:200]
        return WarehouseError(
            f"the catalog at {where} failed the commit of {what} ({detail}): nothing was "
            "published and the active version is unchanged; run it again once the catalog "
            "answers")

    def _storable(self, changes: Changes, fingerprint: str) -> pa.Table:
        """The new vectors in the configured precision; an int8 scale is fixed by the first
        int8 vectors of a model and recorded (in this same transaction)."""
        dtype = changes.vector_dtype
        if dtype == "int8":
            scale = self._scale(fingerprint)
            if scale is None:
                flat = pa.concat_arrays([c.flatten() for c in changes.vectors["vector"].chunks])
                matrix = flat.to_numpy(zero_copy_only=False).astype("float32").reshape(
                    changes.vectors.num_rows, -1)
                scale = int8_scale(matrix)
                self.con.execute(queries.INSERT_SCALE, [fingerprint, scale.tolist()])
            return to_storage(changes.vectors, "int8", scale)
        return to_storage(changes.vectors, dtype)  # type: ignore[arg-type]

    def _scale(self, fingerprint: str) -> Any:
        row = self.con.execute(queries.VECTOR_SCALE, [fingerprint]).fetchone()
        if row is None:
            return None
        import numpy as np

        return np.asarray(row[0], dtype=np.float32)

    def record_index(self, version_id: int, meta: dict[str, Any]) -> None:
        retrying(lambda: self.con.execute(queries.SET_INDEX_META, [json.dumps(meta), version_id]))

    def record_summary(self, version_id: int, summary: dict[str, Any]) -> None:
        text = json.dumps(summary, default=str)
        retrying(lambda: self.con.execute(queries.SET_SUMMARY, [text, version_id]))

    def record_metrics(self, version_id: int, rows: list[dict[str, Any]]) -> None:
        """Record the version's metrics; each (evaluator, metric) in `rows` replaces its old row.

        Rows: evaluator, metric, value, greater_is_better (None: informational), is_primary.
        Metrics not in `rows` are kept (an earlier evaluation may have computed more).
        """
        now = datetime.now(UTC).replace(tzinfo=None)
        table = pa.Table.from_pylist([{"version_id": version_id, **r, "created_at": now}
                                      for r in rows], schema=METRICS_ROWS)
        self.con.register("new_metrics", table)

        def replace() -> None:
            with self._transaction():
                self.con.execute(queries.DELETE_METRICS, [version_id])
                self.con.execute(queries.INSERT_METRICS)

        try:
            retrying(replace)
        finally:
            self.con.unregister("new_metrics")

    def record_drift(self, rows: list[dict[str, Any]]) -> None:
        """Append one drift check (one row per statistic) to `drift_metrics`."""
        self._append("new_drift", pa.Table.from_pylist(rows, schema=DRIFT_ROWS),
                     queries.INSERT_DRIFT)

    def record_run(self, row: dict[str, Any]) -> None:
        """Append one flow run (run_id, flow, times, status, message, version, source…)."""
        self._append("new_run", pa.Table.from_pylist([row], schema=RUNS_ROWS),
                     queries.INSERT_RUN)

    def record_projection(self, version_id: int, check_id: str | None,
                          rows: list[dict[str, Any]]) -> None:
        """Replace the 2-D map of a version (check_id None) or of one drift check's sample."""
        table = pa.Table.from_pylist([{**r, "version_id": version_id, "check_id": check_id}
                                      for r in rows], schema=PROJECTION_ROWS)
        self.con.register("new_projection", table)

        def replace() -> None:
            with self._transaction():
                self.con.execute(queries.DELETE_PROJECTION, [version_id, check_id])
                self.con.execute(queries.INSERT_PROJECTION)

        try:
            retrying(replace)
        finally:
            self.con.unregister("new_projection")

    def record_query_reference(self, set_id: str, source: str, texts: list[str]) -> None:
        """Make `texts` (a sample of a query log) the reference of query drift from now on."""
        created = datetime.now(UTC).replace(tzinfo=None)
        table = pa.Table.from_pylist([{"set_id": set_id, "created_at": created, "source": source,
                                       "text": t} for t in texts], schema=QUERY_REFERENCE_ROWS)
        self._append("new_reference", table, queries.INSERT_QUERY_REFERENCE)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        self.con.execute("BEGIN")
        try:
            yield
            self.con.execute("COMMIT")
        except BaseException:
            with suppress(duckdb.Error):  # a lost connection has no transaction to roll back
                self.con.execute("ROLLBACK")
            raise

    def _append(self, name: str, table: pa.Table, statement: str) -> None:
        """One INSERT from `table`, in its own transaction (retried while the catalog is busy)."""
        self.con.register(name, table)
        try:
            retrying(lambda: self.con.execute(statement))
        finally:
            self.con.unregister(name)

    def record_gate(self, version_id: int, decision: dict[str, Any]) -> None:
        text = json.dumps(decision, default=str)
        retrying(lambda: self.con.execute(queries.SET_GATE, [text, version_id]))

    def set_status(self, version_id: int, status: str) -> None:
        self._version(version_id)
        retrying(lambda: self.con.execute(queries.SET_STATUS, [status, version_id]))

    def promote(self, version_id: int) -> Version:
        """Make `version_id` the one active version (the previous one becomes retired)."""
        self._version(version_id)

        def move() -> None:
            with self._transaction():
                self.con.execute(queries.RETIRE_ACTIVE)
                self.con.execute(queries.SET_STATUS, ["active", version_id])

        retrying(move)
        return self._version(version_id)

    def set_pinned(self, version_id: int, pinned: bool) -> None:
        self._version(version_id)
        retrying(lambda: self.con.execute(queries.SET_PINNED, [pinned, version_id]))

    def delete_orphaned_files(self) -> None:
        """Remove data files no snapshot references (left by a writer killed mid-commit)."""
        self.con.execute("CALL ducklake_delete_orphaned_files('lake', cleanup_all => true)")


def _with_keys(chunks: pa.Table, first_key: int) -> pa.Table:
    keys = pa.array(range(first_key, first_key + chunks.num_rows), pa.int64())
    if "chunk_key" in chunks.column_names:
        return chunks.set_column(chunks.schema.get_field_index("chunk_key"), "chunk_key", keys)
    return chunks.add_column(0, "chunk_key", keys)


@contextmanager
def open_writer(warehouse: Warehouse, wait_seconds: float = 0.0, lock: bool = True,
                create: bool = True) -> Iterator[WarehouseWriter]:
    """A read-write lake connection holding the writer lock; both released on exit.

    `lock=False` is for code that already holds the lock (a flow holds it for a whole run and
    its tasks open their own connections). `create=False` refuses a warehouse that does not
    exist yet (maintenance commands must not create one at a mistyped path).
    """
    if warehouse.path.exists() and not warehouse.path.is_dir():
        raise WarehouseError(f"--warehouse {warehouse.path} is a file, not a warehouse directory")
    if not create and not warehouse.exists():
        raise WarehouseError(f"no warehouse at {warehouse.where}: run `embedpipe ingest SOURCE` "
                             "first (or pass --warehouse / set EMBEDPIPE_WAREHOUSE)")
    with warehouse_lock(warehouse, wait_seconds, create) if lock else nullcontext():
        con = lake_connect(warehouse.location, warehouse.catalog)
        try:
            yield WarehouseWriter(warehouse, con)
        finally:
            con.close()
