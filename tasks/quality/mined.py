"""An evaluation set mined from the corpus itself, for warehouses without labelled queries.

Input: cleaned documents. Output: a `MinedSet` in BEIR shape — queries, a corpus and qrels —
built the inverse-cloze way (Lee et al., 2019): from each of a few hundred held-out documents one
sentence is taken out and becomes the query; the document without that sentence is the one
relevant answer, among the other held-out documents and a sample of distractors. Because the
sentence is removed, a model cannot find its document by matching the sentence itself: it has to
know what the rest of the document is about, which is what retrieval needs.

The held-out documents are kept out of fine-tuning (`finetune.mine_pairs(exclude=…)`), the set is
stored in the warehouse, and every model is scored on the same set: the active model's per-query
scores are stored with the set (`reference`), and a candidate's evaluation adds the paired
bootstrap interval of its gain over them (`ndcg@10_gain`, `_gain_low`, `_gain_high`), which the
retrain gate reads (`tasks/quality/paired.py`). `bench/retrain.py` measures how its verdicts
agree with SciFact's real relevance judgements.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from tasks.embed.base import Embedder
from tasks.embed.embedding import embed_texts
from tasks.index.ann import ExactIndex
from tasks.quality.base import Evaluation
from tasks.quality.evaluate import retrieval_metrics
from tasks.quality.paired import paired_bootstrap, per_query_ndcg

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
PRIMARY = "ndcg@10"


@dataclass(frozen=True)
class MinedSet:
    name: str  # content hash: the same set has the same name everywhere
    queries: dict[str, str]  # query id -> the sentence taken out
    corpus: dict[str, str]  # doc id -> text (held-out documents without their sentence)
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: 1}
    # The second view, title -> body: a held-out document's title (taken out of its text) finds
    # it. Query ids `t…`, judged in `qrels` like the sentence queries.
    titles: dict[str, str] = field(default_factory=dict)
    # The active model's nDCG@10 per query, once scored (what a candidate is paired against).
    reference: dict[str, float] = field(default_factory=dict)
    reference_version: int | None = None

    def with_reference(self, version_id: int, per_query: dict[str, float]) -> MinedSet:
        return replace(self, reference=dict(per_query), reference_version=version_id)

    @property
    def held_out(self) -> list[str]:
        """The documents whose sentences are queries (keep them out of training)."""
        return sorted({doc for docs in self.qrels.values() for doc in docs})

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), sort_keys=True))
        return path

    @classmethod
    def load(cls, path: Path) -> MinedSet:
        return cls(**json.loads(path.read_text()))


def sentences(text: str) -> list[str]:
    """Sentences of a text (a plain rule: end punctuation followed by a capital or digit).

    >>> sentences("First one. Second one! Third? no split here")
    ['First one.', 'Second one!', 'Third? no split here']
    """
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def mine(documents: pa.Table, n_queries: int = 200, n_distractors: int = 1000, seed: int = 0,
         min_words: int = 6, per_document: int = 1) -> MinedSet:
    """The inverse-cloze set of `documents` (doc_id, text), seeded and deterministic.

    Args:
        n_queries: queries (sentences taken out of held-out documents).
        n_distractors: other documents in the mined corpus.
        min_words: a sentence shorter than this makes no query.
        per_document: sentences taken out of each held-out document (each its own query; the
            document loses them all): more queries for the same documents held out.
    """
    rng = np.random.default_rng(seed)
    ids = documents["doc_id"].to_pylist()
    texts = documents["text"].to_pylist()
    doc_titles = documents["title"].to_pylist() if "title" in documents.column_names \
        else [None] * len(ids)
    order = rng.permutation(len(ids))
    titles: dict[str, str] = {}
    queries: dict[str, str] = {}
    corpus: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    used: set[int] = set()
    for i in order:
        if len(queries) == n_queries:
            break
        parts = sentences(texts[i])
        candidates = [j for j in range(1, len(parts) - 1)
                      if len(parts[j].split()) >= min_words]  # not the first (the title)
        if len(parts) < 3 or not candidates:
            continue
        take = min(per_document, len(candidates), len(parts) - 2, n_queries - len(queries))
        picked = sorted(rng.choice(candidates, size=take, replace=False).tolist())
        for j in picked:
            qid = f"q{len(queries)}"
            queries[qid] = parts[j]
            qrels[qid] = {ids[i]: 1}
        text = " ".join(p for k, p in enumerate(parts) if k not in picked)
        title = (doc_titles[i] or "").strip()
        if title and text.startswith(title) and len(title.split()) >= 3:  # the title view
            text = text[len(title):].strip()
            tid = f"t{len(titles)}"
            titles[tid], qrels[tid] = title, {ids[i]: 1}
        corpus[ids[i]] = text
        used.add(int(i))
    rest = [int(i) for i in order if int(i) not in used][:n_distractors]
    for i in rest:
        corpus[ids[i]] = texts[i]
    digest = hashlib.sha256(json.dumps([queries, sorted(corpus), titles], sort_keys=True
                                       ).encode())
    return MinedSet(f"ict-{digest.hexdigest()[:10]}", queries, corpus, qrels, titles)


def evaluate_mined(mined: MinedSet, embedder: Embedder, batch_size: int, level: float = 0.95
                   ) -> list[Evaluation]:
    """Each view of the mined set scored with `embedder` (exact search over its corpus):
    sentence -> document (`mined:<name>`) and, where documents have titles, title -> body
    (`mined-title:<name>`). Per view: nDCG@10, MRR@10, recall@100, nDCG@10 per query, and, when
    the set holds the active model's scores, the gain over them with its paired bootstrap
    interval at `level` (informational rows: no direction; the retrain gate reads them)."""
    doc_ids = sorted(mined.corpus)
    doc_vectors = embed_texts([mined.corpus[d] for d in doc_ids], embedder, batch_size)
    index = ExactIndex(doc_vectors, np.arange(len(doc_ids)))
    views = [(f"mined:{mined.name}", mined.queries)]
    if mined.titles:
        views.append((f"mined-title:{mined.name}", mined.titles))
    evaluations = []
    for evaluator, asked in views:
        qids = sorted(asked)
        labels, scores = index.query(embed_texts([asked[q] for q in qids], embedder, batch_size),
                                     min(100, len(doc_ids)))
        run = {q: {doc_ids[int(label)]: float(score)
                   for label, score in zip(row_l, row_s, strict=True)}
               for q, row_l, row_s in zip(qids, labels, scores, strict=True)}
        qrels = {q: mined.qrels[q] for q in qids}
        metrics = retrieval_metrics(qrels, run)
        directions = {m: True for m in metrics}
        per_query = per_query_ndcg(qrels, run)
        reference = {q: v for q, v in mined.reference.items() if q in asked}
        if reference:
            gain = paired_bootstrap(per_query, reference, level)
            metrics |= {f"{PRIMARY}_gain": gain.mean, f"{PRIMARY}_gain_low": gain.low,
                        f"{PRIMARY}_gain_high": gain.high}
        evaluations.append(Evaluation(evaluator, metrics, PRIMARY, True, directions, per_query))
    return evaluations
