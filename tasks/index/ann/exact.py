"""Brute-force inner product in NumPy: exact, O(n) per query; the reference for recall."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tasks.index.ann.base import AnnIndex

_SCORES_AT_ONCE = 16_000_000  # float32 scores per matrix product: 64 MB


class ExactIndex(AnnIndex):
    backend = "exact"

    def __init__(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.int64)

    @classmethod
    def build(cls, vectors: np.ndarray, labels: np.ndarray, params: dict[str, Any] | None = None
              ) -> ExactIndex:
        return cls(vectors, labels)

    def __len__(self) -> int:
        return len(self.labels)

    def query(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        queries = np.asarray(vectors, dtype=np.float32).reshape(-1, self.vectors.shape[1])
        if k == 0 or not len(queries):
            empty = np.zeros((len(queries), k if len(queries) == 0 else 0))
            return empty.astype(np.int64), empty.astype(np.float32)
        # Queries a few at a time: the score matrix stays ~64 MB however many vectors there are.
        step = max(1, _SCORES_AT_ONCE // max(len(self), 1))
        labels, scores = zip(*(self._top(queries[i:i + step], k)
                               for i in range(0, len(queries), step)), strict=True)
        return np.concatenate(labels), np.concatenate(scores)

    def _top(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = queries @ self.vectors.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        return self.labels[top], np.take_along_axis(top_scores, order, axis=1)

    def save(self, directory: Path) -> None:
        np.save(directory / "vectors.npy", self.vectors)
        np.save(directory / "labels.npy", self.labels)

    @classmethod
    def load(cls, directory: Path, dimension: int, count: int) -> ExactIndex:
        # Memory-mapped: a large exact index is paged in by the queries that touch it.
        return cls(np.load(directory / "vectors.npy", mmap_mode="r"),
                   np.load(directory / "labels.npy"))
