"""Queries to tune and check an index on: what users ask, or the closest thing to it.

A chunk's own vector is the easiest query an HNSW graph can get (its nearest neighbour is itself,
on the manifold the graph was built from). Tuned on chunk vectors, full SciFact reached recall@10
0.996 at ef 24 while SciFact's 300 real test queries got 0.963 at that ef. So `ef` is tuned on,
in this order:

  configured  the labelled queries of `evaluate.beir`, when configured;
  log         the query log (`warehouse/query_log.py`), when it holds at least
              `index.log_min_queries` distinct queries;
  probes      query-like texts made from the version's chunks: one sentence (or a short span of
              words) of each sampled chunk, so that a probe, like a user's query, is short and
              does not sit on a chunk's own vector;
  chunks      the indexed vectors themselves (only where no model is at hand to embed probes).

Every kind is embedded as a query is: alone (batch 1). Whatever tuned the index, recall is also
measured on the logged queries when there are any (`IndexReport.log_recall`).

Measured on full SciFact (`bench/index_recall.py`): recall@10 on 400 such probes tracks the 300
real test queries within 0.01 at every ef from 32 up, a little below them (0.991 vs 0.993 at
ef 64); chunk vectors read 0.9995 where real queries got 0.977 (ef 32). Dropping a quarter of a
probe's words made probes harder than real queries by a whole ladder step, so none are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tasks.embed.base import Embedder
from tasks.embed.embedding import embed_texts

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MIN_WORDS, MAX_WORDS = 5, 30  # a probe's length in words, like a typed question or claim


@dataclass(frozen=True)
class TuningQueries:
    """The queries `ef` is tuned on (None: the index samples its own vectors) and the logged
    queries recall is also reported on (None: the log is empty)."""

    kind: str
    vectors: np.ndarray | None
    log_vectors: np.ndarray | None = None


def probe_texts(texts: Sequence[str], n: int, seed: int) -> list[str]:
    """Up to `n` query-like texts from `n` sampled `texts` (deterministic for a seed).

    >>> probe_texts(["Tea is a drink. It is brewed from leaves of the tea plant in hot water."],
    ...             1, 0)[0].split()[0] in ("It", "is", "brewed", "Tea")
    True
    """
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(texts), size=min(n, len(texts)), replace=False).tolist())
    probes = []
    for i in chosen:
        words = _span(texts[i], rng)
        if words:
            probes.append(" ".join(words))
    return probes


def _span(text: str, rng: np.random.Generator) -> list[str]:
    """One sentence of `text` of a query's length, else a window of 8-16 of its words."""
    sentences = [s.split() for s in _SENTENCE_END.split(text)]
    fitting = [s for s in sentences if MIN_WORDS <= len(s) <= MAX_WORDS] \
        if len(sentences) > 1 else []  # a one-sentence chunk would be its own probe
    if fitting:
        return fitting[int(rng.integers(len(fitting)))]
    words = text.split()
    size = int(rng.integers(8, 17))
    start = int(rng.integers(max(len(words) - size, 0) + 1))
    return words[start:start + size]


def embed_alone(texts: Sequence[str], embedder: Embedder) -> np.ndarray:
    """Vectors of `texts` each embedded alone, as a search embeds its query."""
    return embed_texts(list(texts), embedder, 1)


def tuning_queries(configured: np.ndarray | None, logged: Sequence[str],
                   chunk_texts: Sequence[str], embedder: Embedder | None, sample: int,
                   log_min: int, seed: int) -> TuningQueries:
    """Which queries tune the index (see the module doc for the order)."""
    log_vectors = embed_alone(logged, embedder) if logged and embedder is not None else None
    if configured is not None and len(configured):
        return TuningQueries("configured", configured, log_vectors)
    if log_vectors is not None and len(logged) >= log_min:
        return TuningQueries("log", log_vectors, log_vectors)
    if embedder is not None and len(chunk_texts):
        probes = probe_texts(chunk_texts, sample, seed)
        if probes:
            return TuningQueries("probes", embed_alone(probes, embedder), log_vectors)
    return TuningQueries("chunks", None, log_vectors)
