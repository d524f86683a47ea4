"""The query log: what people searched for, in the lake's `queries` table.

Searches through the CLI and the dashboard are recorded (config `search.log_queries`; library
calls only when asked): text and its hash, when, which version, mode, k, top score, latency.
The log is what the index's recall is checked on (users' queries, not chunk vectors), what
`drift --queries log` compares, and what `embedpipe queries` lists.

Appends take no writer lock (like run records): an ingest holding the lock never blocks a
search. The log is bounded: after each append, rows beyond `search.log_max_rows` are dropped,
oldest first. A warehouse this process cannot write to (an s3 reader without write rights, a
read-only directory) records nothing: the first failed append says so once, on stderr, and the
log stays off for the rest of the process. A commit that lost a race with another writer is
retried at the next flush (a server) or dropped (one CLI search), never turning the log off.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from warehouse import queries
from warehouse.errors import WarehouseError
from warehouse.lake import connect
from warehouse.reads import lake_tables
from warehouse.schema import QUERY_ROWS
from warehouse.store import Warehouse

ORIGINS = ("cli", "dashboard", "library")
QUERY_LOG = "log"  # what `drift --queries log` names: this log, not a file


class SearchConfig(BaseModel):
    """Config section `search`: whether searches are logged, and how many are kept."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # None: on for the CLI and the dashboard, off for library calls (`Searcher(log=...)`).
    log_queries: bool | None = None
    log_max_rows: int = Field(10_000, ge=1)

    def logs(self, origin: str) -> bool:
        return self.log_queries if self.log_queries is not None else origin != "library"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def append(warehouse: Warehouse, rows: list[dict[str, Any]], max_rows: int) -> None:
    """Append logged searches and drop the oldest beyond `max_rows`, in one transaction.

    Raises:
        WarehouseError, duckdb.Error, OSError: the warehouse cannot be written here.
    """
    table = pa.Table.from_pylist(rows, schema=QUERY_ROWS)
    con = connect(warehouse.location, warehouse.catalog)
    try:
        con.register("new_queries", table)
        con.execute("BEGIN")
        con.execute(queries.INSERT_QUERIES)
        (count,) = con.execute(queries.COUNT_QUERIES).fetchone() or (0,)
        if count > max_rows:
            con.execute(queries.TRIM_QUERIES, [max_rows])
        con.execute("COMMIT")
    finally:
        con.close()


def recent(warehouse: Warehouse, limit: int = 20, version_id: int | None = None
           ) -> list[dict[str, Any]]:
    """The newest logged searches, newest first (of one version when given); [] when none."""
    if not warehouse.exists():
        return []
    with warehouse._reader() as con:
        if "queries" not in lake_tables(con):
            return []  # an older warehouse: its next writer adds the table
        return queries.fetch_dicts(con, queries.RECENT_QUERIES, [version_id, version_id, limit])


def texts(warehouse: Warehouse, limit: int) -> list[str]:
    """The distinct texts of the newest `limit` logged searches (by their last use), oldest
    first: queries as users typed them, for tuning, recall checks and drift."""
    if not warehouse.exists():
        return []
    with warehouse._reader() as con:
        if "queries" not in lake_tables(con):
            return []
        return [r[0] for r in con.execute(queries.LOGGED_TEXTS, [limit]).fetchall()]


# A server's searches are appended this often: each append opens the lake (~0.2 s of CPU); at
# every 2 s it took a tenth of a core from the pages of a busy dashboard, and met publishes.
FLUSH_SECONDS = 10.0


class QueryLog:
    """Records one process's searches into a warehouse's log.

    `background=True` (a server): `record` only queues; a thread appends what queued every
    `interval` seconds, so a search never waits on the catalog. Otherwise `record` appends at
    once (one CLI search, one append).
    """

    def __init__(self, warehouse: Warehouse, config: SearchConfig, origin: str,
                 background: bool = False, interval: float = FLUSH_SECONDS,
                 say: Callable[[str], None] | None = None) -> None:
        if origin not in ORIGINS:
            raise ValueError(f"origin {origin!r}: expected one of {ORIGINS}")
        self.warehouse, self.origin, self.max_rows = warehouse, origin, config.log_max_rows
        self.enabled = config.logs(origin)
        self._say = say or (lambda line: print(line, file=sys.stderr))
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background and self.enabled:
            self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True,
                                            name="embedpipe-query-log")
            self._thread.start()

    def record(self, text: str, version_id: int, mode: str, k: int, top_score: float | None,
               latency_ms: float) -> None:
        if not self.enabled:
            return
        row = {"query_id": uuid.uuid4().hex, "text_hash": text_hash(text), "text": text,
               "logged_at": datetime.now(UTC).replace(tzinfo=None), "version_id": version_id,
               "mode": mode, "k": k, "top_score": top_score,
               "latency_ms": round(latency_ms, 2), "origin": self.origin}
        with self._lock:
            self._pending.append(row)
        if self._thread is None:
            self.flush()

    def flush(self) -> None:
        """Append what is queued (nothing when the log is off or went off)."""
        with self._lock:
            rows, self._pending = self._pending, []
        if not rows or not self.enabled:
            return
        try:
            append(self.warehouse, rows, self.max_rows)
        except duckdb.TransactionException:
            # Another writer committed first (an ingest, another search): try again with the
            # next flush (a server) or drop this one search (a CLI process that is exiting).
            if self._thread is not None:
                with self._lock:
                    self._pending[:0] = rows[-self.max_rows:]
        except (WarehouseError, duckdb.Error, OSError) as exc:
            self.enabled = False
            detail = " ".join(str(exc).split())[:200]
            self._say(f"query log off: cannot write to {self.warehouse.where} ({detail}); "
                      "searches are not recorded (set search.log_queries = false to silence)")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.flush()
