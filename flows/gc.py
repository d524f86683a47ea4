"""The gc flow: what a served warehouse runs on a schedule so that it stops growing.

The same as `embedpipe gc` (see `flows/maintenance.py`), as a Prefect run with a `runs` row.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.config import EmbedpipeConfig, resolve
from flows.maintenance import collect, headline
from flows.outcome import finish
from tasks.steps import report


@flow(name="gc-warehouse")
def gc_warehouse(config: EmbedpipeConfig | None = None, keep: int = 5,
                 overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Expire old versions and delete what no kept version needs (see the module)."""
    config = resolve(config, overrides)
    started = report.now()
    removed = collect(config, keep, wait=config.warehouse.lock_wait_seconds)
    message = headline(removed)
    report.record_run(config.warehouse.open(), "gc", started, "collected", message, None, None,
                      removed)
    report.log(message)
    return finish(removed, "Collected", message)
