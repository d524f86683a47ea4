"""The versions pages: every version at a glance, and one version in full.

Input: the `Dashboard` and (for one version) its id. Output: dicts of plain values. The list:
status, pinned, counts, model, parent and gate verdict of every version. One version: the same
plus its quality metrics beside its parent's, its index, the gate's failures, its run summary
(stage seconds, where the input rows went), quarantine by reason with example rows, its diff
against the parent (`warehouse.maintenance.diff_versions`) and the runs that touched it. The
card: the Markdown `embedpipe card V` prints (`tasks/quality/card.py`), rendered to HTML with raw
HTML off, so corpus text in it stays text.
"""

from __future__ import annotations

from typing import Any

from markdown_it import MarkdownIt

from flows.dashboard.context import Dashboard, now, run_row, version_row
from tasks.quality.card import card
from warehouse import history
from warehouse.errors import VersionExpired
from warehouse.maintenance import diff_versions
from warehouse.store import Version

DIFF_IDS = 25  # ids listed per kind of change; the counts are complete
PUBLISHING_FLOWS = ("ingest", "retrain")


def versions_page(dash: Dashboard) -> dict[str, Any]:
    at = now()
    rows = [version_row(v, dash.links, at) for v in reversed(dash.warehouse.versions())]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {"versions": rows, "by_status": counts,
            "pinned": sum(1 for r in rows if r["pinned"])}


def version_page(dash: Dashboard, version_id: int) -> dict[str, Any]:
    """Everything about one version.

    Raises:
        VersionNotFound: no such version.
    """
    wh, at = dash.warehouse, now()
    v = wh.version(version_id)
    runs = history.runs_of_version(wh, version_id)
    published = [r for r in runs if r["flow"] in PUBLISHING_FLOWS and r["summary"]]
    # The run's own summary is final (gate included); the version's is written before the gate.
    summary = published[-1]["summary"] if published else v.summary
    by_reason, examples = history.quarantine(wh, version_id)
    return {
        "version": version_row(v, dash.links, at), "chunker_config": v.chunker_config,
        "corpus_fingerprint": v.corpus_fingerprint, "index": v.index_meta,
        "gate": {"passed": v.gate.get("passed"), "compared": v.gate.get("compared"),
                 "reason": v.gate.get("reason"), "headline": v.gate.get("headline"),
                 "failures": v.gate.get("failures") or []},
        "metrics": metrics_beside_parent(dash, v),
        "summary": {k: summary.get(k) for k in (
            "source", "status", "input_documents", "kept", "exact_duplicates",
            "near_duplicates", "quarantined", "documents_added", "documents_changed",
            "documents_deleted", "documents_unchanged", "chunks", "tokens",
            "vectors_embedded", "vectors_reused")},
        "stage_seconds": summary.get("stage_seconds") or {},
        "quarantine": {"by_reason": by_reason, "total": sum(by_reason.values()),
                       "examples": examples},
        "diff": parent_diff(dash, v),
        "runs": [run_row(r, dash.links, at) for r in reversed(runs)],
    }


def metrics_beside_parent(dash: Dashboard, v: Version) -> list[dict[str, Any]]:
    """Each metric of `v` with its parent's value, the change, and whether it is better."""
    rows = dash.warehouse.metrics(v.version_id)
    parent = {(r["evaluator"], r["metric"]): r["value"]
              for r in (dash.warehouse.metrics(v.parent_id) if v.parent_id else [])}
    out = []
    for r in rows:
        before = parent.get((r["evaluator"], r["metric"]))
        delta = None if before is None or r["value"] is None else r["value"] - before
        direction = r["greater_is_better"]
        better = None if not delta or direction is None else (delta > 0) == direction
        out.append({"evaluator": r["evaluator"], "metric": r["metric"], "value": r["value"],
                    "parent": before, "delta": delta, "better": better,
                    "greater_is_better": direction, "is_primary": bool(r["is_primary"])})
    out.sort(key=lambda m: (m["evaluator"] == "health", m["evaluator"], m["metric"]))
    return out


def parent_diff(dash: Dashboard, v: Version) -> dict[str, Any] | None:
    """Documents and chunks added, changed and removed since the parent (None: no parent)."""
    if v.parent_id is None:
        return None
    if v.status == "expired":
        return {"parent_id": v.parent_id, "unavailable": f"version {v.version_id} was expired"}
    key = (v.parent_id, v.version_id)
    if key not in dash.diffs:
        try:
            dash.diffs[key] = diff_versions(dash.warehouse, *key).as_dict()
        except VersionExpired:
            return {"parent_id": v.parent_id,
                    "unavailable": f"parent version {v.parent_id} was expired by `embedpipe gc`"}
    diff = dash.diffs[key]
    return {"parent_id": v.parent_id, "model_changed": diff["model_changed"],
            "counts": diff["counts"],
            "documents": {k: ids[:DIFF_IDS] for k, ids in diff["documents"].items()},
            "chunks": {k: ids[:DIFF_IDS] for k, ids in diff["chunks"].items()}}


def card_page(dash: Dashboard, version_id: int) -> dict[str, Any]:
    """The version's card, as Markdown (what `embedpipe card V` prints) and as HTML.

    Raises:
        VersionNotFound: no such version.
    """
    v = dash.warehouse.version(version_id)
    markdown = card(dash.warehouse, v)
    rendered = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    return {"version": version_row(v, dash.links, now()), "markdown": markdown,
            "_html": rendered}
