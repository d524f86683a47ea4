"""Which queries tune the index: configured, then logged, then probes, never chunks when a model
is at hand; probes look like queries (short, not a chunk's own text)."""

from __future__ import annotations

import numpy as np

from tasks.embed.hashing import HashEmbedder
from tasks.index.probes import MAX_WORDS, probe_texts, tuning_queries

CHUNKS = [
    "Glaciers carve valleys over thousands of years. The ice moves slowly downhill under its "
    "own weight, scraping the rock beneath it. Moraines mark where a glacier once ended.",
    "A sourdough starter is flour and water fermented by wild yeast and lactic acid bacteria. "
    "It is fed daily.",
    "tokens without any sentence end at all just a long run of words that goes on and on and on "
    "for a while longer than a query would",
]


def test_probes_are_short_deterministic_and_not_the_chunk_itself():
    probes = probe_texts(CHUNKS, 3, seed=1)
    assert probes == probe_texts(CHUNKS, 3, seed=1)
    assert len(probes) == 3
    for probe in probes:
        words = probe.split()
        assert 3 <= len(words) <= MAX_WORDS
        assert probe not in CHUNKS
        assert any(set(words) <= set(chunk.split()) for chunk in CHUNKS)  # words of one chunk


def test_tuning_queries_prefer_configured_then_log_then_probes():
    embedder = HashEmbedder(dimension=16)
    configured = np.eye(16, dtype=np.float32)[:4]
    logged = [f"query {i}" for i in range(5)]
    picked = tuning_queries(configured, logged, CHUNKS, embedder, 10, log_min=3, seed=0)
    assert picked.kind == "configured" and picked.log_vectors.shape == (5, 16)
    picked = tuning_queries(None, logged, CHUNKS, embedder, 10, log_min=3, seed=0)
    assert picked.kind == "log" and picked.vectors.shape == (5, 16)
    picked = tuning_queries(None, logged, CHUNKS, embedder, 10, log_min=50, seed=0)
    assert picked.kind == "probes" and picked.vectors.shape == (3, 16)
    assert picked.log_vectors.shape == (5, 16)  # recall is still reported on the log
    picked = tuning_queries(None, [], CHUNKS, None, 10, log_min=3, seed=0)
    assert (picked.kind, picked.vectors, picked.log_vectors) == ("chunks", None, None)
