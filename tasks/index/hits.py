"""Search results: the rows a version's index keeps per chunk, and chunk hits as document hits.

Input: a version's chunks (key, ids, text, title) and the distinct-text label of each; then the
rows and scores an index query returned. Output: the per-chunk rows table saved beside the index
(`index_rows`) and ranked `SearchHit`s, one per document (its best chunk). Pure: no storage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from tasks.errors import EmbedpipeError
from tasks.index.build import VersionIndex

SNIPPET_CHARS = 240
FETCH_FACTOR = 4  # chunks fetched per document asked for

ROWS_SCHEMA = pa.schema([
    ("label", pa.int64()),  # the distinct text's position in the ANN index
    ("chunk_key", pa.int64()), ("chunk_id", pa.string()), ("doc_id", pa.string()),
    ("title", pa.string()), ("snippet", pa.string()),
])


@dataclass(frozen=True)
class SearchHit:
    rank: int
    score: float
    doc_id: str
    title: str | None
    chunk_id: str
    snippet: str
    version_id: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def snippet(text: str, title: str | None) -> str:
    """The chunk's text on one line, without the title it repeats, cut to SNIPPET_CHARS.

    >>> snippet("Tides\\n\\nTides are   the rise of the sea.", "Tides")
    'Tides are the rise of the sea.'
    """
    flat = " ".join(text.split())
    if title and flat.startswith(title):  # the first chunk repeats the title
        flat = flat[len(title):].lstrip(" .:-—")
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"


def index_rows(chunks: pa.Table, labels: np.ndarray) -> pa.Table:
    """One row per chunk, sorted by (label, chunk_key): the table saved beside an index.

    Args:
        chunks: chunk_key, chunk_id, doc_id, text, title of every chunk of a version.
        labels: the distinct-text label of each chunk (as the index was built).
    """
    parts = []
    for start in range(0, max(chunks.num_rows, 1), _SLICE):  # one slice's strings at a time
        part = chunks.slice(start, _SLICE)
        titles = part["title"].to_pylist()
        snippets = [snippet(t, ti) for t, ti in zip(part["text"].to_pylist(), titles,
                                                    strict=True)]
        parts.append(pa.table({
            "label": pa.array(labels[start:start + _SLICE], pa.int64()),
            "chunk_key": part["chunk_key"].cast(pa.int64()), "chunk_id": part["chunk_id"],
            "doc_id": part["doc_id"], "title": part["title"].cast(pa.string()),
            "snippet": pa.array(snippets, pa.string())}, schema=ROWS_SCHEMA))
    return pa.concat_tables(parts).sort_by([("label", "ascending"), ("chunk_key", "ascending")])


_SLICE = 50_000


class HitRows:
    """The rows of one index, as Python lists once, for many searches."""

    def __init__(self, rows: pa.Table) -> None:
        self.chunk_id = rows["chunk_id"].to_pylist()
        self.doc_id = rows["doc_id"].to_pylist()
        self.title = rows["title"].to_pylist()
        self.snippet = rows["snippet"].to_pylist()

    def document_hits(self, positions: np.ndarray, scores: np.ndarray, k: int, version_id: int
                      ) -> list[SearchHit]:
        """The best `k` documents of one query's chunk hits (each document's best chunk)."""
        hits: list[SearchHit] = []
        seen: set[str] = set()
        for position, score in zip(positions.tolist(), scores.tolist(), strict=True):
            if position < 0 or self.doc_id[position] in seen:
                continue
            seen.add(self.doc_id[position])
            hits.append(SearchHit(len(hits) + 1, round(float(score), 4), self.doc_id[position],
                                  self.title[position], self.chunk_id[position],
                                  self.snippet[position], version_id))
            if len(hits) == k:
                break
        return hits


def search_vectors(index: Any, rows: HitRows, vectors: np.ndarray, k: int, version_id: int
                   ) -> list[list[SearchHit]]:
    """The search path: `k` documents per query vector, from `4 * k` chunks of `index`.

    Chunks are over-fetched so that k distinct documents come back when a document has several
    good chunks. Evaluation ranks through this same function, so its figures are what `search`
    gives users (same ef, same fetch depth).
    """
    positions, scores = index.query_rows(np.asarray(vectors, dtype=np.float32), k * FETCH_FACTOR)
    return [rows.document_hits(p, s, k, version_id) for p, s in zip(positions, scores,
                                                                      strict=True)]


@dataclass
class IndexedVersion:
    """A version as search and evaluation see it.

    `vectors[i]` is the vector of ANN label i (one per distinct chunk text); `labels[j]` is the
    ANN label of row j of `rows` (rows are the index's chunk table, grouped by label).
    `directory` holds its files (the BM25 index among them).
    """

    version_id: int
    index: VersionIndex
    rows: HitRows
    labels: np.ndarray
    vectors: np.ndarray
    directory: Path | None = None
    _bm25: Any = None
    _key_order: np.ndarray | None = None

    def bm25(self) -> Any:
        """The version's BM25 index (`tasks.lexical.Bm25`), opened on first use."""
        if self._bm25 is None:
            from tasks.index.lexical import FILE, Bm25

            if self.directory is None or not (self.directory / FILE).exists():
                raise MissingIndex(f"version {self.version_id} has no BM25 index; rebuild its "
                                   f"index with `embedpipe index --version {self.version_id}`")
            self._bm25 = Bm25(self.directory)
        return self._bm25

    def rows_of(self, keys: np.ndarray) -> np.ndarray:
        """Row positions of chunk keys (in `rows`)."""
        if self._key_order is None:
            self._key_order = np.argsort(self.index.keys, kind="stable")
        found = np.searchsorted(self.index.keys, keys, sorter=self._key_order)
        return self._key_order[np.minimum(found, len(self._key_order) - 1)]


Mode = Literal["vector", "bm25", "hybrid"]
MODES: tuple[str, ...] = ("vector", "bm25", "hybrid")


class MissingIndex(EmbedpipeError):
    """A search mode whose index the version does not have."""


def search(version: IndexedVersion, texts: list[str], vectors: np.ndarray | None, k: int,
           mode: str = "vector", rrf_k: int = 60, candidates: int = 100
           ) -> list[list[SearchHit]]:
    """The `k` best documents per query, by meaning (`vector`), by words (`bm25`), or both
    fused by reciprocal rank (`hybrid`: each side's best `candidates` documents).

    `vectors` are the queries embedded with the version's model (unused by `bm25`).
    """
    if mode == "vector":
        assert vectors is not None
        return search_vectors(version.index, version.rows, vectors, k, version.version_id)
    lexical = [_bm25_hits(version, text, candidates if mode == "hybrid" else k)
               for text in texts]
    if mode == "bm25":
        return lexical
    assert vectors is not None
    semantic = search_vectors(version.index, version.rows, vectors, candidates,
                              version.version_id)
    return [_fused(a, b, k, rrf_k) for a, b in zip(semantic, lexical, strict=True)]


def _bm25_hits(version: IndexedVersion, text: str, k: int) -> list[SearchHit]:
    keys, scores = version.bm25().search(text, k * FETCH_FACTOR)
    if not len(keys):
        return []
    return version.rows.document_hits(version.rows_of(keys), scores, k, version.version_id)


def _fused(semantic: list[SearchHit], lexical: list[SearchHit], k: int, rrf_k: int
           ) -> list[SearchHit]:
    from tasks.index.fusion import reciprocal_rank_fusion

    best = {h.doc_id: h for h in lexical}
    best.update({h.doc_id: h for h in semantic})  # the vector side's chunk when both have it
    fused = reciprocal_rank_fusion([[h.doc_id for h in semantic], [h.doc_id for h in lexical]],
                                   rrf_k)[:k]
    return [replace(best[doc], rank=rank, score=round(score, 6))
            for rank, (doc, score) in enumerate(fused, start=1)]
