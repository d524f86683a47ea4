"""The lake's history for the faces that stay up (dashboard, /metrics), and fast readers for them.

Reads only. Input: a `Warehouse` (any; a `PooledWarehouse` makes them cheap). Output: plain
rows as dicts (JSON columns decoded) or Arrow tables: the flow runs, every version's quality
metrics, the drift checks, quarantine counts and examples per version, and the stored 2-D maps.
A warehouse written by an older embedpipe may lack a table: its reads return nothing.

`PooledWarehouse` is a `Warehouse` whose reads cost milliseconds instead of ~0.3 s: it keeps a
few DuckDB instances with the lake's extensions loaded, and every read ATTACHes the catalog
READ_ONLY, runs and DETACHes. Nothing stays open between reads, so a reader always sees the last
commit of a concurrent ingest (SQLite WAL) and never holds or waits for the writer lock.
`with warehouse.reading():` makes every read inside one attachment (one page, one scrape).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from warehouse import queries
from warehouse.errors import WarehouseError
from warehouse.lake import (
    catalog_attach_string,
    create_s3_secret,
    extension_path,
    require_shared_catalog,
    sql_literal,
)
from warehouse.locate import location_of
from warehouse.location import Location
from warehouse.store import Warehouse

RUN_COLUMNS = """run_id, flow, started_at, finished_at, status, message, version_id, source,
                 flow_run_id, summary"""
RECENT_RUNS = f"SELECT {RUN_COLUMNS} FROM lake.runs ORDER BY started_at DESC LIMIT ?"
LAST_RUN_OF_FLOW = f"""
    SELECT {RUN_COLUMNS} FROM lake.runs WHERE flow = ? ORDER BY started_at DESC LIMIT 1"""
RUNS_OF_VERSION = f"SELECT {RUN_COLUMNS} FROM lake.runs WHERE version_id = ? ORDER BY started_at"
ALL_METRICS = """
    SELECT version_id, evaluator, metric, value, greater_is_better, is_primary
    FROM lake.quality_metrics ORDER BY evaluator, metric, version_id"""
DRIFT_COLUMNS = """check_id, version_id, checked_at, kind, source, n_reference, n_current,
                   metric, value, alarm, drifted, threshold, rule"""
# The newest `?` checks, every statistic of each, oldest first.
DRIFT_HISTORY = f"""
    WITH recent AS (SELECT check_id FROM lake.drift_metrics GROUP BY check_id
                    ORDER BY max(checked_at) DESC LIMIT ?)
    SELECT {DRIFT_COLUMNS} FROM lake.drift_metrics
    WHERE check_id IN (SELECT check_id FROM recent) ORDER BY checked_at, check_id, metric"""
DRIFT_CHECKS_COUNT = "SELECT count(DISTINCT check_id) FROM lake.drift_metrics"
# Alarms of the newest `?` checks of one version and kind, newest first.
RECENT_ALARMS = """
    SELECT check_id, bool_or(alarm) AS alarm FROM lake.drift_metrics
    WHERE version_id = ? AND kind = ? GROUP BY check_id ORDER BY max(checked_at) DESC LIMIT ?"""
RUN_OF_CHECK = """
    SELECT json_extract_string(summary, '$.check_id') AS check_id, flow_run_id FROM lake.runs
    WHERE flow = 'monitor' AND flow_run_id IS NOT NULL"""
QUARANTINE_COUNTS = """
    SELECT reason, count(*) AS n FROM lake.quarantine WHERE version_id = ?
    GROUP BY reason ORDER BY n DESC, reason"""
QUARANTINE_EXAMPLES = """
    SELECT reason, source, "row", doc_id, detail, twin_doc_id FROM lake.quarantine
    WHERE version_id = ?
    QUALIFY row_number() OVER (PARTITION BY reason ORDER BY source, "row") <= ?
    ORDER BY reason, source, "row" """
MAPPED_VERSIONS = """
    SELECT version_id, count(*) AS points, any_value(method) AS method FROM lake.projections
    WHERE check_id IS NULL GROUP BY version_id ORDER BY version_id"""
# The drift checks placed on a version's map, newest first, with what each check found.
MAP_CHECKS = """
    WITH placed AS (SELECT check_id, count(*) AS points FROM lake.projections
                    WHERE version_id = ? AND check_id IS NOT NULL GROUP BY check_id),
         checks AS (SELECT check_id, max(checked_at) AS checked_at, any_value(kind) AS kind,
                           any_value(source) AS source, bool_or(drifted) AS drifted
                    FROM lake.drift_metrics GROUP BY check_id)
    SELECT p.check_id, p.points, c.checked_at, c.kind, c.source, c.drifted
    FROM placed p LEFT JOIN checks c USING (check_id)
    ORDER BY c.checked_at DESC NULLS LAST, p.check_id"""
MAP_POINTS = """
    SELECT check_id, doc_id, title, snippet, x, y, cluster, method FROM lake.projections
    WHERE version_id = ? AND (check_id IS NULL OR list_contains(?, check_id))
    ORDER BY check_id NULLS FIRST, chunk_key"""


def recent_runs(warehouse: Warehouse, limit: int = 20) -> list[dict[str, Any]]:
    """The newest `limit` flow runs (any flow), newest first, `summary` decoded."""
    return _runs(warehouse, RECENT_RUNS, [limit])


def last_run(warehouse: Warehouse, flow: str) -> dict[str, Any] | None:
    """The newest run of `flow` ("ingest", "monitor", "retrain", "evaluate"), or None."""
    rows = _runs(warehouse, LAST_RUN_OF_FLOW, [flow])
    return rows[0] if rows else None


def runs_of_version(warehouse: Warehouse, version_id: int) -> list[dict[str, Any]]:
    """The runs that published, checked or evaluated `version_id`, oldest first."""
    return _runs(warehouse, RUNS_OF_VERSION, [version_id])


def all_metrics(warehouse: Warehouse) -> list[dict[str, Any]]:
    """Every quality_metrics row of every version (evaluator, metric, version order)."""
    return _dicts(warehouse, ALL_METRICS)


def drift_history(warehouse: Warehouse, checks: int = 500) -> list[dict[str, Any]]:
    """One row per statistic of each of the newest `checks` drift checks, oldest first."""
    return _dicts(warehouse, DRIFT_HISTORY, [checks])


def drift_check_count(warehouse: Warehouse) -> int:
    rows = _rows(warehouse, DRIFT_CHECKS_COUNT)
    return int(rows[0][0]) if rows else 0


def recent_alarms(warehouse: Warehouse, version_id: int, kind: str, window: int) -> list[bool]:
    """Alarms of the newest `window` checks of one version and kind, newest first."""
    return [bool(r[1]) for r in _rows(warehouse, RECENT_ALARMS, [version_id, kind, window])]


def check_runs(warehouse: Warehouse) -> dict[str, str]:
    """check_id -> the Prefect flow-run id of the monitor run that made it."""
    return {str(c): str(f) for c, f in _rows(warehouse, RUN_OF_CHECK) if c}


def quarantine(warehouse: Warehouse, version_id: int, examples: int = 3
               ) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """(count by reason, the first `examples` rows of each reason) of one version's run."""
    counts = {str(r): int(n) for r, n in _rows(warehouse, QUARANTINE_COUNTS, [version_id])}
    return counts, _dicts(warehouse, QUARANTINE_EXAMPLES, [version_id, examples])


def mapped_versions(warehouse: Warehouse) -> list[dict[str, Any]]:
    """The versions that have a stored map (version_id, points, method)."""
    return _dicts(warehouse, MAPPED_VERSIONS)


def map_checks(warehouse: Warehouse, version_id: int) -> list[dict[str, Any]]:
    """The drift checks placed on a version's map, newest first (check_id, points,
    checked_at, kind, source, drifted)."""
    return _dicts(warehouse, MAP_CHECKS, [version_id])


def map_points(warehouse: Warehouse, version_id: int, check_ids: list[str]) -> pa.Table:
    """The map of a version (check_id NULL) and of the given checks' samples on it."""
    with warehouse._reader() as con:
        try:
            return con.execute(MAP_POINTS, [version_id, check_ids]).to_arrow_table()
        except duckdb.CatalogException:  # an older warehouse: no projections table
            return pa.table({})


def _rows(warehouse: Warehouse, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse._reader() as con:
        try:
            return con.execute(sql, params or []).fetchall()
        except duckdb.CatalogException:  # an older warehouse lacks this table
            return []


def _dicts(warehouse: Warehouse, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    with warehouse._reader() as con:
        try:
            return queries.fetch_dicts(con, sql, params)
        except duckdb.CatalogException:
            return []


def _runs(warehouse: Warehouse, sql: str, params: list) -> list[dict[str, Any]]:
    rows = _dicts(warehouse, sql, params)
    for row in rows:
        row["summary"] = json.loads(row["summary"]) if row.get("summary") else {}
    return rows


# Attachments per pooled instance before it is closed and replaced: each ATTACH + read + DETACH
# of a DuckLake catalog keeps ~160 KB of native memory in the instance until it is closed (a
# dashboard grew ~150 KB per page, 90 MB in the soak's first 15 minutes); replacing it every 30
# costs ~10 ms a page on average and bounds that to ~5 MB per instance.
MAX_USES = 30


class ReaderPool:
    """Up to `size` DuckDB instances with the lake's extensions loaded (~0.3 s each).

    `reader()` attaches the catalog READ_ONLY to a free instance and detaches it afterwards.
    A read nested in another on the same thread reuses the outer attachment. An instance is
    replaced after `MAX_USES` attachments, by a thread: made by the next request (~0.15 s, more
    on a busy machine), it was most of the dashboard's pages over 250 ms.
    """

    def __init__(self, where: Path | Location, catalog: str | None, size: int = 4) -> None:
        self.location = location_of(where)
        require_shared_catalog(self.location, catalog)
        self.directory = self.location.local.resolve()
        self.catalog = catalog
        self.size = size
        target, self._catalog_extension = catalog_attach_string(self.directory, catalog)
        data = sql_literal(self.location.join("data") + "/" if self.location.is_remote
                           else f"{self.directory / 'data'}/")
        # Read-only and at the data's current place, as `warehouse.lake.connect` attaches it.
        self._attach = (f"ATTACH {sql_literal(target)} AS lake "
                        f"(DATA_PATH {data}, OVERRIDE_DATA_PATH true, READ_ONLY)")
        self._idle: queue.LifoQueue[duckdb.DuckDBPyConnection] = queue.LifoQueue()
        self._uses: dict[int, int] = {}  # attachments per instance, by id()
        self._created = 0
        self._lock = threading.Lock()
        self._local = threading.local()
        self.replacing: threading.Thread | None = None  # the last replacement made

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection with the lake attached as `lake`, as of now.

        Raises:
            WarehouseError: there is no warehouse (yet), or its catalog cannot be opened.
        """
        held = getattr(self._local, "con", None)
        if held is not None:
            yield held
            return
        if self._catalog_extension == "sqlite_scanner" and not (
                self.directory / "catalog.sqlite").exists():
            raise WarehouseError(f"no warehouse at {self.directory}: run `embedpipe ingest "
                                 "SOURCE` first (or pass --warehouse / set EMBEDPIPE_WAREHOUSE)")
        con = self._take()
        try:
            con.execute(self._attach)
        except duckdb.Error as exc:
            self._give(con)
            raise WarehouseError(f"cannot open the warehouse catalog at {self.directory}: "
                                 f"{_redacted(str(exc), self.catalog)}") from exc
        self._local.con = con
        try:
            yield con
        finally:
            self._local.con = None
            uses = self._uses.get(id(con), 0) + 1
            try:
                con.execute("DETACH lake")
            except duckdb.Error:  # an instance a failed query left unusable: replace it
                uses = MAX_USES
            if uses >= MAX_USES:
                self._retire(con)
                self.replacing = threading.Thread(target=self._replace, daemon=True,
                                                  name="embedpipe-reader-pool")
                self.replacing.start()
            else:
                self._uses[id(con)] = uses
                self._give(con)

    def warm(self) -> None:
        """Load one instance now, so that the first page does not pay for it."""
        self._give(self._take())

    def _take(self) -> duckdb.DuckDBPyConnection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        while (con := self._create()) is None:  # all exist and are busy: wait for one
            try:
                return self._idle.get(timeout=1.0)
            except queue.Empty:  # or for room, if a retired one's successor failed
                continue
        return con

    def _replace(self) -> None:
        """Make an instance for the idle queue (a retired one's successor), off the request."""
        with suppress(Exception):  # the next `_take` makes one, and raises what went wrong
            if (con := self._create()) is not None:
                self._give(con)

    def _create(self) -> duckdb.DuckDBPyConnection | None:
        """A new instance with the extensions loaded, or None when `size` exist already."""
        with self._lock:
            if self._created >= self.size:
                return None
            self._created += 1
        try:
            con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                         "autoload_known_extensions": False})
            remote = self.location.is_remote
            for name in (self._catalog_extension, "ducklake") + (("httpfs",) if remote else ()):
                con.execute("LOAD " + sql_literal(str(extension_path(name))))
            if remote:
                create_s3_secret(con)
        except BaseException:
            with self._lock:
                self._created -= 1
            raise
        return con

    def _give(self, con: duckdb.DuckDBPyConnection) -> None:
        self._idle.put(con)

    def _retire(self, con: duckdb.DuckDBPyConnection) -> None:
        self._uses.pop(id(con), None)
        con.close()
        with self._lock:
            self._created -= 1


class PooledWarehouse(Warehouse):
    """A `Warehouse` whose reads go through a `ReaderPool` (for long-running readers)."""

    def __init__(self, path: str | Path | Location, catalog: str | None = None,
                 pool_size: int = 4) -> None:
        super().__init__(path, catalog)
        self.pool = ReaderPool(self.location, catalog, pool_size)

    @contextmanager
    def _reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.pool.reader() as con:
            yield con

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Every read inside shares one attachment of the catalog (one page, one scrape)."""
        with self.pool.reader():
            yield


def _redacted(message: str, catalog: str | None) -> str:
    from urllib.parse import urlparse

    password = urlparse(catalog).password if catalog and "://" in catalog else None
    return message.replace(password, "***") if password else message
