"""Search a version: embed the query with that version's model, query its index, rank documents.

No Prefect here, and nothing per query reads the catalog: a `Searcher` resolves the version
once, loads its embedder and its index files (the ANN index and the rows search shows), and then
answers queries from memory. With a `QueryLog` each search is also recorded (text, version,
mode, k, top score, latency) in the lake's `queries` table. `search()` is the one-call form the
CLI uses.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from tasks.embed.base import Embedder
from tasks.embed.embedding import version_embedder
from tasks.errors import EmbedpipeError
from tasks.index.hits import MODES, SearchHit, search_vectors
from tasks.index.hits import search as search_modes
from tasks.index.storage import open_version_index
from warehouse.query_log import QueryLog
from warehouse.store import Version, Warehouse

__all__ = ["EmptyQuery", "SearchHit", "Searcher", "search"]


class EmptyQuery(EmbedpipeError):
    """A query with no text to search for."""


class Searcher:
    """Searches one version; open once, query many times.

    >>> from warehouse.store import open
    >>> searcher = Searcher(open(".embedpipe/warehouse"))          # doctest: +SKIP
    >>> searcher.search("parse command line arguments", k=3)[0].doc_id  # doctest: +SKIP
    'argparse'
    """

    def __init__(self, warehouse: Warehouse, version_id: int | None = None,
                 embedder: Embedder | None = None, version: Version | None = None,
                 log: QueryLog | None = None) -> None:
        self.version = version or warehouse.readable(version_id)
        self.indexed = open_version_index(warehouse, self.version)
        self._embedder = embedder
        self.log = log  # None: searches are not recorded (library calls, unless asked)

    @property
    def embedder(self) -> Embedder:
        """The version's own model, loaded on first use (a search by vector needs none)."""
        if self._embedder is None:
            self._embedder = version_embedder(self.version)
        return self._embedder

    def search(self, query: str, k: int = 10, mode: str = "vector", rrf_k: int = 60
               ) -> list[SearchHit]:
        """The `k` best documents for `query` (one hit per document: its best chunk).

        Args:
            mode: `vector` (meaning), `bm25` (words) or `hybrid` (both, fused by reciprocal
                rank with constant `rrf_k`).

        Raises:
            EmptyQuery: the query is empty or only whitespace.
            MissingIndex: `bm25`/`hybrid` on a version built without a BM25 index.
        """
        if not query.strip():
            raise EmptyQuery("empty query: give some text to search for")
        if mode not in MODES:
            raise ValueError(f"search mode {mode!r} unknown; valid: {', '.join(MODES)}")
        started = time.perf_counter()
        vectors = None if mode == "bm25" else self.embedder.encode([query], batch_size=1)
        hits = search_modes(self.indexed, [query], vectors, k, mode, rrf_k)[0]
        if self.log is not None:
            self.log.record(query, self.version.version_id, mode, k,
                            hits[0].score if hits else None,
                            1000 * (time.perf_counter() - started))
        return hits

    def search_vector(self, vector: np.ndarray, k: int = 10) -> list[SearchHit]:
        return search_vectors(self.indexed.index, self.indexed.rows, vector.reshape(1, -1), k,
                              self.version.version_id)[0]


def search(warehouse: Warehouse, query: str, k: int = 10, version_id: int | None = None,
           embedder: Embedder | None = None, mode: str = "vector", rrf_k: int = 60,
           log: QueryLog | None = None) -> list[SearchHit]:
    """The `k` best documents for `query` in the active (or given) version.

    >>> from warehouse.store import open
    >>> wh = open(".embedpipe/warehouse")                          # doctest: +SKIP
    >>> search(wh, "parse command line arguments", k=3)[0].doc_id  # doctest: +SKIP
    'argparse'
    """
    if not query.strip():
        raise EmptyQuery("empty query: give some text to search for")
    return Searcher(warehouse, version_id, embedder, log=log).search(query, k, mode, rrf_k)


def hits_as_dicts(hits: list[SearchHit]) -> list[dict[str, Any]]:
    return [h.as_dict() for h in hits]
