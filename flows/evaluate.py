"""The evaluate flow: score one version on health and any labelled sets, record and publish it."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.config import EmbedpipeConfig
from flows.search import version_embedder
from tasks import steps
from warehouse.lock import writer_lock
from warehouse.store import Warehouse


@flow(name="evaluate-version")
def evaluate_version(config: EmbedpipeConfig, version_id: int | None = None
                     ) -> list[dict[str, Any]]:
    """Metrics of `version_id` (default: the active version), written to `quality_metrics`."""
    warehouse = Warehouse(config.warehouse.path, config.warehouse.catalog)
    version = warehouse.version(version_id)
    embedder = version_embedder(version)
    with writer_lock(warehouse.path, config.warehouse.lock_wait_seconds):
        return steps.evaluate_version(warehouse, version, embedder, config.evaluate,
                                      config.embed.batch_size)
