"""`/metrics` and `embedpipe metrics`: the warehouse's state in Prometheus text format.

Input: a `Warehouse` (read on every scrape, nothing cached). Output: gauge families named
`embedpipe_…` in base units. Labels take bounded values only: version statuses, statistic,
stage, evaluator and metric names, quarantine reasons and row outcomes; never document or check
ids. A warehouse that cannot be read scrapes as `embedpipe_warehouse_up 0` and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

import duckdb
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from warehouse import history
from warehouse.errors import WarehouseError
from warehouse.schema import VERSION_STATUSES
from warehouse.store import Version, Warehouse

INGEST_STATUSES = ("published", "unchanged", "rejected", "failed")
ROW_OUTCOMES = {"input": "input_documents", "kept": "kept",
                "exact_duplicate": "exact_duplicates", "near_duplicate": "near_duplicates",
                "quarantined": "quarantined"}


def gauge(name: str, doc: str, value: float | None = None, labels: list[str] | None = None,
          samples: list[tuple[list[str], float]] | None = None) -> GaugeMetricFamily:
    """A gauge family with one value, or one sample per label values."""
    family = GaugeMetricFamily(f"embedpipe_{name}", doc, value=value, labels=labels)
    for label_values, sample in samples or []:
        family.add_metric(label_values, sample)
    return family


def timestamp(moment: datetime) -> float:
    """Unix seconds of a naive-UTC lake time."""
    return moment.replace(tzinfo=UTC).timestamp()


class WarehouseCollector(Collector):
    """Reads the warehouse on each scrape (one catalog attachment per scrape when pooled)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def collect(self) -> Iterator[Metric]:
        try:
            with _reading(self.warehouse):
                families = list(self._families())
        except (WarehouseError, duckdb.Error):
            yield gauge("warehouse_up", "1 if the warehouse could be read", 0)
            return
        yield gauge("warehouse_up", "1 if the warehouse could be read", 1)
        yield from families

    def _families(self) -> Iterator[Metric]:
        wh = self.warehouse
        versions = wh.versions()
        active = next((v for v in reversed(versions) if v.status == "active"), None)
        yield from _versions(versions, active)
        yield from _last_ingest(history.last_run(wh, "ingest"))
        yield from _drift(history.drift_history(wh, checks=1))
        if active is not None:
            yield from _index(active)
            rows = wh.metrics(active.version_id)
            yield gauge("quality_metric", "Each quality metric of the active version",
                        labels=["evaluator", "metric"],
                        samples=[([r["evaluator"], r["metric"]], r["value"]) for r in rows
                                 if r["value"] is not None])


def _versions(versions: list[Version], active: Version | None) -> Iterator[Metric]:
    yield gauge("active_version", "Id of the active version (0: none)",
                active.version_id if active else 0)
    counts = {status: 0 for status in VERSION_STATUSES}
    for v in versions:
        counts[v.status] = counts.get(v.status, 0) + 1
    yield gauge("versions", "Versions by status", labels=["status"],
                samples=[([s], n) for s, n in counts.items()])
    yield gauge("versions_pinned", "Versions pinned against gc", sum(v.pinned for v in versions))
    if versions:
        newest = versions[-1]
        yield gauge("newest_version", "Id of the newest version, whatever its status",
                    newest.version_id)
        if "passed" in newest.gate:
            yield gauge("newest_version_gate_passed",
                        "1 if the quality gate passed the newest version",
                        int(bool(newest.gate["passed"])))
    if active is not None:
        yield gauge("active_documents", "Documents of the active version", active.n_documents)
        yield gauge("active_chunks", "Chunks of the active version", active.n_chunks)


def _last_ingest(run: dict[str, Any] | None) -> Iterator[Metric]:
    if run is None:
        return
    at = run["finished_at"] or run["started_at"]
    yield gauge("last_ingest_timestamp_seconds", "When the last ingest run ended", timestamp(at))
    yield gauge("last_ingest_age_seconds", "Seconds since the last ingest run ended",
                datetime.now(UTC).timestamp() - timestamp(at))
    yield gauge("last_ingest_status", "Outcome of the last ingest run (1: this one)",
                labels=["status"],
                samples=[([s], int(run["status"] == s)) for s in INGEST_STATUSES])
    summary = run["summary"]
    yield gauge("last_ingest_documents", "Input rows of the last ingest by outcome",
                labels=["outcome"], samples=[([o], summary[k]) for o, k in ROW_OUTCOMES.items()
                                             if summary.get(k) is not None])
    yield gauge("last_ingest_quarantined_documents",
                "Rows the last ingest quarantined, by reason (duplicates not included)",
                labels=["reason"], samples=[([r], n) for r, n in sorted(
                    (summary.get("quarantined_by_reason") or {}).items())])
    yield gauge("last_ingest_stage_seconds", "Seconds per stage of the last ingest",
                labels=["stage"], samples=[([s], t) for s, t in (
                    summary.get("stage_seconds") or {}).items()])


def _drift(rows: list[dict[str, Any]]) -> Iterator[Metric]:
    if not rows:
        return
    at = rows[0]["checked_at"]
    yield gauge("last_drift_check_timestamp_seconds", "When the last drift check ran",
                timestamp(at))
    yield gauge("last_drift_check_age_seconds", "Seconds since the last drift check",
                datetime.now(UTC).timestamp() - timestamp(at))
    yield gauge("drift_statistic", "Statistics of the last drift check",
                labels=["statistic"], samples=[([r["metric"]], r["value"]) for r in rows
                                               if r["value"] is not None])
    yield gauge("drift_threshold", "Alarm thresholds of the last drift check's statistics",
                labels=["statistic"], samples=[([r["metric"]], r["threshold"]) for r in rows
                                               if r["threshold"] is not None])
    yield gauge("drift_alarm", "1 if the last drift check raised an alarm",
                int(any(r["alarm"] for r in rows)))
    yield gauge("drift_drifted", "1 if the last drift check decided drift (k of n alarms)",
                int(any(r["drifted"] for r in rows)))


def _index(active: Version) -> Iterator[Metric]:
    meta = active.index_meta
    recall = [([q], meta[key]) for q, key in (("tuning", "recall"),
                                              ("heldout", "heldout_recall"))
              if meta.get(key) is not None]
    # By what the queries were: the kind tuned on (configured | probes | chunks; its held-out
    # half where there is one) and, when searches were logged, the logged queries ("log").
    kind = meta.get("queries") or "chunks"
    tuned = meta.get("heldout_recall") if meta.get("heldout_recall") is not None \
        else meta.get("recall")
    if tuned is not None and kind != "log":
        recall.append(([kind], tuned))
    if meta.get("log_recall") is not None:
        recall.append((["log"], meta["log_recall"]))
    yield gauge("index_recall", "Recall@k of the active index against exact search, by the "
                "queries measured: tuning/heldout halves, and configured, probes, chunks or "
                "log (logged searches)", labels=["queries"], samples=recall)
    for key, doc in (("target_recall", "Recall the index's ef was tuned to reach"),
                     ("ef", "Search-time ef of the active index"),
                     ("recall_k", "k of the index's recall@k")):
        if meta.get(key) is not None:
            yield gauge(f"index_{key}", doc, meta[key])


def _reading(warehouse: Warehouse) -> AbstractContextManager[Any]:
    return warehouse.reading() if isinstance(warehouse, history.PooledWarehouse) \
        else nullcontext()


def render(warehouse: Warehouse) -> bytes:
    """The exposition text of one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WarehouseCollector(warehouse))
    return generate_latest(registry)
