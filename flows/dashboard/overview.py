"""The overview page: is everything all right, and if not, what is not?

Input: the `Dashboard` (its warehouse, config and links). Output: a dict with one section per
concern, each with a chip (green / amber / red / grey) and the numbers behind it: the active
version, the last ingest run, the last drift check (every statistic against its threshold and
the k-of-n alarm state), the active index, the newest version's gate verdict, the recent runs.
The JSON endpoint returns this dict; the page renders it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flows.dashboard.context import Chip, Dashboard, age_seconds, now, run_row, worst
from warehouse import history
from warehouse.store import Version

RECENT_RUNS = 12
WINDOW = re.compile(r"(\d+) of the last (\d+)")
# The order statistics are shown in; the rule's own first. Unknown ones follow, by name.
STATISTICS = ("mmd_p_value", "classifier_auc", "mmd2", "classifier_p_value",
              "centroid_cosine_distance", "drifted_dimensions_share", "token_length_ks",
              "token_length_p_value", "unknown_rate_reference", "unknown_rate_current",
              "new_vocabulary_share")
INGEST_OK = ("published", "unchanged")


def statistic_rank(name: str) -> tuple[int, str]:
    return (STATISTICS.index(name) if name in STATISTICS else len(STATISTICS), name)


def alarms_below(statistic: str) -> bool:
    """Does `statistic` alarm below its threshold? p-values do; AUCs and distances alarm above."""
    return statistic.endswith("p_value")


def past_threshold(statistic: str, value: float | None, threshold: float | None) -> bool | None:
    """Is `value` on the alarming side of `threshold` (None: no threshold)?

    >>> past_threshold("mmd_p_value", 0.002, 0.01), past_threshold("classifier_auc", 0.5, 0.55)
    (True, False)
    """
    if threshold is None or value is None:
        return None
    return value < threshold if alarms_below(statistic) else value > threshold


def overview(dash: Dashboard) -> dict[str, Any]:
    """Every section of the overview, read in one go."""
    wh, at = dash.warehouse, now()
    versions = wh.versions()
    active = next((v for v in reversed(versions) if v.status == "active"), None)
    runs = history.recent_runs(wh, RECENT_RUNS)
    ingest = next((r for r in runs if r["flow"] == "ingest"), None) or \
        history.last_run(wh, "ingest")
    sections = {"active": active_section(active, at),
                "last_ingest": ingest_section(ingest, dash, at),
                "drift": last_check(dash, at), "index": index_section(active),
                "candidate": candidate_section(versions[-1] if versions else None)}
    chips: list[Chip] = [s["chip"] if s else "grey" for s in sections.values()]
    if active is None:
        chips.append("red")
    return {"warehouse": wh.where, "generated_at": at, "status": worst(chips), **sections,
            "runs": [run_row(r, dash.links, at) for r in runs]}


def active_section(v: Version | None, at: datetime) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"version_id": v.version_id, "created_at": v.created_at,
            "age_seconds": age_seconds(v.created_at, at), "model_name": v.model_name,
            "model_fingerprint": v.model_fingerprint, "model_backend": v.model_backend,
            "documents": v.n_documents, "chunks": v.n_chunks, "pinned": bool(v.pinned),
            "chip": "green"}


def ingest_section(run: dict[str, Any] | None, dash: Dashboard, at: datetime
                   ) -> dict[str, Any] | None:
    """The last ingest run: its outcome and what became of its input rows."""
    if run is None:
        return None
    s = run.get("summary") or {}
    exact, near = s.get("exact_duplicates"), s.get("near_duplicates")
    return {**run_row(run, dash.links, at),
            "input_documents": s.get("input_documents"), "kept": s.get("kept"),
            "exact_duplicates": exact, "near_duplicates": near,
            "duplicates": None if exact is None else exact + (near or 0),
            "quarantined": s.get("quarantined"),
            "quarantined_by_reason": s.get("quarantined_by_reason") or {},
            "chunks": s.get("chunks"), "vectors_embedded": s.get("vectors_embedded"),
            "vectors_reused": s.get("vectors_reused"),
            "stage_seconds": s.get("stage_seconds") or {}}


def last_check(dash: Dashboard, at: datetime) -> dict[str, Any] | None:
    """The newest drift check: verdict, each statistic against its threshold, k-of-n state."""
    wh = dash.warehouse
    rows = history.drift_history(wh, checks=1)
    if not rows:
        return None
    first = rows[0]
    rows.sort(key=lambda r: statistic_rank(r["metric"]))
    rule = first.get("rule") or ""
    found = WINDOW.search(rule)
    required, window = (int(found[1]), int(found[2])) if found else \
        (dash.config.drift.alarms_required, dash.config.drift.window)
    alarms = history.recent_alarms(wh, first["version_id"], first["kind"], window)
    alarm, drifted = any(r["alarm"] for r in rows), any(r["drifted"] for r in rows)
    run_id = history.check_runs(wh).get(first["check_id"])
    return {
        "check_id": first["check_id"], "checked_at": first["checked_at"],
        "age_seconds": age_seconds(first["checked_at"], at), "version_id": first["version_id"],
        "kind": first["kind"], "source": first["source"],
        "n_reference": first["n_reference"], "n_current": first["n_current"],
        "alarm": alarm, "drifted": drifted,
        "verdict": "drift" if drifted else "alarm" if alarm else "no drift",
        "chip": "red" if drifted else "amber" if alarm else "green",
        "rule": rule, "rule_name": rule.split(",")[0], "alarms_required": required,
        "window": window, "alarms_in_window": sum(alarms), "checks_in_window": len(alarms),
        "statistics": [{"metric": r["metric"], "value": r["value"], "threshold": r["threshold"],
                        "alarms_below": alarms_below(r["metric"]),
                        "past": past_threshold(r["metric"], r["value"], r["threshold"])}
                       for r in rows],
        "flow_run_id": run_id, "prefect_url": dash.links.flow_run(run_id)}


# What the index's recall was measured on, in words (tasks/index/probes.py).
QUERY_KINDS = {"configured": "the configured labelled queries", "log": "logged searches",
               "probes": "query-like probes from its chunks",
               "chunks": "its own chunk vectors (optimistic)"}


def index_section(v: Version | None) -> dict[str, Any] | None:
    """The active version's index: ef and recall against its target (on held-out queries too)."""
    if v is None or not v.index_meta:
        return None
    meta = v.index_meta
    target = meta.get("target_recall")
    misses = [meta.get(k) is not None and target is not None and meta[k] < target
              for k in ("recall", "heldout_recall", "log_recall")]
    return {"version_id": v.version_id, "backend": meta.get("backend"), "ef": meta.get("ef"),
            "recall_k": meta.get("recall_k"), "recall": meta.get("recall"),
            "heldout_recall": meta.get("heldout_recall"), "target_recall": target,
            "queries": QUERY_KINDS.get(meta.get("queries") or "chunks", meta.get("queries")),
            "log_recall": meta.get("log_recall"), "log_queries": meta.get("log_queries") or 0,
            "retuned_from": meta.get("retuned_from"),
            "distinct": meta.get("distinct"), "count": meta.get("count"),
            "chip": "red" if any(misses) else "green"}


def candidate_section(v: Version | None) -> dict[str, Any] | None:
    """The newest version and what the quality gate said about it."""
    if v is None:
        return None
    passed = v.gate.get("passed")
    chip: Chip = "green" if passed else "amber" if v.status in ("rejected", "candidate") \
        else "grey"
    return {"version_id": v.version_id, "status": v.status, "passed": passed,
            "compared": v.gate.get("compared"), "reason": v.gate.get("reason"),
            "headline": v.gate.get("headline"), "failures": v.gate.get("failures") or [],
            "chip": chip}
