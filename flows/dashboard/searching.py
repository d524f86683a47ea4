"""Search from the dashboard: one `flows.search.Searcher` per version, opened on first use.

Input: a query, a version id (None: the active one) and k. Output: the version searched and the
same `SearchHit`s `embedpipe search` prints (the same `Searcher`). Opening a searcher reads the
version's index files and loads its model (seconds), shared by every version made with the same
model fingerprint; `keep_warm` opens the active version ahead of its first search. Only the
`KEEP` most recently searched versions stay open (a served warehouse makes a version per ingest
and a model per retrain: an unbounded cache grew the dashboard by 75 MB in ten minutes of the
soak), and those unsearched for `IDLE_SECONDS` are closed at the next search or `keep_warm` look
(after a retrain's model is promoted, the old model's ~90 MB go ten minutes later, not when three
newer versions have been searched); a version `gc` expired is dropped.
Searches are recorded in the query log (`search.log_queries`), appended in the background.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress

from flows.dashboard import memory
from flows.search import EmptyQuery, Searcher, SearchHit
from tasks.embed.base import Embedder
from tasks.embed.embedding import version_embedder
from warehouse.errors import VersionExpired
from warehouse.query_log import QueryLog
from warehouse.store import Version, Warehouse

KEEP = 3  # open searchers: the active version, and a couple a user compares it with
IDLE_SECONDS = 600.0  # a searcher not used for this long is closed
WARM_EVERY = 30.0  # how often `keep_warm` looks for a newly active version


class Searchers:
    """The searchers of one warehouse's most recently searched versions."""

    def __init__(self, warehouse: Warehouse, log: QueryLog | None = None, keep: int = KEEP,
                 idle_seconds: float = IDLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 say: Callable[[str], None] | None = None) -> None:
        self.warehouse = warehouse
        self.log = log
        self.keep = keep
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._searchers: OrderedDict[int, Searcher] = OrderedDict()
        self._used: dict[int, float] = {}  # when each open searcher was last used
        self._embedders: dict[str, Embedder] = {}
        self._lock = threading.Lock()  # opening and searching: one at a time (2 cores)
        self.searched_at: float | None = None  # the last search, by `clock`
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))

    def search(self, query: str, version: Version, k: int) -> list[SearchHit]:
        """The `k` best documents of `version` for `query`.

        Raises:
            EmptyQuery: blank query. VersionExpired: `gc` removed the version.
            IndexMismatch: the version has no (matching) index.
        """
        if version.status == "expired":
            with self._lock:
                self._forget({version.version_id})
            raise VersionExpired(f"version {version.version_id} was expired by `embedpipe gc`")
        if not query.strip():  # before a searcher opens (and loads its model) for nothing
            raise EmptyQuery("empty query: give some text to search for")
        with self._lock:
            searcher = self._open(version)
            self._used[version.version_id] = self.clock()
            hits = searcher.search(query, k)
            self.searched_at = self.clock()
            self._forget()
            return hits

    def warm(self, version: Version) -> None:
        """Open `version`'s searcher and load its model now, so that no search waits for it.

        The dashboard warms the active version when it starts, and a newly promoted one while
        people search (loading a model took the first search to ~0.6 s). Not a search: nothing
        is logged, and the searcher closes like any other when unused.
        """
        with self._lock:
            if version.version_id in self._searchers:
                return
            embedder = self._embedders.get(version.model_fingerprint)
        if embedder is None:  # loaded outside the lock: searches of open versions go on
            embedder = version_embedder(version)
            embedder.encode(["warm"], batch_size=1)
        with self._lock:
            self._embedders.setdefault(version.model_fingerprint, embedder)
            self._open(version)
            self._used[version.version_id] = self.clock()
            self._forget()

    def keep_warm(self, stop: threading.Event, every: float = WARM_EVERY) -> None:
        """Warm the active version now, then each newly active one while people search;
        close idle searchers at each look (a dashboard nobody searches holds no model)."""
        warmed = None
        while True:
            active = None
            with suppress(Exception):  # no active version yet, a busy catalog: look again
                active = self.warehouse.version()
            if active is not None and active.version_id != warmed:
                searching = self.searched_at is not None and (
                    self.clock() - self.searched_at < self.idle_seconds)
                if warmed is None or searching:
                    try:
                        self.warm(active)
                    except Exception as exc:  # a search will say what is wrong, to its user
                        detail = " ".join(str(exc).split())[:200]
                        self.say(f"dashboard: version {active.version_id} not preloaded "
                                 f"({detail}); its first search loads it")
                warmed = active.version_id
            with self._lock:
                self._forget()
            if stop.wait(every):
                return

    def _open(self, version: Version) -> Searcher:
        """`version`'s searcher, opened if it is not (lock held)."""
        searcher = self._searchers.get(version.version_id)
        if searcher is None:
            searcher = Searcher(self.warehouse, version=version,
                                embedder=self._embedders.get(version.model_fingerprint),
                                log=self.log)
            self._searchers[version.version_id] = searcher
        self._searchers.move_to_end(version.version_id)
        self._embedders.setdefault(version.model_fingerprint, searcher.embedder)
        return searcher

    def _forget(self, expired: set[int] | None = None) -> None:
        """Close the searchers of `expired`, idle and beyond `keep` versions (lock held)."""
        cutoff = self.clock() - self.idle_seconds
        gone = [v for v in self._searchers
                if v in (expired or set()) or self._used.get(v, 0.0) < cutoff]
        dropped = bool(gone) or len(self._searchers) > self.keep
        for version_id in gone:
            del self._searchers[version_id]
        while len(self._searchers) > self.keep:
            self._searchers.popitem(last=False)
        self._used = {v: self._used[v] for v in self._searchers if v in self._used}
        used = {s.version.model_fingerprint for s in self._searchers.values()}
        for fingerprint in [f for f in self._embedders if f not in used]:
            del self._embedders[fingerprint]
        if dropped:
            memory.trim()  # a model's weights, an index: give the pages back (see memory.py)

    def loaded(self) -> list[int]:
        """Versions whose searcher is open."""
        with self._lock:
            return sorted(self._searchers)
