"""Samples for drift checks: a reference from the active version, a current one from new data.

Input: the warehouse and its active version, a corpus batch or a query log, the version's own
embedder. Output: `Sample`s (texts, token counts, unknown-token counts, vectors) and the
statistics of `tasks.drift` between two of them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks import chunk, clean, load, tokenize
from tasks.drift import DriftConfig, embedding_drift, input_drift
from tasks.embed import Embedder, embed_texts
from tasks.errors import SourceError
from warehouse.store import Version, Warehouse

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Sample:
    texts: list[str]
    n_tokens: np.ndarray
    n_unknown: np.ndarray
    vectors: np.ndarray


def _pick(n_total: int, size: int, seed: int) -> np.ndarray:
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


def reference_sample(warehouse: Warehouse, version: Version, embedder: Embedder, size: int,
                     seed: int) -> Sample:
    """A seeded sample of the version's chunks (one per document) with their stored vectors."""
    keys, vectors = warehouse.vectors(version)
    chunk_map = warehouse.chunk_map(version)  # ordered by chunk_key, like `keys`
    take = one_chunk_per_document(chunk_map["doc_id"].to_pylist(), size, seed)
    rows = warehouse.chunk_rows(version, [int(k) for k in keys[take]])
    texts = [rows[int(k)]["text"] for k in keys[take]]
    n_tokens, n_unknown = tokenize.count_tokens(texts, embedder.tokenizer)
    return Sample(texts, n_tokens, n_unknown, vectors[take])


def corpus_sample(source: Path, version: Version, embedder: Embedder, size: int, seed: int,
                  source_config: load.SourceConfig, clean_config: clean.CleanConfig) -> Sample:
    """Chunks of a new corpus batch, cleaned and chunked the way `version` was built."""
    loaded = load.load_source(source, source_config)
    docs = clean.clean_documents(loaded.documents, clean_config).documents
    if docs.num_rows == 0:
        raise SourceError(f"{source}: no usable document to check for drift")
    chunker = chunk.ChunkConfig(**{k: v for k, v in version.chunker_config.items()
                                   if k in chunk.ChunkConfig.model_fields})
    chunks = chunk.chunk_documents(tokenize.tokenize_documents(docs, embedder.tokenizer),
                                   embedder.tokenizer, embedder.max_seq_length, chunker)
    texts = chunks["text"].to_pylist()
    picked = one_chunk_per_document(chunks["doc_id"].to_pylist(), size, seed)
    return _embedded([texts[i] for i in picked], embedder)


def read_queries(path: Path) -> list[str]:
    """A query log: one query per line, or JSONL with a `query` or `text` field."""
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    queries = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SourceError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc
            text = record.get("query") or record.get("text")
            if not isinstance(text, str):
                raise SourceError(f"{path}:{line_no}: no 'query' or 'text' string field")
            queries.append(text)
        else:
            queries.append(line)
    if not queries:
        raise SourceError(f"{path}: no queries")
    return queries


def queries_sample(path: Path, embedder: Embedder, size: int, seed: int) -> Sample:
    queries = read_queries(path)
    return _embedded([queries[i] for i in _pick(len(queries), size, seed)], embedder)


def _embedded(texts: list[str], embedder: Embedder) -> Sample:
    n_tokens, n_unknown = tokenize.count_tokens(texts, embedder.tokenizer)
    return Sample(texts, n_tokens, n_unknown, embed_texts(texts, embedder, 64))


def drift_statistics(reference: Sample, current: Sample, config: DriftConfig
                     ) -> dict[str, float]:
    """Every embedding and input drift statistic between the two samples."""
    vocabulary = {w for t in reference.texts for w in _WORD.findall(t.lower())}
    words = [w for t in current.texts for w in _WORD.findall(t.lower())]
    return {**embedding_drift(reference.vectors, current.vectors, config),
            **input_drift(reference.n_tokens.tolist(), current.n_tokens.tolist(),
                          reference.n_unknown.tolist(), current.n_unknown.tolist(),
                          vocabulary, words)}
