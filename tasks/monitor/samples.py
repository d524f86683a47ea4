"""Samples for drift checks, and the statistics between two of them.

Input: texts (chunks of a new corpus batch, or queries of a log), token counts and vectors.
Output: `Sample`s and `drift_statistics(reference, current)` as one `Evaluation` (the same
contract as every quality check: primary metric `mmd_p_value`, greater is better — a high
p-value is no evidence of drift). Pure: the reference sample is read by the storage layer, the
batch by the prep chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from tasks.embed.base import Embedder
from tasks.embed.embedding import embed_texts
from tasks.monitor.drift import PRIMARY_METRIC, DriftConfig, embedding_drift, input_drift
from tasks.prep import tokenize
from tasks.quality.base import Evaluation

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Sample:
    texts: list[str]
    n_tokens: np.ndarray
    n_unknown: np.ndarray
    vectors: np.ndarray
    ids: list[str] | None = None  # where each text came from (a document id), when known
    titles: list[str | None] | None = None


def pick(n_total: int, size: int, seed: int) -> np.ndarray:
    """`size` seeded positions out of `n_total`, sorted."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=min(size, n_total), replace=False))


def one_chunk_per_document(doc_ids: list[str], size: int, seed: int) -> np.ndarray:
    """Row positions of at most `size` chunks, one chunk of each of as many documents.

    Chunks of one document are alike (and overlap), so a sample holding several of them is not
    independent: two-sample tests would see "drift" between two halves of the same corpus.

    >>> one_chunk_per_document(["a", "a", "b", "c", "c"], 2, 0).size
    2
    """
    rng = np.random.default_rng(seed)
    rows_of: dict[str, list[int]] = {}
    for row, doc in enumerate(doc_ids):
        rows_of.setdefault(doc, []).append(row)
    docs = sorted(rows_of)
    chosen = rng.choice(len(docs), size=min(size, len(docs)), replace=False)
    return np.sort([rng.choice(rows_of[docs[i]]) for i in chosen]).astype(np.int64)


def stored_sample(texts: list[str], vectors: np.ndarray, tokenizer) -> Sample:
    """A sample whose vectors are already known (the reference, read from the lake)."""
    n_tokens, n_unknown = tokenize.count_tokens(texts, tokenizer)
    return Sample(texts, n_tokens, n_unknown, vectors)


def embedded_sample(texts: list[str], embedder: Embedder, batch_size: int,
                    ids: list[str] | None = None, titles: list[str | None] | None = None
                    ) -> Sample:
    """A sample of new texts, embedded with the version's own model."""
    n_tokens, n_unknown = tokenize.count_tokens(texts, embedder.tokenizer)
    return Sample(texts, n_tokens, n_unknown, embed_texts(texts, embedder, batch_size), ids,
                  titles)


def drift_statistics(reference: Sample, current: Sample, config: DriftConfig) -> Evaluation:
    """Every embedding and input drift statistic between the two samples."""
    vocabulary = {w for t in reference.texts for w in _WORD.findall(t.lower())}
    words = [w for t in current.texts for w in _WORD.findall(t.lower())]
    stats = {**embedding_drift(reference.vectors, current.vectors, config),
             **input_drift(reference.n_tokens.tolist(), current.n_tokens.tolist(),
                           reference.n_unknown.tolist(), current.n_unknown.tolist(),
                           vocabulary, words)}
    return Evaluation("drift", stats, PRIMARY_METRIC, True, {PRIMARY_METRIC: True})
