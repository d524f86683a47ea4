"""Reads of a version's vectors, whatever precision they were stored in.

Input: a `Version` (its lake snapshot, model fingerprint, dimension). Output: chunk keys or text
hashes beside float32 (n, d) matrices, decoded from float32, float16 or int8 rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from warehouse import queries
from warehouse.codec import decode_table
from warehouse.reads import LakeReads, lake_tables
from warehouse.version import Version


class VectorReads(LakeReads):
    """The vectors of versions, as NumPy matrices."""

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
            if "vector_scales" not in lake_tables(con):
                return None
            row = con.execute(queries.VECTOR_SCALE, [fingerprint]).fetchone()
        return np.asarray(row[0], dtype=np.float32) if row else None


def _vector_matrix(table: Any, dimension: int) -> np.ndarray:
    if table.num_rows == 0:
        return np.zeros((0, dimension), dtype=np.float32)
    flat = pa.concat_arrays([c.flatten() for c in table["vector"].chunks])
    matrix = flat.to_numpy(zero_copy_only=False).astype(np.float32)
    return matrix.reshape(table.num_rows, dimension)
