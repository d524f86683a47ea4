"""Quality evaluators: one contract, `Evaluation(metrics, primary_metric, greater_is_better)`.

Input: vectors, an ANN index and labelled sets; output: `dict[str, float]` per evaluator.
- retrieval (BEIR): nDCG@10, recall@100, MRR@10 via ranx; a document scores its best chunk.
- sts: Spearman and Pearson of cosine against gold scores (scipy).
- health: NaN/zero vectors, norm range, duplicate vectors, anisotropy, ANN recall@10 vs exact
  (tie-aware), neighbour overlap with the active version on shared chunks.
Each metric also declares its direction (`DIRECTIONS`); the gate reads only that.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tasks.index.ann import AnnIndex, ExactIndex
from tasks.index.build import tie_aware_recall
from tasks.quality.base import DIRECTIONS, Evaluation


def doc_run(query_ids: list[str], labels: np.ndarray, scores: np.ndarray,
            chunk_doc: Mapping[int, str]) -> dict[str, dict[str, float]]:
    """Per query, each document's best chunk score (the document ranking of chunk hits)."""
    run: dict[str, dict[str, float]] = {}
    for qid, row_labels, row_scores in zip(query_ids, labels.tolist(), scores.tolist(),
                                           strict=True):
        docs: dict[str, float] = {}
        for label, score in zip(row_labels, row_scores, strict=True):
            doc = chunk_doc.get(int(label))
            if doc is not None and score > docs.get(doc, -np.inf):
                docs[doc] = float(score)
        run[qid] = docs
    return run


def retrieval_metrics(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]
                      ) -> dict[str, float]:
    """nDCG@10, recall@100 and MRR@10 (trec_eval definitions, via ranx)."""
    from ranx import Qrels, Run, evaluate

    # ranx refuses a query with no retrieved document; such a query scores 0 on every metric.
    filled = {q: (docs or {"\x00none": 0.0}) for q, docs in run.items()}
    scores = evaluate(Qrels(qrels), Run(filled), ["ndcg@10", "recall@100", "mrr@10"],
                      make_comparable=True)
    return {name: round(float(value), 6) for name, value in scores.items()}


RETRIEVAL_METRICS = ("ndcg@10", "recall@100", "mrr@10")


def evaluate_retrieval(name: str, qrels: dict[str, dict[str, int]], query_ids: list[str],
                       query_vectors: np.ndarray, index: AnnIndex, chunk_doc: Mapping[int, str],
                       depth: int = 1000, evaluator: str = "retrieval") -> Evaluation:
    """Retrieval quality of exhaustive chunk ranking by `index` (the exact ceiling).

    `depth` chunks are retrieved per query so that recall@100 counts documents, not chunks.
    """
    labels, scores = index.query(query_vectors, min(depth, len(index)))
    run = doc_run(query_ids, labels, scores, chunk_doc)
    return Evaluation(f"{evaluator}:{name}", retrieval_metrics(qrels, run), "ndcg@10", True,
                      {m: True for m in RETRIEVAL_METRICS})


def evaluate_rankings(name: str, qrels: dict[str, dict[str, int]],
                      top10: dict[str, dict[str, float]], top100: dict[str, dict[str, float]]
                      ) -> Evaluation:
    """Retrieval quality of the document rankings users get (from the search path).

    Args:
        top10: per query, the documents `search -k 10` returns, with scores.
        top100: the same for `-k 100` (for recall@100).
    """
    at10, at100 = retrieval_metrics(qrels, top10), retrieval_metrics(qrels, top100)
    metrics = {"ndcg@10": at10["ndcg@10"], "mrr@10": at10["mrr@10"],
               "recall@100": at100["recall@100"]}
    return Evaluation(f"retrieval:{name}", metrics, "ndcg@10", True,
                      {m: True for m in RETRIEVAL_METRICS})


def evaluate_sts(name: str, vectors1: np.ndarray, vectors2: np.ndarray, gold: list[float]
                 ) -> Evaluation:
    """Spearman and Pearson correlation of pair cosines with gold scores."""
    from scipy.stats import pearsonr, spearmanr

    cosines = np.sum(vectors1 * vectors2, axis=1) / np.maximum(
        np.linalg.norm(vectors1, axis=1) * np.linalg.norm(vectors2, axis=1), 1e-12)
    metrics = {"spearman": round(float(spearmanr(cosines, gold).statistic), 6),
               "pearson": round(float(pearsonr(cosines, gold).statistic), 6)}
    return Evaluation(f"sts:{name}", metrics, "spearman", True,
                      {"spearman": True, "pearson": True})


def evaluate_health(vectors: np.ndarray, index: AnnIndex, labels: np.ndarray,
                    sample: int = 1000, seed: int = 0, k: int = 10,
                    overlap: float | None = None) -> Evaluation:
    """Embedding health and ANN quality of one version's vectors.

    Args:
        vectors: (n, d) float32, labels: their chunk keys, index: the version's ANN index.
        overlap: neighbour overlap with the active version, when there is one to compare with.
    """
    n = len(vectors)
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(n, size=min(sample, n), replace=False)) if n else np.arange(0)
    finite = np.isfinite(vectors).all(axis=1)
    norms = np.linalg.norm(np.where(finite[:, None], vectors, 0), axis=1)
    unique_rows = len(np.unique(np.round(vectors[finite], 6), axis=0)) if n else 0
    metrics = {
        "vectors": float(n),
        "nan_vectors": float((~finite).sum()),
        "zero_vectors": float((norms[finite] == 0).sum()),
        "norm_min": round(float(norms.min()), 6) if n else 0.0,
        "norm_max": round(float(norms.max()), 6) if n else 0.0,
        "duplicate_vectors": float(finite.sum() - unique_rows),
        "anisotropy": round(mean_pairwise_cosine(vectors[take]), 6),
    }
    if n:
        finite_vectors = np.nan_to_num(vectors)  # a NaN row must not poison exact search
        queries = finite_vectors[take[: min(200, len(take))]]
        _, truth = ExactIndex(finite_vectors, labels).query(queries, min(k, n))
        found = index.query(queries, min(k, n))[1]
        metrics["ann_recall@10"] = round(tie_aware_recall(found, truth), 6)
    if overlap is not None:
        metrics["neighbour_overlap@10"] = round(overlap, 6)
    return Evaluation("health", metrics, "ann_recall@10" if n else "vectors", True,
                      {m: DIRECTIONS[m] for m in metrics if m in DIRECTIONS})


def mean_pairwise_cosine(vectors: np.ndarray) -> float:
    """Mean cosine over distinct pairs: near 0 is isotropic, near 1 all vectors point one way."""
    n = len(vectors)
    if n < 2:
        return 0.0
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    total = unit.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def neighbour_overlap(new_neighbours: list[set[str]], old_neighbours: list[set[str]]) -> float:
    """Mean share of a chunk's k neighbours (as chunk ids) that both versions agree on."""
    if not new_neighbours:
        return 1.0
    shares = [len(a & b) / max(len(b), 1) for a, b in zip(new_neighbours, old_neighbours,
                                                          strict=True)]
    return float(np.mean(shares))
