"""The monitor flow: compare new data with the active version, record, alarm, maybe retrain.

A check embeds a sample of a corpus batch (cleaned and chunked as the active version was) or of
a query log, compares it with a seeded reference sample of the active version, writes one
`drift_metrics` row per statistic, publishes a Prefect table and markdown artifact, and on drift
emits `embedpipe.drift.detected` (resource: the warehouse) with the statistics as payload.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from prefect import flow
from prefect.events import emit_event

from flows.config import EmbedpipeConfig, resolve
from flows.outcome import drift_outcome, finish
from tasks.monitor.drift import DriftReport
from tasks.prep import load
from tasks.steps import monitor as steps
from tasks.steps import report as report_steps
from warehouse.errors import NoActiveVersion
from warehouse.faults import checkpoint
from warehouse.store import Warehouse

DRIFT_EVENT = "embedpipe.drift.detected"


def warehouse_resource(warehouse: Warehouse) -> dict[str, str]:
    """The Prefect event resource naming a warehouse (what triggers match on)."""
    name = warehouse.location.url  # the resolved directory, or s3://bucket/prefix
    digest = hashlib.sha1(name.encode()).hexdigest()[:12]
    return {"prefect.resource.id": f"embedpipe.warehouse.{digest}",
            "prefect.resource.name": name}


def _has_active(warehouse: Warehouse) -> bool:
    try:
        return warehouse.exists() and bool(warehouse.version())
    except NoActiveVersion:
        return False


@flow(name="monitor-drift")
def monitor_drift(config: EmbedpipeConfig | None, source: str,
                  kind: Literal["corpus", "queries"] = "corpus",
                  retrain_on_drift: bool = False,
                  overrides: dict[str, Any] | None = None,
                  reference_queries: str | None = None,
                  skip_before_first_version: bool = False) -> DriftReport:
    """Check `source` (a corpus batch or a query log) for drift.

    A corpus batch is compared with the active version's chunks; a query log with a reference
    query log (the first one checked, or `reference_queries`). `config` None (served runs):
    read now; `overrides` ("section.key": value) on top. `skip_before_first_version` (served
    runs): a warehouse with no active version yet ends the run `Skipped`, not Failed: the hourly
    check of a fresh deployment runs before its first nightly ingest.
    """
    config = resolve(config, overrides)
    warehouse = config.warehouse.open()
    if skip_before_first_version and not _has_active(warehouse):
        message = (f"skipped: {warehouse.where} has no active version yet (the first ingest "
                   "makes one)")
        report_steps.log(message)
        # Only served runs skip, and what they return is the state, which says why.
        return finish(None, "Skipped", message)  # type: ignore[return-value]
    version = warehouse.readable()
    checkpoint("monitor")
    started = report_steps.now()
    batch = steps.read_batch(kind, Path(source), config.source, config.clean, warehouse)
    reference = load.read_query_log(Path(reference_queries)) if reference_queries else None
    report, current = steps.sample_and_compare(warehouse, version, kind, Path(source), batch,
                                               config.drift, config.embed.batch_size, reference)
    if report.note:  # nothing was compared: no drift record, no map points
        name, message = "Reference set", report.note
        report_steps.record_run(warehouse, "monitor", started, "reference", message,
                                version.version_id, str(source), report.model_dump())
        return finish(report, name, message)
    steps.record_drift(warehouse, report, config.drift)
    steps.map_drift_sample(warehouse, version, report, current)
    steps.retune_on_log(warehouse, version, config.index)  # ef follows the logged searches
    if report.drifted:
        emit_event(event=DRIFT_EVENT, resource=warehouse_resource(warehouse),
                   payload={"warehouse": warehouse.where, "version_id": version.version_id,
                            "kind": kind, "source": str(source), "check_id": report.check_id,
                            "statistics": report.statistics})
        if retrain_on_drift:
            from flows.retrain import retrain

            outcome = retrain(config, source if kind == "corpus" else None)
            report = report.model_copy(update={"retrain": outcome.model_dump()})
    name, message = drift_outcome(report)
    report_steps.record_run(warehouse, "monitor", started, name.lower(), message,
                            version.version_id, str(source), report.model_dump())
    report_steps.log(message)
    return finish(report, name, message)
