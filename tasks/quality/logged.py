"""Logged searches as an evaluation set without human labels, and the pooled label-free gain.

Why: `bench/retrain.py` scored 19 retrain candidates on SciFact. The set mined from the corpus
(`tasks/quality/mined.py`: a sentence or a title finds its document) ranked them no better than
chance against the real judgements (rank correlation -0.02 and 0.10): a fine-tune trained on
inverse-cloze pairs gains on it and loses on real queries. What users actually search for ranks
them (0.85 and 0.87): held-out logged searches, each judged by a pseudo-label.

Input: the texts of logged searches (`warehouse/query_log.py`), their document rankings by BM25
and by the active model. Output: a `LoggedSet` (held-out searches and their pseudo-relevant
documents, never trained on; the rest are training queries, `tasks/train/pairs.py`), its two
views scored like the mined set (nDCG@10 per query and, against the active model's scores, the
paired bootstrap interval of the gain), and the pooled gain over every label-free view
(`pooled`), which the gate promotes a fine-tune on (`tasks/quality/gate.POOLED`):
  log-lexical  the search's pseudo-relevant document is BM25's first (independent of any model)
  log-fused    it is the first of BM25 fused with the active model (what hybrid search returns
               first: the better pseudo-label, biased towards the active model, so conservative)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from tasks.index.hits import IndexedVersion
from tasks.quality.base import Evaluation
from tasks.quality.evaluate import retrieval_metrics
from tasks.quality.gate import POOLED
from tasks.quality.mined import MinedSet
from tasks.quality.paired import paired_bootstrap, per_query_ndcg, pooled_bootstrap

RULES = ("lexical", "fused")  # the held-out searches' pseudo-labels (tasks/train/pairs.py)
PRIMARY = "ndcg@10"
DEPTH = 100  # documents ranked per search


@dataclass(frozen=True)
class LoggedSet:
    name: str  # content hash
    queries: dict[str, str]  # held-out search id -> text (never trained on)
    labels: dict[str, dict[str, str]]  # rule -> {search id: pseudo-relevant doc id}
    training: int = 0  # searches left for training pairs
    # The documents the searches were ranked over (the active version's): a candidate is
    # ranked over the same ones, so documents only it holds (a retrain's new batch) neither
    # help nor hurt it. Empty: all of them.
    documents: list[str] = field(default_factory=list)
    # The active model's nDCG@10 per search and view (what a candidate is paired against).
    reference: dict[str, dict[str, float]] = field(default_factory=dict)
    reference_version: int | None = None

    def with_reference(self, version_id: int, evaluations: list[Evaluation]) -> LoggedSet:
        return replace(self, reference={e.evaluator.split(":")[0]: dict(e.per_query)
                                        for e in evaluations}, reference_version=version_id)

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), sort_keys=True))
        return path

    @classmethod
    def load(cls, path: Path) -> LoggedSet:
        return cls(**json.loads(path.read_text()))


def split_log(texts: list[str], held_out_share: float) -> tuple[dict[str, str], dict[str, str]]:
    """(held-out searches, training searches) of distinct logged texts, ids `l<hash>`. A text's
    side is decided by the hash of its case-folded words alone, so a search never moves from
    training to held out as the log grows, nor has a variant (case, spacing) on the other side:
    a model is never judged on what it trained on.

    >>> held, train = split_log([f"query {i}" for i in range(1000)], 0.4)
    >>> 350 < len(held) < 450, len(held) + len(train), not set(held) & set(train)
    (True, 1000, True)
    """
    held: dict[str, str] = {}
    training: dict[str, str] = {}
    for text in sorted(dict.fromkeys(texts)):
        digest = hashlib.sha256(" ".join(text.casefold().split()).encode()).hexdigest()
        side = held if int(digest[:8], 16) < held_out_share * 16**8 else training
        side.setdefault(f"l{digest[:12]}", text)  # variants of one search: the first kept
    return held, training


def make_logged_set(queries: dict[str, str], labels: dict[str, dict[str, str]], training: int,
                    documents: list[str] | None = None) -> LoggedSet:
    digest = hashlib.sha256(json.dumps([queries, labels, documents or []], sort_keys=True
                                       ).encode())
    return LoggedSet(f"log-{digest.hexdigest()[:10]}", queries, labels, training,
                     sorted(documents or []))


def document_rankings(query_vectors: np.ndarray, chunk_vectors: np.ndarray,
                      chunk_doc: Mapping[int, str], qids: list[str], depth: int = DEPTH
                      ) -> dict[str, dict[str, float]]:
    """Exact search over chunks; per query, its `depth` best documents (a document scores its
    best chunk, as search ranks documents), with scores."""
    run: dict[str, dict[str, float]] = {}
    fetch = min(len(chunk_vectors), depth * 8)
    for start in range(0, len(qids), 256):
        scores = query_vectors[start:start + 256] @ chunk_vectors.T
        top = np.argpartition(-scores, fetch - 1, axis=1)[:, :fetch]
        for row, qid in enumerate(qids[start:start + 256]):
            docs: dict[str, float] = {}
            for j in top[row][np.argsort(-scores[row, top[row]])]:
                doc = chunk_doc[int(j)]
                if doc not in docs:
                    docs[doc] = float(scores[row, j])
                    if len(docs) == depth:
                        break
            run[qid] = docs
    return run


def ranked(run: Mapping[str, Mapping[str, float]]) -> dict[str, list[str]]:
    """Each query's documents, best first."""
    return {q: sorted(docs, key=lambda d: (-docs[d], d)) for q, docs in run.items()}


def evaluate_logged(logged: LoggedSet, run: dict[str, dict[str, float]], level: float = 0.95
                    ) -> list[Evaluation]:
    """Both views of the held-out searches for one model's document ranking of them (`run`):
    nDCG@10, MRR@10, recall@100 and nDCG@10 per search against each pseudo-label, and the gain
    over the active model's with its paired bootstrap interval once the set holds those."""
    evaluations = []
    for rule in RULES:
        view = f"log-{rule}"
        qrels = {q: {d: 1} for q, d in logged.labels.get(rule, {}).items()}
        if not qrels:
            continue
        scored = {q: run.get(q, {}) for q in qrels}
        metrics = retrieval_metrics(qrels, scored)
        per_query = per_query_ndcg(qrels, scored)
        reference = logged.reference.get(view)
        if reference:
            gain = paired_bootstrap(per_query, reference, level)
            metrics |= {f"{PRIMARY}_gain": gain.mean, f"{PRIMARY}_gain_low": gain.low,
                        f"{PRIMARY}_gain_high": gain.high}
        evaluations.append(Evaluation(f"{view}:{logged.name}", metrics, PRIMARY, True,
                                      {m: True for m in metrics if not m.startswith(PRIMARY
                                                                                    + "_")},
                                      per_query))
    return evaluations


def pooled_name(sets: set[str]) -> str:
    """The pooled score's evaluator: `label-free:<mined set>+<logged set>`."""
    return f"{POOLED}:" + "+".join(sorted(sets))


def pooled(evaluations: list[Evaluation], units: Mapping[str, Mapping[str, str]],
           references: Mapping[str, Mapping[str, float]], level: float = 0.95
           ) -> Evaluation | None:
    """The gain pooled over every label-free view: the mean of the views' mean gains, with a
    bootstrap interval over units (`tasks/quality/paired.pooled_bootstrap`).

    Args:
        evaluations: the candidate's views (evaluator prefix -> its per-query nDCG@10).
        units: per view prefix, each query's unit (a mined query's held-out document, a logged
            search itself).
        references: per view prefix, the active model's per-query nDCG@10.
    Returns None unless a query-log view is among them (the mined views alone do not rank
    fine-tunes: see the module's docstring).
    """
    views = [(e, e.evaluator.split(":")[0]) for e in evaluations
             if e.evaluator.split(":")[0] in units and references.get(e.evaluator.split(":")[0])]
    if not any(prefix.startswith("log-") for _, prefix in views):
        return None
    gain = pooled_bootstrap([(e.per_query, references[p], units[p]) for e, p in views], level)
    value = round(float(np.mean([e.metrics[PRIMARY] for e, _ in views])), 6)
    return Evaluation(pooled_name({e.evaluator.split(":", 1)[1] for e, _ in views}),
                      {PRIMARY: value, f"{PRIMARY}_gain": gain.mean,
                       f"{PRIMARY}_gain_low": gain.low, f"{PRIMARY}_gain_high": gain.high},
                      PRIMARY, True, {PRIMARY: True})


def reference_pooled(references: Mapping[str, Mapping[str, float]], sets: set[str]
                     ) -> Evaluation:
    """The active model's row of the pooled score (the mean of its views' nDCG@10, no gain):
    what a candidate's pooled row is compared with."""
    value = round(float(np.mean([np.mean(list(v.values())) for v in references.values() if v])),
                  6)
    return Evaluation(pooled_name(sets), {PRIMARY: value}, PRIMARY, True, {PRIMARY: True})


def views_of(mined: MinedSet | None, logged: LoggedSet | None
             ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, float]]]:
    """(units, active per-query scores) of every label-free view, by evaluator prefix."""
    units: dict[str, dict[str, str]] = {}
    references: dict[str, dict[str, float]] = {}
    if mined is not None and mined.reference:
        for prefix, asked in (("mined", mined.queries), ("mined-title", mined.titles)):
            if asked:
                units[prefix] = {q: next(iter(mined.qrels[q])) for q in asked}
                references[prefix] = {q: v for q, v in mined.reference.items() if q in asked}
    if logged is not None:
        for view, per_query in logged.reference.items():
            units[view] = {q: q for q in per_query}
            references[view] = dict(per_query)
    return units, references


def version_rankings(version: IndexedVersion, query_vectors: np.ndarray, qids: list[str],
                     documents: list[str] | None = None) -> dict[str, dict[str, float]]:
    """`document_rankings` over a version's own chunk vectors (of `documents` only, if given)."""
    doc_of = list(version.rows.doc_id)
    rows = np.arange(len(doc_of))
    if documents:
        rows = rows[np.isin(np.array(doc_of, dtype=object), np.array(documents, dtype=object))]
    return document_rankings(query_vectors, version.vectors[version.labels[rows]],
                             {i: doc_of[r] for i, r in enumerate(rows.tolist())}, qids)
