"""Search from the dashboard: one `flows.search.Searcher` per version, opened on first use.

Input: a query, a version id (None: the active one) and k. Output: the version searched and the
same `SearchHit`s `embedpipe search` prints (the same `Searcher`). Opening a searcher reads the
version's index files; its model loads on the first query (seconds), and is shared by every
version made with the same model fingerprint. A version `gc` expired is dropped from the cache.
Searches are recorded in the query log (`search.log_queries`), appended in the background.
"""

from __future__ import annotations

import threading

from flows.search import Searcher, SearchHit
from tasks.embed.base import Embedder
from warehouse.errors import VersionExpired
from warehouse.query_log import QueryLog
from warehouse.store import Version, Warehouse


class Searchers:
    """The searchers of one warehouse, kept for the life of the app."""

    def __init__(self, warehouse: Warehouse, log: QueryLog | None = None) -> None:
        self.warehouse = warehouse
        self.log = log
        self._searchers: dict[int, Searcher] = {}
        self._embedders: dict[str, Embedder] = {}
        self._lock = threading.Lock()  # opening and searching: one at a time (2 cores)

    def search(self, query: str, version: Version, k: int) -> list[SearchHit]:
        """The `k` best documents of `version` for `query`.

        Raises:
            EmptyQuery: blank query. VersionExpired: `gc` removed the version.
            IndexMismatch: the version has no (matching) index.
        """
        if version.status == "expired":
            self._searchers.pop(version.version_id, None)
            raise VersionExpired(f"version {version.version_id} was expired by `embedpipe gc`")
        with self._lock:
            searcher = self._searchers.get(version.version_id)
            if searcher is None:
                searcher = Searcher(self.warehouse, version=version,
                                    embedder=self._embedders.get(version.model_fingerprint),
                                    log=self.log)
                self._searchers[version.version_id] = searcher
            hits = searcher.search(query, k)
            self._embedders.setdefault(version.model_fingerprint, searcher.embedder)
            return hits

    def loaded(self) -> list[int]:
        """Versions whose searcher is open."""
        return sorted(self._searchers)
