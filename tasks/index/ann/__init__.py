"""Approximate nearest-neighbour backends behind one contract, `AnnIndex`.

Each backend is one file (`exact.py`, `hnsw.py`): build from unit vectors and int64 labels,
query for the k best labels by inner product (= cosine), save to and load from a directory.
What ties the files to a warehouse version (the meta check, staging, rename) is the storage
layer's business (`warehouse/indexes.py`), not a backend's. The same contract test runs against
every backend (`tests/tasks/index/test_index.py`), so a new backend costs one file and one
name here.
"""

from __future__ import annotations

from tasks.index.ann.base import AnnIndex
from tasks.index.ann.exact import ExactIndex
from tasks.index.ann.hnsw import HnswIndex

BACKENDS: dict[str, type[AnnIndex]] = {"hnswlib": HnswIndex, "exact": ExactIndex}


def backend(name: str) -> type[AnnIndex]:
    """The `AnnIndex` class registered as `name`.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    if name not in BACKENDS:
        raise ValueError(f"ANN backend {name!r} unknown; valid: {sorted(BACKENDS)}")
    return BACKENDS[name]


__all__ = ["BACKENDS", "AnnIndex", "ExactIndex", "HnswIndex", "backend"]
