"""What every page reads from, and the row shapes pages share.

`Dashboard` holds the warehouse (pooled read-only readers), the config (gate tolerances, drift
defaults), the Prefect run links and the searchers. `version_row` and `run_row` turn a
`Version` and a `runs` row into the plain dicts pages and JSON endpoints show; `Chip` is the
green / amber / red / grey status of a thing at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from flows.config import EmbedpipeConfig
from flows.dashboard.links import PrefectLinks
from flows.dashboard.searching import Searchers
from warehouse.history import PooledWarehouse
from warehouse.store import Version

Chip = Literal["green", "amber", "red", "grey"]
SEVERITY: dict[str, int] = {"grey": 0, "green": 1, "amber": 2, "red": 3}
VERSION_CHIPS: dict[str, Chip] = {"active": "green", "candidate": "amber", "rejected": "red",
                                  "retired": "grey", "expired": "grey"}


@dataclass
class Dashboard:
    """The app's state: one warehouse, read-only."""

    warehouse: PooledWarehouse
    config: EmbedpipeConfig
    links: PrefectLinks
    searchers: Searchers
    # Versions are immutable, so the diff between two of them never changes: computed on the
    # first view of a version page (~0.2 s on full SciFact), then served from here.
    diffs: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)


def now() -> datetime:
    """The current time as the lake stores times: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def age_seconds(moment: datetime | None, at: datetime) -> float | None:
    return None if moment is None else round((at - moment).total_seconds(), 3)


def worst(chips: list[Chip]) -> Chip:
    """The most severe of `chips` (grey, "nothing to say", only when all are grey)."""
    return max(chips, key=lambda c: SEVERITY[c], default="grey")


def version_row(v: Version, links: PrefectLinks, at: datetime) -> dict[str, Any]:
    """One version as pages show it: status, counts, model, parent, gate verdict, run link."""
    run_id = v.summary.get("flow_run_id")
    return {
        "version_id": v.version_id, "status": v.status, "chip": VERSION_CHIPS.get(v.status,
                                                                                  "grey"),
        "pinned": bool(v.pinned), "parent_id": v.parent_id, "created_at": v.created_at,
        "age_seconds": age_seconds(v.created_at, at), "documents": v.n_documents,
        "chunks": v.n_chunks, "embedded": v.n_embedded, "reused": v.n_reused,
        "quarantined": v.n_quarantined, "model_name": v.model_name,
        "model_fingerprint": v.model_fingerprint, "model_backend": v.model_backend,
        "gate_passed": v.gate.get("passed"), "gate_reason": v.gate.get("reason"),
        "gate_headline": v.gate.get("headline"), "message": v.message,
        "flow_run_id": run_id, "prefect_url": links.flow_run(run_id),
    }


RUN_CHIPS: dict[str, Chip] = {"published": "green", "unchanged": "green", "no drift": "green",
                              "evaluated": "green", "rejected": "amber", "alarm": "amber",
                              "drift": "red", "failed": "red"}


def run_row(run: dict[str, Any], links: PrefectLinks, at: datetime) -> dict[str, Any]:
    """One flow run (a `runs` row, summary left out) with its age, chip and Prefect link."""
    finished = run.get("finished_at")
    started = run.get("started_at")
    return {
        "run_id": run["run_id"], "flow": run["flow"], "status": run["status"],
        "chip": RUN_CHIPS.get(str(run["status"]), "grey"), "message": run.get("message"),
        "started_at": started, "finished_at": finished,
        "duration_seconds": age_seconds(started, finished) if finished and started else None,
        "age_seconds": age_seconds(finished or started, at), "version_id": run["version_id"],
        "source": run.get("source"), "flow_run_id": run.get("flow_run_id"),
        "prefect_url": links.flow_run(run.get("flow_run_id")),
    }
