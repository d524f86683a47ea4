"""Storage precision of vectors: float32 as computed, float16, or int8 with a per-dimension scale.

`store.vector_dtype` (`StoreConfig`) picks it for the vectors a version writes; every reader
decodes whatever precision each stored row has.

Input: unit float32 vectors. Output: the bytes stored per vector (`encode`) and the vectors read
back (`decode`). float16 halves the bytes (max error ~5e-4 per component of a unit vector);
int8 quarters them: each dimension d is stored as round(x_d / scale_d) in [-127, 127], with
scale_d = the largest |x_d| among the first vectors written for the model, divided by 127
(later values beyond it are clipped). What each costs in retrieval and similarity quality is
measured by `bench/precision.py`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

VectorDtype = Literal["float32", "float16", "int8"]
BYTES_PER_VALUE = {"float32": 4, "float16": 2, "int8": 1}


class StoreConfig(BaseModel):
    """How new vectors are stored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # float32: as computed. float16: half the bytes. int8: a quarter, with a per-dimension
    # scale per model. bench/precision.py measures what each costs in quality.
    vector_dtype: VectorDtype = "float32"


def int8_scale(vectors: np.ndarray) -> np.ndarray:
    """Per-dimension scale (float32) mapping the observed range onto [-127, 127].

    >>> int8_scale(np.array([[0.5, -1.0], [0.25, 0.5]], np.float32)).tolist()
    [0.003937007859349251, 0.007874015718698502]
    """
    peak = np.abs(np.asarray(vectors, dtype=np.float32)).max(axis=0) if len(vectors) else None
    if peak is None:
        raise ValueError("an int8 scale needs at least one vector")
    return (np.maximum(peak, 1e-6) / 127.0).astype(np.float32)


def encode(vectors: np.ndarray, dtype: VectorDtype, scale: np.ndarray | None = None
           ) -> list[bytes]:
    """One byte string per vector (float16 or int8 codes; float32 is stored as FLOAT[])."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if dtype == "float16":
        codes = vectors.astype(np.float16)
    elif dtype == "int8":
        if scale is None:
            raise ValueError("int8 storage needs a per-dimension scale")
        codes = np.clip(np.rint(vectors / scale), -127, 127).astype(np.int8)
    else:
        raise ValueError(f"vector dtype {dtype!r} has no codes; valid: float16, int8")
    return [row.tobytes() for row in codes]


def decode(codes: list[bytes], dtype: str, dimension: int, scale: np.ndarray | None = None
           ) -> np.ndarray:
    """float32 vectors (n, dimension) back from their codes."""
    if not codes:
        return np.zeros((0, dimension), dtype=np.float32)
    raw = b"".join(codes)
    if dtype == "float16":
        return np.frombuffer(raw, np.float16).reshape(-1, dimension).astype(np.float32)
    if dtype == "int8":
        if scale is None:
            raise ValueError("int8 codes need their per-dimension scale")
        values = np.frombuffer(raw, np.int8).reshape(-1, dimension).astype(np.float32)
        return values * np.asarray(scale, dtype=np.float32)
    raise ValueError(f"vector dtype {dtype!r} unknown; valid: float16, int8")


def to_storage(vectors: pa.Table, dtype: VectorDtype, scale: np.ndarray | None = None
               ) -> pa.Table:
    """New vectors (model_fingerprint, text_hash, vector FLOAT[]) as the lake stores them in
    `dtype`: float32 keeps `vector`; float16 and int8 move it to `codes` (and `vector` is NULL).
    """
    n = vectors.num_rows
    if dtype == "float32" or n == 0:
        return vectors.append_column("dtype", pa.array(["float32"] * n, pa.string())
                                     ).append_column("codes", pa.nulls(n, pa.binary()))
    flat = pa.concat_arrays([c.flatten() for c in vectors["vector"].chunks])
    matrix = flat.to_numpy(zero_copy_only=False).astype(np.float32).reshape(n, -1)
    codes = encode(matrix, dtype, scale)
    return vectors.set_column(vectors.schema.get_field_index("vector"), "vector",
                              pa.nulls(n, vectors.schema.field("vector").type)
                              ).append_column("dtype", pa.array([dtype] * n, pa.string())
                                              ).append_column("codes", pa.array(codes,
                                                                                pa.binary()))


def decode_table(table: pa.Table, dimension: int, scale: np.ndarray | None) -> np.ndarray:
    """float32 vectors of a result with `vector`, `dtype` and `codes` columns, row by row in
    whatever precision each row was stored."""
    n = table.num_rows
    out = np.zeros((n, dimension), dtype=np.float32)
    dtypes = table["dtype"].to_pylist()
    plain = [i for i, d in enumerate(dtypes) if d in (None, "float32")]
    if plain:
        subset = table.take(pa.array(plain)).column("vector")
        flat = pa.concat_arrays([c.flatten() for c in subset.chunks])
        out[plain] = flat.to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1,
                                                                                    dimension)
    codes = table["codes"].to_pylist()
    for kind in ("float16", "int8"):
        rows = [i for i, d in enumerate(dtypes) if d == kind]
        if rows:
            out[rows] = decode([codes[i] for i in rows], kind, dimension, scale)
    return out


def round_trip(vectors: np.ndarray, dtype: VectorDtype, scale: np.ndarray | None = None
               ) -> np.ndarray:
    """`vectors` as they come back after storage in `dtype` (float32 unchanged)."""
    if dtype == "float32":
        return np.asarray(vectors, dtype=np.float32)
    return decode(encode(vectors, dtype, scale), dtype, vectors.shape[1], scale)
