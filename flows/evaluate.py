"""The evaluate flow: score one version on health and any labelled sets, record and publish it."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.config import EmbedpipeConfig, resolve
from flows.outcome import finish
from tasks.embed.embedding import version_embedder
from tasks.index.storage import open_version_index
from tasks.quality.scoring import metric_rows
from tasks.steps import evaluate as steps
from tasks.steps import report
from warehouse.lock import warehouse_lock


@flow(name="evaluate-version")
def evaluate_version(config: EmbedpipeConfig | None = None, version_id: int | None = None,
                     overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Metrics of `version_id` (default: the active version), written to `quality_metrics`.

    `config` None (served runs): read now; `overrides` ("section.key": value) on top.

    Metrics computed earlier and not recomputed now (e.g. neighbour overlap with the version
    that was active when this one was a candidate) are kept.
    """
    config = resolve(config, overrides)
    warehouse = config.warehouse.open()
    version = warehouse.readable(version_id)
    embedder = version_embedder(version)
    started = report.now()
    with warehouse_lock(warehouse, config.warehouse.lock_wait_seconds):
        indexed = open_version_index(warehouse, version, with_vectors=True)
        evaluations = steps.evaluate_version(warehouse, version, indexed, embedder,
                                             config.evaluate, config.embed.batch_size)
        rows = metric_rows(evaluations)
        message = f"evaluated v{version.version_id}: " + ", ".join(
            f"{e.evaluator} {e.primary_metric} {e.metrics[e.primary_metric]:.4f}"
            for e in evaluations)
        report.record_run(warehouse, "evaluate", started, "evaluated", message,
                          version.version_id, None, {"metrics": rows})
    report.log(message)
    return finish(rows, "Evaluated", message)
