"""The monitor flow: compare new data with the active version, record, alarm, maybe retrain.

A check embeds a sample of a corpus batch (cleaned and chunked as the active version was) or of
a query log, compares it with a seeded reference sample of the active version, writes one
`drift_metrics` row per statistic, publishes a Prefect table and markdown artifact, and on drift
emits `embedpipe.drift.detected` (resource: the warehouse) with the statistics as payload.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.events import emit_event
from pydantic import BaseModel

from flows.config import EmbedpipeConfig
from flows.search import version_embedder
from tasks import drift, monitor
from tasks.steps import artifact_key
from warehouse.store import Version, Warehouse
from warehouse.writer import open_writer

DRIFT_EVENT = "embedpipe.drift.detected"


class DriftReport(BaseModel):
    check_id: str
    version_id: int
    kind: str
    source: str
    n_reference: int
    n_current: int
    statistics: dict[str, float]
    alarm: bool  # this check alone
    drifted: bool  # the decision rule, k alarms of the last n checks included
    retrain: dict[str, Any] | None = None


def warehouse_resource(warehouse: Warehouse) -> dict[str, str]:
    """The Prefect event resource naming a warehouse (what triggers match on)."""
    digest = hashlib.sha1(str(warehouse.path.resolve()).encode()).hexdigest()[:12]
    return {"prefect.resource.id": f"embedpipe.warehouse.{digest}",
            "prefect.resource.name": str(warehouse.path.resolve())}


@task(name="sample-and-compare", cache_policy=NONE)
def sample_and_compare(warehouse: Warehouse, version: Version, kind: str, source: Path,
                       config: EmbedpipeConfig) -> tuple[dict[str, float], int, int]:
    embedder = version_embedder(version)
    cfg = config.drift
    reference = monitor.reference_sample(warehouse, version, embedder, cfg.reference_size,
                                         cfg.seed)
    if kind == "queries":
        current = monitor.queries_sample(source, embedder, cfg.current_size, cfg.seed)
    else:
        current = monitor.corpus_sample(source, version, embedder, cfg.current_size, cfg.seed,
                                        config.source, config.clean)
    stats = monitor.drift_statistics(reference, current, cfg)
    return stats, len(reference.texts), len(current.texts)


@task(name="record-drift", cache_policy=NONE)
def record_drift(warehouse: Warehouse, report: DriftReport) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [{"check_id": report.check_id, "version_id": report.version_id, "checked_at": now,
             "kind": report.kind, "source": report.source, "n_reference": report.n_reference,
             "n_current": report.n_current, "metric": name, "value": float(value),
             "alarm": report.alarm, "drifted": report.drifted}
            for name, value in report.statistics.items()]
    with open_writer(warehouse, lock=False) as writer:
        writer.record_drift(rows)
    create_table_artifact(key=artifact_key(warehouse, "drift"),
                          table=[{"metric": k, "value": v} for k, v in report.statistics.items()],
                          description=f"Drift check {report.check_id} ({report.kind}: "
                                      f"{report.source}) vs version {report.version_id}")
    verdict = "**drift detected**" if report.drifted else "no drift"
    create_markdown_artifact(
        key=artifact_key(warehouse, "drift-summary"),
        markdown=f"# Drift check: {verdict}\n\n{report.kind} `{report.source}` "
                 f"({report.n_current} samples) vs version {report.version_id} "
                 f"({report.n_reference} samples): MMD p = "
                 f"{report.statistics['mmd_p_value']:.4f}, classifier AUC = "
                 f"{report.statistics['classifier_auc']:.3f}.")


@flow(name="monitor-drift")
def monitor_drift(config: EmbedpipeConfig, source: str,
                  kind: Literal["corpus", "queries"] = "corpus",
                  retrain_on_drift: bool = False) -> DriftReport:
    """Check `source` (a corpus batch or a query log) for drift against the active version."""
    warehouse = Warehouse(config.warehouse.path, config.warehouse.catalog)
    version = warehouse.version()
    stats, n_ref, n_cur = sample_and_compare(warehouse, version, kind, Path(source), config)
    alarm = drift.alarm(stats, config.drift)
    history = warehouse.recent_alarms(version.version_id, kind, config.drift.window - 1)
    report = DriftReport(check_id=uuid.uuid4().hex[:12], version_id=version.version_id,
                         kind=kind, source=str(source), n_reference=n_ref, n_current=n_cur,
                         statistics=stats, alarm=alarm,
                         drifted=drift.decide(alarm, history, config.drift))
    record_drift(warehouse, report)
    if report.drifted:
        emit_event(event=DRIFT_EVENT, resource=warehouse_resource(warehouse),
                   payload={"warehouse": str(warehouse.path), "version_id": version.version_id,
                            "kind": kind, "source": str(source), "check_id": report.check_id,
                            "statistics": stats})
        if retrain_on_drift:
            from flows.retrain import retrain

            outcome = retrain(config, source if kind == "corpus" else None)
            report = report.model_copy(update={"retrain": outcome.model_dump()})
    return report
