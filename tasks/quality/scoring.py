"""Score a version: health always, retrieval and STS where labelled sets are given.

Input: an `IndexedVersion` (its index, the rows search shows, its distinct vectors), the
version's embedder and an `EvaluateConfig`; optionally the active version, for neighbour
stability. Output: `Evaluation`s (one contract, see `tasks/evaluate.py`) and their
`quality_metrics` rows. Pure: the storage-facing step reads the inputs and records the output;
the gate receives the evaluations in memory.

Retrieval is scored through the search path itself (`tasks.hits.search_vectors`: same ef, same
fetch depth as `embedpipe search`), with exhaustive exact search beside it as the ceiling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tasks.embed.base import Embedder
from tasks.embed.embedding import embed_texts
from tasks.index.ann import ExactIndex
from tasks.index.hits import IndexedVersion, Mode, search
from tasks.quality.base import Evaluation
from tasks.quality.bias import evaluate_bias
from tasks.quality.evalsets import BeirSet, load_beir, load_labelled, load_sts
from tasks.quality.evaluate import (
    evaluate_health,
    evaluate_rankings,
    evaluate_retrieval,
    evaluate_sts,
    neighbour_overlap,
)
from tasks.quality.extrinsic import clustering, linear_probe, structure
from tasks.quality.logged import LoggedSet, evaluate_logged, pooled, version_rankings, views_of
from tasks.quality.mined import MinedSet, evaluate_mined


class EvaluateConfig(BaseModel):
    """Labelled sets every version is scored on (None: health checks only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    beir: Path | None = None  # a BEIR directory: queries.jsonl + qrels/<split>.tsv
    beir_split: str = "test"
    sts: Path | None = None  # an STS-format file
    # A set mined from the corpus (see tasks/mined.py); retrains without a labelled set make
    # one and score the active and the candidate model on it.
    mined: Path | None = None
    # Held-out logged searches with pseudo-labels (see tasks/quality/logged.py): a retrain with
    # a query log makes one, scores both models on it and pools every label-free view.
    logged: Path | None = None
    # A `(text, label)` file: a linear probe and a clustering of its texts (tasks/extrinsic.py).
    labels: Path | None = None
    # The WEAT association tests (tasks/bias.py): reported with every evaluation.
    bias: bool = True
    # A general-domain STS file a retrained model is checked on as a guard (it must not regress
    # beyond the gate's tolerance; it need not improve): a fine-tune that forgets general
    # meaning is refused whatever the in-domain sets say. Retrain sets it from
    # `retrain.general_sts`.
    general: Path | None = None
    mined_queries: int = Field(400, ge=10)
    mined_per_document: int = Field(2, ge=1)  # sentences (queries) per held-out document
    mined_distractors: int = Field(1000, ge=0)
    # Search modes scored on the BEIR set: `retrieval:` is vector search, `bm25:` and `hybrid:`
    # the lexical and fused rankings of the same search path.
    modes: list[Mode] = Field(default_factory=lambda: [cast(Mode, "vector")])
    rrf_k: int = Field(60, ge=1)  # reciprocal rank fusion constant of hybrid search
    search_mode: Mode = "vector"  # what `embedpipe search` uses unless --mode says otherwise
    health_sample: int = Field(1000, ge=10)
    overlap_sample: int = Field(200, ge=1)
    seed: int = 0


@dataclass(frozen=True)
class EmbeddedQueries:
    """A BEIR set with its queries embedded once (for index tuning and for evaluation)."""

    beir: BeirSet
    ids: list[str]
    vectors: np.ndarray


def embed_queries(config: EvaluateConfig, embedder: Embedder, batch_size: int
                  ) -> EmbeddedQueries | None:
    """The configured BEIR set's judged queries, embedded; None when no set is configured."""
    if config.beir is None:
        return None
    beir = load_beir(config.beir, config.beir_split)
    ids = sorted(beir.queries)
    return EmbeddedQueries(beir, ids, embed_texts([beir.queries[i] for i in ids], embedder,
                                                  batch_size))


def score_version(candidate: IndexedVersion, config: EvaluateConfig, embedder: Embedder,
                  batch_size: int, queries: EmbeddedQueries | None = None,
                  previous: IndexedVersion | None = None) -> list[Evaluation]:
    """Every evaluation of `candidate` that the config asks for, health first.

    Args:
        queries: the BEIR queries already embedded by the caller (else embedded here).
        previous: the active version, when it is another one: adds neighbour overlap.
    """
    overlap = None
    if previous is not None and previous.version_id != candidate.version_id:
        overlap = neighbour_stability(candidate, previous, config.overlap_sample, config.seed)
    labels = np.arange(len(candidate.vectors), dtype=np.int64)
    results = [evaluate_health(candidate.vectors, candidate.index.ann, labels,
                               config.health_sample, config.seed, overlap=overlap)]
    queries = queries or embed_queries(config, embedder, batch_size)
    if queries is not None:
        results.extend(retrieval(candidate, queries, config.modes, config.rrf_k))
    if config.sts is not None:
        sts = load_sts(config.sts)
        v1 = embed_texts(sts.sentences1, embedder, batch_size)
        v2 = embed_texts(sts.sentences2, embedder, batch_size)
        results.append(evaluate_sts(sts.name, v1, v2, sts.scores))
    mined = MinedSet.load(config.mined) if config.mined is not None else None
    if mined is not None:
        results.extend(evaluate_mined(mined, embedder, batch_size))
    if config.logged is not None:
        results.extend(label_free(candidate, mined, LoggedSet.load(config.logged),
                                  [e for e in results if e.evaluator.startswith("mined")],
                                  embedder, batch_size))
    if config.general is not None:
        results.append(evaluate_general(config.general, embedder, batch_size))
    if config.labels is not None:
        labelled = load_labelled(config.labels)
        vectors = embed_texts(labelled.texts, embedder, batch_size)
        results.append(linear_probe(labelled.name, vectors, labelled.labels, seed=config.seed))
        results.append(clustering(labelled.name, vectors, labelled.labels, seed=config.seed))
    if len(candidate.vectors) >= 3:
        results.append(structure(candidate.vectors, config.health_sample, seed=config.seed))
    if config.bias:
        results.append(evaluate_bias(embedder, batch_size, permutations=2000))
    return results


def evaluate_general(path: Path, embedder: Embedder, batch_size: int) -> Evaluation:
    """STS Spearman on a general-domain file, as a guard (evaluator `general:<name>`)."""
    sts = load_sts(path)
    result = evaluate_sts(sts.name, embed_texts(sts.sentences1, embedder, batch_size),
                          embed_texts(sts.sentences2, embedder, batch_size), sts.scores)
    return replace(result, evaluator=f"general:{sts.name}")


def label_free(version: IndexedVersion, mined: MinedSet | None, logged: LoggedSet,
               mined_views: list[Evaluation], embedder: Embedder, batch_size: int
               ) -> list[Evaluation]:
    """The logged set's views of `version` (its held-out searches ranked over the version's
    chunks), and the gain pooled over them and the mined views (when scored against the
    active model)."""
    qids = sorted(logged.queries)
    run = version_rankings(version, embed_texts([logged.queries[q] for q in qids], embedder,
                                                batch_size), qids, logged.documents)
    views = evaluate_logged(logged, run)
    units, references = views_of(mined, logged)
    gain = pooled([*mined_views, *views], units, references)
    return [*views, *([gain] if gain is not None else [])]


def labelled(config: EvaluateConfig) -> bool:
    """Does the config name a set with relevance judgements (BEIR, STS, or a mined set)?"""
    return any(x is not None for x in (config.beir, config.sts, config.mined))


PREFIX = {"vector": "retrieval", "bm25": "bm25", "hybrid": "hybrid"}


def retrieval(version: IndexedVersion, queries: EmbeddedQueries,
              modes: Sequence[str] | None = None, rrf_k: int = 60) -> list[Evaluation]:
    """The search path's nDCG@10/MRR@10 (k=10) and recall@100 (k=100) per search mode, and
    the exact ceiling of vector search."""
    name, qrels = queries.beir.name, queries.beir.qrels
    texts = [queries.beir.queries[q] for q in queries.ids]
    results = []
    for mode in modes or ["vector"]:
        runs = {k: {qid: {h.doc_id: h.score for h in hits} for qid, hits in zip(
            queries.ids, search(version, texts, queries.vectors, k, mode, rrf_k), strict=True)}
            for k in (10, 100)}
        evaluation = evaluate_rankings(name, qrels, runs[10], runs[100])
        results.append(Evaluation(f"{PREFIX[mode]}:{name}", evaluation.metrics,
                                  evaluation.primary_metric, True, evaluation.directions))
    chunk_vectors = version.vectors[version.labels]
    chunk_doc = dict(enumerate(version.rows.doc_id))
    exact = evaluate_retrieval(name, qrels, queries.ids, queries.vectors,
                               ExactIndex(chunk_vectors, np.arange(len(chunk_vectors))),
                               chunk_doc, evaluator="exact-search")
    # The ceiling is informational: the gate compares what users get, not what exact could.
    return [*results, Evaluation(exact.evaluator, exact.metrics, exact.primary_metric, True)]


def neighbour_stability(candidate: IndexedVersion, previous: IndexedVersion, sample: int,
                        seed: int, k: int = 10) -> float | None:
    """Neighbour agreement (k=10, by chunk id) on a sample of chunks both versions hold."""
    old_row = {cid: row for row, cid in enumerate(previous.rows.chunk_id)}
    shared = [(row, old_row[cid]) for row, cid in enumerate(candidate.rows.chunk_id)
              if cid in old_row]
    if not shared:
        return None
    rng = np.random.default_rng(seed)
    picked = [shared[i] for i in sorted(rng.choice(len(shared), size=min(sample, len(shared)),
                                                   replace=False))]
    new_rows = np.array([a for a, _ in picked])
    old_rows = np.array([b for _, b in picked])
    k = min(k, len(candidate.index), len(previous.index))
    new_nn = candidate.index.query_rows(candidate.vectors[candidate.labels[new_rows]], k)[0]
    old_nn = previous.index.query_rows(previous.vectors[previous.labels[old_rows]], k)[0]
    return neighbour_overlap(
        [{candidate.rows.chunk_id[x] for x in row if x >= 0} for row in new_nn.tolist()],
        [{previous.rows.chunk_id[x] for x in row if x >= 0} for row in old_nn.tolist()])


def metric_rows(evaluations: list[Evaluation]) -> list[dict[str, Any]]:
    """`quality_metrics` rows: one per metric, with its direction and primary flag."""
    return [{"evaluator": e.evaluator, "metric": name, "value": float(value),
             "greater_is_better": e.directions.get(name), "is_primary": name == e.primary_metric}
            for e in evaluations for name, value in e.metrics.items()]
