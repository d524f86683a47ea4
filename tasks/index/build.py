"""The index of a version: one ANN entry per distinct chunk text, its `ef` tuned to a recall target.

Input: unit vectors of a version's distinct chunk texts, and which chunks share each text.
Output: a `VersionIndex` that answers with chunk keys, and an `IndexReport` (build parameters,
measured recall against exact search). Indexing distinct texts, not chunks, matters: a corpus
that repeats one paragraph ten thousand times (boilerplate, a pasted log) would otherwise put
ten thousand identical points into the HNSW graph, which then cannot navigate past them (recall
0.0 was measured on such a corpus). Recall is measured tie-aware for the same reason: any hit
scoring at least the k-th exact score is a correct top-k member.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tasks.index.ann import AnnIndex, ExactIndex, HnswIndex, backend

__all__ = ["EF_LADDER", "ExactIndex", "HnswIndex", "IndexConfig", "IndexReport", "VersionIndex",
           "build_index", "group_by_text", "recall_at_k", "tie_aware_recall"]

# Scores this close count as equal (float32 inner products of unit vectors).
TIE_EPSILON = 1e-5


class IndexConfig(BaseModel):
    """ANN backend, its build parameters, and the recall target that picks the query-time `ef`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: Literal["hnswlib", "exact"] = "hnswlib"
    # Graph degree: more links raise recall and memory (about M * 8 bytes per vector) and slow
    # the build. 16 is the usual sweet spot for 384-d text embeddings.
    m: int = Field(16, ge=2)
    # Candidate list while inserting: higher builds a better graph, more slowly. Build-time only.
    ef_construction: int = Field(200, ge=8)
    # The smallest ef (query-time candidate list) on this ladder reaching target_recall is chosen.
    target_recall: float = Field(0.99, gt=0.0, le=1.0)
    recall_k: int = Field(10, ge=1)
    sample_queries: int = Field(400, ge=1)  # probes (or chunk vectors) to tune on
    # The query log tunes ef (instead of probes) once it holds this many distinct queries;
    # at most `log_sample` of the newest are read.
    log_min_queries: int = Field(100, ge=1)
    log_sample: int = Field(1000, ge=1)
    seed: int = 100
    threads: int = Field(2, ge=1)
    # A BM25 index of the chunk texts beside the ANN index (search --mode bm25 | hybrid).
    bm25: bool = True


EF_LADDER = (10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of the true top-k labels present in the found top-k."""
    if truth.size == 0:
        return 1.0
    hits = sum(len(set(f) & set(t)) for f, t in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.size


def tie_aware_recall(found_scores: np.ndarray, truth_scores: np.ndarray) -> float:
    """Recall@k where a hit counts when its (exact) score reaches the k-th true score.

    hnswlib returns exact inner products for what it finds, so a found item scoring at least the
    k-th best exact score belongs in the top k, whichever of several tied items it is.

    >>> tie_aware_recall(np.array([[1.0, 0.5]]), np.array([[1.0, 0.9]]))
    0.5
    """
    if truth_scores.size == 0:
        return 1.0
    k = truth_scores.shape[1]
    kth = truth_scores[:, -1:] - TIE_EPSILON
    hits = np.minimum((found_scores[:, :k] >= kth).sum(axis=1), k)
    return float(hits.sum() / truth_scores.size)


def group_by_text(text_hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each distinct text, distinct label of every row).

    >>> first, label = group_by_text(np.array(["b", "a", "b"]))
    >>> first.tolist(), label.tolist()
    ([1, 0], [1, 0, 1])
    """
    _, first, label = np.unique(text_hashes, return_index=True, return_inverse=True)
    return first, label.reshape(-1)


@dataclass(frozen=True)
class IndexReport:
    backend: str
    count: int  # chunks
    distinct: int  # distinct chunk texts: the vectors in the ANN index
    dimension: int
    m: int
    ef_construction: int
    ef: int
    seed: int
    threads: int
    recall_k: int
    target_recall: float
    recall: float  # tie-aware recall@k at `ef` on the tuning queries
    heldout_recall: float | None  # the same on queries the tuning never saw
    sample_queries: int
    build_seconds: float
    library_version: str
    # What the tuning queries were (tasks/index/probes.py): configured | log | probes | chunks.
    queries: str = "chunks"
    log_recall: float | None = None  # recall@k at `ef` on the logged queries (None: no log)
    log_queries: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def reached_target(self) -> bool:
        return self.recall >= self.target_recall and (
            self.heldout_recall is None or self.heldout_recall >= self.target_recall)


class VersionIndex:
    """An ANN index over distinct texts that answers with the chunk keys holding them.

    `keys` are chunk keys grouped by distinct label (`offsets[i]:offsets[i+1]` hold label i's).
    """

    def __init__(self, ann: AnnIndex, keys: np.ndarray, offsets: np.ndarray) -> None:
        self.ann = ann
        self.keys = np.asarray(keys, dtype=np.int64)
        self.offsets = np.asarray(offsets, dtype=np.int64)

    @classmethod
    def from_labels(cls, ann: AnnIndex, chunk_keys: np.ndarray, labels: np.ndarray
                    ) -> VersionIndex:
        """`labels[i]` is the distinct label of chunk `chunk_keys[i]`."""
        order = np.lexsort((chunk_keys, labels))
        counts = np.bincount(labels, minlength=len(ann)) if len(labels) else np.zeros(len(ann))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(ann, np.asarray(chunk_keys)[order], offsets)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def ef(self) -> int:
        return self.ann.ef

    def set_ef(self, ef: int) -> None:
        self.ann.set_ef(ef)

    def query(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk keys, scores), each (len(vectors), min(k, chunks)), best first; -1 pads.

        Each distinct text found stands for every chunk that holds it, in key order.
        """
        rows, scores = self.query_rows(vectors, k)
        return np.where(rows >= 0, self.keys[np.maximum(rows, 0)], -1), scores

    def query_rows(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Like `query`, but positions into `keys` (= rows of the index's chunk table)."""
        k = min(k, len(self))
        labels, scores = self.ann.query(vectors, k)
        out_rows = np.full((len(labels), k), -1, dtype=np.int64)
        out_scores = np.full((len(labels), k), -np.inf, dtype=np.float32)
        for row, (row_labels, row_scores) in enumerate(zip(labels, scores, strict=True)):
            starts, ends = self.offsets[row_labels], self.offsets[row_labels + 1]
            take = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)]
                                  ) if len(starts) else np.zeros(0, dtype=np.int64)
            n = min(k, len(take))
            out_rows[row, :n] = take[:n]
            out_scores[row, :n] = np.repeat(row_scores, ends - starts)[:n]
        return out_rows, out_scores


def _halves(queries: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Tuning and held-out halves of the queries (all for tuning when there are few)."""
    if len(queries) < 20:
        return queries, queries[:0]
    order = np.random.default_rng(seed).permutation(len(queries))
    half = len(queries) // 2
    return queries[np.sort(order[:half])], queries[np.sort(order[half:])]


def build_index(vectors: np.ndarray, labels: np.ndarray, config: IndexConfig,
                queries: np.ndarray | None = None, kind: str = "chunks",
                logged: np.ndarray | None = None) -> tuple[AnnIndex, IndexReport]:
    """An ANN index with the smallest `ef` on `EF_LADDER` that reaches the recall target.

    Args:
        vectors: (n, d) unit float32 vectors, one per distinct text.
        labels: their int64 labels.
        config: backend, build parameters and the recall target.
        queries: tuning queries (see `tasks/index/probes.py`); default a seeded sample of the
            indexed vectors themselves.
        kind: what `queries` are, recorded in the report.
        logged: logged users' queries, on which recall at the chosen ef is also reported.

    Returns:
        The index (ef set) and its report; `report.reached_target` says whether the largest ef
        on the ladder was enough.
    """
    from importlib.metadata import version

    started = time.perf_counter()
    index = backend(config.backend).build(vectors, labels, {
        "m": config.m, "ef_construction": config.ef_construction, "seed": config.seed,
        "threads": config.threads, "ef": EF_LADDER[0]})
    build_seconds = time.perf_counter() - started
    if queries is None:
        kind = "chunks"
        rng = np.random.default_rng(config.seed)
        take = rng.choice(len(vectors), size=min(config.sample_queries, len(vectors)),
                          replace=False)
        queries = vectors[np.sort(take)]
    tune, heldout = _halves(queries, config.seed)
    k = min(config.recall_k, len(vectors))
    recall, heldout_recall, ef = 1.0, None, EF_LADDER[0]
    if k and len(queries) and config.backend != "exact":
        # Tuned with a margin (half the way from the target to 1) on one half of the queries,
        # so that the other half, never seen by the tuning, still reaches the target.
        aim = config.target_recall + (1 - config.target_recall) / 2
        _, truth = ExactIndex(vectors, labels).query(tune, k)
        for ef in EF_LADDER:
            index.set_ef(ef)
            recall = tie_aware_recall(index.query(tune, k)[1], truth)
            if recall >= aim:
                break
        if len(heldout):
            heldout_recall = round(measure_recall(index, vectors, labels, heldout, k), 4)
    index.set_ef(ef)
    log_recall = None
    if logged is not None and len(logged) and k and config.backend != "exact":
        log_recall = round(measure_recall(index, vectors, labels, logged, k), 4)
    library = "hnswlib" if config.backend == "hnswlib" else "numpy"
    report = IndexReport(
        backend=config.backend, count=len(vectors), distinct=len(vectors),
        dimension=int(vectors.shape[1]), m=config.m, ef_construction=config.ef_construction,
        ef=ef, seed=config.seed, threads=config.threads, recall_k=k,
        target_recall=config.target_recall, recall=round(recall, 4),
        heldout_recall=heldout_recall, sample_queries=len(queries),
        build_seconds=round(build_seconds, 3),
        library_version=version(library), queries=kind,
        log_recall=log_recall, log_queries=0 if logged is None else len(logged))
    return index, report


def measure_recall(index: AnnIndex, vectors: np.ndarray, labels: np.ndarray,
                   queries: np.ndarray, k: int) -> float:
    """Tie-aware recall@k of `index` at its current ef on `queries`, against exact search."""
    _, truth = ExactIndex(vectors, labels).query(queries, k)
    return tie_aware_recall(index.query(queries, k)[1], truth)
