"""The map and search pages.

Map. Input: the `Dashboard` and a version id (None: the active version, else the newest one
with a map). Output: the page dict (versions that have a map, the method, point and cluster
counts, the drift checks placed on it, newest first) and the stored rows as an Arrow table
(check_id NULL: the version's own sample; else a check's sample). Nothing is projected here: the
flows stored these rows (`tasks/steps/evaluate.py` map_version, `monitor.py` map_drift_sample).

Search. Input: a query, a version id (None: active) and k. Output: the page dict with the same
hits `embedpipe search` gives, or the one-line error a person should read.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from flows.dashboard.context import Dashboard
from tasks.errors import EmbedpipeError
from warehouse import history
from warehouse.errors import VersionNotFound, WarehouseError

MAX_OVERLAID = 5  # newest drift checks drawn over a map (older ones are listed, not drawn)


def map_page(dash: Dashboard, version_id: int | None) -> tuple[dict[str, Any], pa.Table]:
    """(page data, map rows) of one version.

    Raises:
        VersionNotFound: `version_id` is not a version of the warehouse.
    """
    wh = dash.warehouse
    versions = {v.version_id: v for v in wh.versions()}
    mapped = {m["version_id"]: m for m in history.mapped_versions(wh)}
    if version_id is not None and version_id not in versions:
        raise VersionNotFound(f"version {version_id} is not in {wh.where}")
    if version_id is None:
        active = [i for i, v in versions.items() if v.status == "active" and i in mapped]
        version_id = active[-1] if active else max(mapped, default=None)
    checks: list[dict[str, Any]] = []
    table = pa.table({})
    if version_id is not None and version_id in mapped:
        checks = history.map_checks(wh, version_id)
        table = history.map_points(wh, version_id, [c["check_id"] for c in checks[:MAX_OVERLAID]])
    shown = checks[:MAX_OVERLAID]
    own = table.filter(pc.is_null(table["check_id"])) if table.num_rows else table
    data = {
        "version_id": version_id,
        "status": versions[version_id].status if version_id in versions else None,
        "versions": [{"version_id": i, "status": versions[i].status if i in versions else None,
                      "points": m["points"], "method": m["method"]}
                     for i, m in sorted(mapped.items(), reverse=True)],
        "method": mapped[version_id]["method"] if version_id in mapped else None,
        "points": own.num_rows,
        "clusters": len(pc.unique(own["cluster"])) if own.num_rows else 0,
        "checks": [{**c, "drawn": True} for c in shown]
        + [{**c, "drawn": False} for c in checks[MAX_OVERLAID:]],
    }
    return data, table


def map_points_json(table: pa.Table) -> list[dict[str, Any]]:
    """The map rows for the JSON endpoint."""
    if not table.num_rows:
        return []
    return table.select(["check_id", "doc_id", "title", "snippet", "x", "y", "cluster"]
                        ).to_pylist()


def search_page(dash: Dashboard, query: str | None, version_id: int | None, k: int
                ) -> dict[str, Any]:
    """The search form's state and, when a query was given, its hits (or why there are none)."""
    wh = dash.warehouse
    versions = [v for v in wh.versions() if v.status != "expired"]
    active = next((v.version_id for v in reversed(versions) if v.status == "active"), None)
    data: dict[str, Any] = {
        "query": query or "", "version_id": version_id if version_id is not None else active,
        "k": k, "versions": [{"version_id": v.version_id, "status": v.status}
                             for v in reversed(versions)],
        "hits": [], "error": None, "seconds": None}
    if query is None:
        return data
    started = time.perf_counter()
    try:
        version = wh.readable(version_id)
        hits = dash.searchers.search(query, version, k)
    except (EmbedpipeError, WarehouseError) as exc:  # empty query, no index, no such version
        data["error"] = " ".join(str(exc).split())
        return data
    data.update(version_id=version.version_id, hits=[h.as_dict() for h in hits],
                seconds=round(time.perf_counter() - started, 4))
    return data
