"""hnswlib over inner product (= cosine on unit vectors).

Parameters (see hnswlib's own trade-off notes): `m` links per node (recall and memory, ~m*8
bytes per vector), `ef_construction` the candidate list while inserting (a better graph, built
more slowly), `ef` the candidate list per query (recall against latency; tuned after the build
to the smallest value that reaches the recall target).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tasks.index.ann.base import AnnIndex

FILE = "index.bin"


class HnswIndex(AnnIndex):
    backend = "hnswlib"

    def __init__(self, index: Any, ef: int) -> None:
        self.index = index
        self.set_ef(ef)

    @classmethod
    def build(cls, vectors: np.ndarray, labels: np.ndarray, params: dict[str, Any]
              ) -> HnswIndex:
        import hnswlib

        index = hnswlib.Index(space="ip", dim=vectors.shape[1])
        index.init_index(max_elements=max(len(vectors), 1), M=params.get("m", 16),
                         ef_construction=params.get("ef_construction", 200),
                         random_seed=params.get("seed", 100))
        index.set_num_threads(params.get("threads", 2))
        if len(vectors):
            index.add_items(vectors, labels)
        return cls(index, ef=params.get("ef", 10))

    def add(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        """Grow the index (resizing it) by more vectors: builds that arrive in parts."""
        current = len(self)
        self.index.resize_index(current + len(vectors))
        self.index.add_items(vectors, labels)

    def __len__(self) -> int:
        return int(self.index.get_current_count())

    def set_ef(self, ef: int) -> None:
        self.ef = ef
        self.index.set_ef(ef)

    def query(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        queries = np.asarray(vectors, dtype=np.float32).reshape(-1, self.index.dim)
        if k == 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        # hnswlib refuses ef < k; a query for many neighbours widens the search for itself.
        self.index.set_ef(max(self.ef, k))
        try:
            labels, distances = self.index.knn_query(queries, k=k)
        finally:
            self.index.set_ef(self.ef)
        return labels.astype(np.int64), (1.0 - distances).astype(np.float32)

    def save(self, directory: Path) -> None:
        self.index.save_index(str(directory / FILE))

    @classmethod
    def load(cls, directory: Path, dimension: int, count: int) -> HnswIndex:
        import hnswlib

        index = hnswlib.Index(space="ip", dim=dimension)
        index.load_index(str(directory / FILE), max_elements=max(count, 1))
        return cls(index, ef=10)
