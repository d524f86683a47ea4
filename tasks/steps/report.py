"""Steps that tell a run's outcome where people look: the lake's `runs` table, artifacts, logs.

A run's final state name and message (see `flows/outcome.py`) say what it did in the Prefect
UI; these steps leave the same outcome in the warehouse (for the dashboard and `/metrics`) and
as Prefect artifacts keyed per warehouse.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

from tasks.steps import log
from tasks.steps.evaluate import artifact_key

__all__ = ["log", "now", "publish_run_summary", "record_run"]
from warehouse.store import Warehouse
from warehouse.writer import open_writer


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@task(name="record-run", cache_policy=NONE)
def record_run(warehouse: Warehouse, flow: str, started: datetime, status: str, message: str,
               version_id: int | None, source: str | None, summary: dict[str, Any]) -> None:
    """One `runs` row: what a flow run did, published or not (also when it failed)."""
    run_id = str(flow_run.id) if flow_run.id else None
    row = {"run_id": run_id or f"{flow}-{started.isoformat()}", "flow": flow,
           "started_at": started, "finished_at": now(), "status": status, "message": message,
           "version_id": version_id, "source": source, "flow_run_id": run_id,
           "summary": json.dumps(summary, default=str)}
    with open_writer(warehouse, lock=False) as writer:
        writer.record_run(row)


@task(name="publish-run-summary", cache_policy=NONE)
def publish_run_summary(warehouse: Warehouse, title: str, rows: list[tuple[str, Any]]) -> None:
    """The run summary as a table artifact and a markdown artifact (keyed per warehouse)."""
    create_table_artifact(key=artifact_key(warehouse, "run"),
                          table=[{"what": k, "value": str(v)} for k, v in rows],
                          description=title)
    lines = [f"# {title}", "", "| what | value |", "|---|---|",
             *(f"| {k} | {_cell(v)} |" for k, v in rows)]
    create_markdown_artifact(key=artifact_key(warehouse, "run-summary"),
                             markdown="\n".join(lines), description=title)


@task(name="write-card", cache_policy=NONE)
def write_card(warehouse: Warehouse, version_id: int) -> str:
    """The version's card (`tasks/quality/card.py`) in `cards/<version>.md` and as an artifact."""
    from tasks.quality.card import card

    markdown = card(warehouse, warehouse.version(version_id))
    path = warehouse.path / "cards" / f"{version_id}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown)
    warehouse.location.upload(f"cards/{version_id}.md")
    create_markdown_artifact(key=artifact_key(warehouse, "card"), markdown=markdown,
                             description=f"Card of version {version_id}")
    return str(path)


def _cell(value: Any) -> str:
    """A value for a markdown table cell: no pipes or newlines from data."""
    return str(value).replace("|", "\\|").replace("\n", " ")
