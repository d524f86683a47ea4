"""Approximate nearest-neighbour indexes over unit vectors, and the recall check that tunes them.

Input: float32 unit vectors with int64 labels (the chunks' `chunk_key`). Output: an `AnnIndex`
and an `IndexReport` of its build parameters and measured recall@k against exact search.
`ExactIndex` (NumPy, brute force) is the reference every ANN backend is tested against.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import IndexMismatch


class IndexConfig(BaseModel):
    """HNSW build parameters and the recall target that picks the query-time `ef`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Graph degree: more links raise recall and memory (about M * 8 bytes per vector) and slow
    # the build. 16 is the usual sweet spot for 384-d text embeddings.
    m: int = Field(16, ge=2)
    # Candidate list while inserting: higher builds a better graph, more slowly. Build-time only.
    ef_construction: int = Field(200, ge=8)
    # The smallest ef (query-time candidate list) on this ladder reaching target_recall is chosen.
    target_recall: float = Field(0.99, gt=0.0, le=1.0)
    recall_k: int = Field(10, ge=1)
    sample_queries: int = Field(200, ge=1)
    seed: int = 100
    threads: int = Field(2, ge=1)


EF_LADDER = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


class AnnIndex(Protocol):
    def query(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(labels, cosine scores), each (len(vectors), k'), best first; k' = min(k, size)."""
        ...

    def __len__(self) -> int: ...


class ExactIndex:
    """Brute-force inner product: exact, O(n) per query; the reference for recall."""

    def __init__(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def query(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        scores = np.asarray(vectors, dtype=np.float32) @ self.vectors.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        return self.labels[top], np.take_along_axis(top_scores, order, axis=1)


class HnswIndex:
    """hnswlib over inner product (= cosine on unit vectors)."""

    def __init__(self, index: object, ef: int) -> None:
        self.index = index
        self.ef = ef

    @classmethod
    def build(cls, vectors: np.ndarray, labels: np.ndarray, config: IndexConfig) -> HnswIndex:
        import hnswlib

        index = hnswlib.Index(space="ip", dim=vectors.shape[1])
        index.init_index(max_elements=max(len(vectors), 1), M=config.m,
                         ef_construction=config.ef_construction, random_seed=config.seed)
        index.set_num_threads(config.threads)
        if len(vectors):
            index.add_items(vectors, labels)
        return cls(index, ef=EF_LADDER[0])

    def __len__(self) -> int:
        return int(self.index.get_current_count())  # type: ignore[attr-defined]

    def set_ef(self, ef: int) -> None:
        self.ef = ef
        self.index.set_ef(ef)  # type: ignore[attr-defined]

    def query(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, len(self))
        # hnswlib refuses ef < k; a query for many neighbours widens the search for itself.
        self.index.set_ef(max(self.ef, k))  # type: ignore[attr-defined]
        labels, distances = self.index.knn_query(vectors, k=k)  # type: ignore[attr-defined]
        return labels.astype(np.int64), (1.0 - distances).astype(np.float32)

    def save(self, directory: Path, meta: dict) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.index.save_index(str(directory / "index.bin"))  # type: ignore[attr-defined]
        (directory / "meta.json").write_text(json.dumps({**meta, "ef": self.ef}, indent=2))

    @classmethod
    def load(cls, directory: Path, expect: dict) -> HnswIndex:
        """Load an index saved by `save`, refusing one whose meta differs from `expect`."""
        import hnswlib

        meta_path = directory / "meta.json"
        if not meta_path.exists():
            raise IndexMismatch(f"{directory}: no index here (meta.json missing); "
                                "rebuild it with `embedpipe index`")
        meta = json.loads(meta_path.read_text())
        wrong = {key: (meta.get(key), value) for key, value in expect.items()
                 if meta.get(key) != value}
        if wrong:
            detail = ", ".join(f"{k}: index has {a!r}, version has {b!r}"
                               for k, (a, b) in wrong.items())
            raise IndexMismatch(f"{directory}: index does not belong to this version ({detail})")
        index = hnswlib.Index(space="ip", dim=int(meta["dimension"]))
        index.load_index(str(directory / "index.bin"), max_elements=int(meta["count"]))
        loaded = cls(index, ef=int(meta["ef"]))
        loaded.set_ef(loaded.ef)
        return loaded


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the true top-k labels present in the found top-k."""
    if truth.size == 0:
        return 1.0
    hits = sum(len(set(f) & set(t)) for f, t in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.size


@dataclass(frozen=True)
class IndexReport:
    backend: str
    count: int
    dimension: int
    m: int
    ef_construction: int
    ef: int
    seed: int
    threads: int
    recall_k: int
    target_recall: float
    recall: float
    sample_queries: int
    build_seconds: float
    library_version: str

    def as_dict(self) -> dict:
        return asdict(self)


def build_index(
    vectors: np.ndarray,
    labels: np.ndarray,
    config: IndexConfig,
    queries: np.ndarray | None = None,
) -> tuple[HnswIndex, IndexReport]:
    """An HNSW index with the smallest `ef` on `EF_LADDER` that reaches the recall target.

    Recall@k is measured against `ExactIndex` on `queries` (real queries when given) or on a
    seeded sample of the indexed vectors themselves.
    """
    from importlib.metadata import version

    started = time.perf_counter()
    index = HnswIndex.build(vectors, labels, config)
    build_seconds = time.perf_counter() - started
    if queries is None:
        rng = np.random.default_rng(config.seed)
        take = rng.choice(len(vectors), size=min(config.sample_queries, len(vectors)),
                          replace=False)
        queries = vectors[np.sort(take)]
    k = min(config.recall_k, len(vectors))
    recall, ef = 1.0, EF_LADDER[0]
    if k and len(queries):
        truth, _ = ExactIndex(vectors, labels).query(queries, k)
        for ef in EF_LADDER:
            index.set_ef(ef)
            recall = recall_at_k(index.query(queries, k)[0], truth)
            if recall >= config.target_recall:
                break
    index.set_ef(ef)
    report = IndexReport(
        backend="hnswlib", count=len(vectors), dimension=int(vectors.shape[1]), m=config.m,
        ef_construction=config.ef_construction, ef=ef, seed=config.seed, threads=config.threads,
        recall_k=k, target_recall=config.target_recall, recall=round(recall, 4),
        sample_queries=len(queries), build_seconds=round(build_seconds, 3),
        library_version=version("hnswlib"),
    )
    return index, report
