"""Reads of what happened to a warehouse: runs, quality metrics, drift checks, maps.

Input: version ids, flow names, drift-check kinds. Output: rows as dicts or Arrow tables; an
empty answer (never an error) when a warehouse has no such table yet.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from warehouse import queries
from warehouse.reads import LakeReads, lake_tables


class RunReads(LakeReads):
    """Runs, metrics and drift checks, newest first where it matters."""

    def recent_alarms(self, version_id: int, kind: str, limit: int) -> list[bool]:
        """Alarms of the last `limit` drift checks of one kind on `version_id`, oldest first."""
        with self._reader() as con:
            if "drift_metrics" not in lake_tables(con):
                return []
            rows = con.execute(queries.DRIFT_ALARMS, [version_id, kind, limit]).fetchall()
        return [bool(r[1]) for r in reversed(rows)]

    def last_drift_check(self) -> dict[str, Any] | None:
        """The newest drift check (check_id, version_id, kind, source, checked_at, alarm,
        drifted), or None when there was none."""
        with self._reader() as con:
            if "drift_metrics" not in lake_tables(con):
                return None
            rows = queries.fetch_dicts(con, queries.LAST_DRIFT_CHECK)
        return rows[0] if rows else None

    def projection(self, version_id: int, check_id: str | None = None) -> pa.Table:
        """The 2-D map rows of a version (or of one drift check's sample placed on it)."""
        with self._reader() as con:
            if "projections" not in lake_tables(con):
                return pa.table({})
            return con.execute(queries.PROJECTION, [version_id, check_id]).to_arrow_table()

    def query_reference(self) -> tuple[str, str, list[str]] | None:
        """(set id, source, texts) of the query sample query drift compares with, if any."""
        with self._reader() as con:
            if "query_references" not in lake_tables(con):
                return None
            rows = con.execute(queries.LATEST_QUERY_REFERENCE).fetchall()
        return (rows[0][0], rows[0][1], [r[2] for r in rows]) if rows else None

    def drift_checks_since(self, since: Any) -> list[dict[str, Any]]:
        """Drift checks (one row each: kind, source, checked_at, alarm, drifted) since `since`."""
        with self._reader() as con:
            if "drift_metrics" not in lake_tables(con):
                return []
            return queries.fetch_dicts(con, queries.DRIFT_CHECKS_SINCE, [since])

    def runs(self, flow: str, limit: int = 10) -> list[dict[str, Any]]:
        """The newest runs of one flow (ingest, monitor, retrain, evaluate), newest first;
        `summary` parsed from JSON."""
        with self._reader() as con:
            if "runs" not in lake_tables(con):
                return []
            rows = queries.fetch_dicts(con, queries.RECENT_RUNS, [flow, limit])
        return [{**r, "summary": json.loads(r["summary"]) if r["summary"] else {}} for r in rows]

    def metrics(self, version_id: int) -> list[dict[str, Any]]:
        """The quality_metrics rows of one version."""
        with self._reader() as con:
            return queries.fetch_dicts(con, queries.VERSION_METRICS, [version_id])
