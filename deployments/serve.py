"""Serve embedpipe's deployments: `python -m deployments.serve` (what `embedpipe serve` runs).

- ingest   (ingest-corpus/ingest): cron, nightly by default
- monitor  (monitor-drift/monitor): cron, hourly by default
- retrain  (retrain/retrain): triggered by `embedpipe.drift.detected` from this warehouse
- evaluate (evaluate-version/evaluate): on demand
- gc       (gc-warehouse/gc): cron, nightly by default: the warehouse stops growing
Every run starts at niceness `nice` (10): batch work yields the CPU to the dashboard and searches.
Deployment parameters carry no config: each run reads embedpipe.toml and the environment of
the serving process when it starts (so secrets such as a catalog password never enter the
Prefect database or UI, and a changed config applies to the next run). The only setting they
carry is the warehouse path, as an override; `embedpipe trigger NAME --param config.S.K=V` adds
more.
"""

from __future__ import annotations

import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

from prefect import serve
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.schedules import Cron

from deployments.settings import DeploymentSettings, checked_source, load_settings
from flows.config import EmbedpipeConfig, load_config
from flows.evaluate import evaluate_version
from flows.gc import gc_warehouse
from flows.ingest import ingest_flow_for
from flows.monitor import DRIFT_EVENT, monitor_drift, warehouse_resource
from flows.retrain import retrain
from warehouse.store import Warehouse

# The retrain source is the drifted corpus batch; a query-log drift retrains on the lake's corpus.
SERVED_LOCK_WAIT = 1800.0  # seconds
RETRAIN_SOURCE = ("{% if event.payload.kind == 'corpus' %}{{ event.payload.source }}"
                  "{% endif %}")


def _cron(expression: str | None, timezone: str) -> list[Any]:
    return [Cron(expression, timezone=timezone)] if expression else []


def build_deployments(settings: DeploymentSettings, config: EmbedpipeConfig,
                      base: Path | None = None) -> list[Any]:
    """The five deployments. A schedule whose source does not exist is registered paused, and
    one line on stderr says so (a missing source would fail every run, unseen)."""
    base = base or Path.cwd()
    ingest_source, ingest_missing = checked_source("ingest", settings.ingest_source, base)
    monitor_source, monitor_missing = checked_source("monitor", settings.monitor_source, base)
    for problem in (ingest_missing, monitor_missing):
        if problem:
            print(f"warning: {problem}", file=sys.stderr, flush=True)
    # Not a secret, and what `trigger --wait` reads to report the run's outcome.
    where = {"warehouse.path": str(config.warehouse.path)}
    # A scheduled writer that finds another at work (a triggered ingest, a retrain) queues
    # behind it rather than failing beside it.
    writes = {**where, "warehouse.lock_wait_seconds": SERVED_LOCK_WAIT}
    watching = {**where, "drift.alarms_required": settings.monitor_alarms_required,
                "drift.window": settings.monitor_window}
    resource = warehouse_resource(Warehouse(config.warehouse.path))
    drift_trigger = DeploymentEventTrigger(
        name="retrain-on-drift", expect={DRIFT_EVENT},
        match={"prefect.resource.id": resource["prefect.resource.id"]},
        parameters={"config": None, "overrides": where, "source": RETRAIN_SOURCE})
    return [
        ingest_flow_for(config).to_deployment(
            name="ingest", schedules=_cron(settings.ingest_cron, settings.timezone),
            paused=ingest_missing is not None,
            parameters={"source": ingest_source, "config": None, "overrides": writes},
            description="Ingest the corpus into a new version (nightly)."),
        monitor_drift.to_deployment(
            name="monitor", schedules=_cron(settings.monitor_cron, settings.timezone),
            paused=monitor_missing is not None,
            parameters={"config": None, "overrides": watching, "source": monitor_source,
                        "kind": settings.monitor_kind, "skip_before_first_version": True},
            description="Check new data for drift against the active version (hourly)."),
        retrain.to_deployment(
            name="retrain", triggers=[drift_trigger],
            parameters={"config": None, "overrides": where},
            description="Retrain on the active corpus plus the drifted batch; promoted only "
                        "through the quality gate."),
        evaluate_version.to_deployment(
            name="evaluate", parameters={"config": None, "overrides": where},
            description="Score a version on demand."),
        gc_warehouse.to_deployment(
            name="gc", schedules=_cron(settings.gc_cron, settings.timezone),
            parameters={"config": None, "overrides": writes, "keep": settings.gc_keep},
            description="Expire versions beyond the newest `keep`; delete their files, "
                        "indexes, fine-tuned models and exports (nightly)."),
    ]


def lower_priority(nice: int) -> int:
    """Run this process, and so every flow run it starts, at niceness `nice` at least.

    Linux keeps a niceness per thread, and a thread or child inherits its creator's: every
    thread there is now (imports start some) is lowered, and later ones inherit it.
    """
    now = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > now:
        tasks = Path("/proc/self/task")
        for tid in [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]:
            with suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.setpriority(os.PRIO_PROCESS, tid, nice)
    return max(now, nice)


def main() -> None:
    settings = load_settings()
    lower_priority(settings.nice)
    serve(*build_deployments(settings, load_config()))


if __name__ == "__main__":
    main()
