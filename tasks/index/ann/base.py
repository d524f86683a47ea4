"""The contract every ANN backend fulfils (txtai's `ANN` base has the same shape)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


class AnnIndex(ABC):
    """An index of unit vectors, answering inner-product (cosine) queries with labels."""

    backend: ClassVar[str]

    @classmethod
    @abstractmethod
    def build(cls, vectors: np.ndarray, labels: np.ndarray, params: dict[str, Any]) -> AnnIndex:
        """Index `vectors` (n, d) float32 under int64 `labels`; `params` are the backend's."""

    @abstractmethod
    def query(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(labels int64, cosine scores float32), each (len(vectors), k'), best first;
        k' = min(k, len(self))."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write the index's own files into `directory` (which exists)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, dimension: int, count: int) -> AnnIndex:
        """Read what `save` wrote."""

    # Search breadth, for backends that trade recall for speed; exact search ignores it.
    ef: int = 0

    def set_ef(self, ef: int) -> None:
        self.ef = ef
