"""The quality and drift pages: numbers over versions and over time.

Input: the `Dashboard`. Output: dicts of series. Quality: one series per (evaluator, metric)
across versions, each point with the version's status, the active version's value and the band
the gate tolerates below (or above) it (`gate.default_tolerance` / `gate.tolerances`). Drift:
the newest checks (verdict, rule, sample sizes, Prefect link) and one series per statistic over
time with its threshold and each point's alarm.
"""

from __future__ import annotations

from typing import Any

from flows.dashboard.context import Dashboard, age_seconds, now
from flows.dashboard.overview import alarms_below, past_threshold, statistic_rank
from tasks.quality.gate import tolerance_for
from warehouse import history

MAX_CHECKS = 500  # checks drawn on the drift page (hourly checks: three weeks)


def quality_page(dash: Dashboard) -> dict[str, Any]:
    """Every metric across versions, the active version's value and the gate's band."""
    versions = {v.version_id: v for v in dash.warehouse.versions()}
    active = next((v.version_id for v in reversed(versions.values()) if v.status == "active"),
                  None)
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in history.all_metrics(dash.warehouse):
        if row["version_id"] in versions:
            series.setdefault((row["evaluator"], row["metric"]), []).append(row)
    metrics = []
    for (evaluator, metric), rows in series.items():
        direction = next((r["greater_is_better"] for r in rows
                          if r["greater_is_better"] is not None), None)
        tolerance = None if direction is None else tolerance_for(dash.config.gate, evaluator,
                                                                 metric)
        current = next((r["value"] for r in rows if r["version_id"] == active), None)
        band = None
        if tolerance is not None and current is not None:
            band = [current - tolerance, current] if direction else [current,
                                                                     current + tolerance]
        metrics.append({
            "evaluator": evaluator, "metric": metric, "greater_is_better": direction,
            "is_primary": any(r["is_primary"] for r in rows), "tolerance": tolerance,
            "active_value": current, "band": band,
            "points": [{"version_id": r["version_id"], "value": r["value"],
                        "status": versions[r["version_id"]].status} for r in rows]})
    # Labelled metrics before health, gated before informational, primary first.
    metrics.sort(key=lambda m: (m["evaluator"] == "health", m["greater_is_better"] is None,
                                not m["is_primary"], m["evaluator"], m["metric"]))
    return {"active_version": active, "default_tolerance": dash.config.gate.default_tolerance,
            "versions": [{"version_id": i, "status": v.status} for i, v in versions.items()],
            "metrics": metrics}


def drift_page(dash: Dashboard, max_checks: int = MAX_CHECKS) -> dict[str, Any]:
    """The newest checks, newest first, and each statistic's series over them, oldest first."""
    wh, at = dash.warehouse, now()
    rows = history.drift_history(wh, max_checks)
    runs = history.check_runs(wh)
    checks: dict[str, dict[str, Any]] = {}
    series: dict[str, dict[str, Any]] = {}
    for r in rows:
        check = checks.setdefault(r["check_id"], {
            "check_id": r["check_id"], "checked_at": r["checked_at"],
            "age_seconds": age_seconds(r["checked_at"], at), "version_id": r["version_id"],
            "kind": r["kind"], "source": r["source"], "n_reference": r["n_reference"],
            "n_current": r["n_current"], "alarm": False, "drifted": False, "rule": r["rule"],
            "flow_run_id": runs.get(r["check_id"]),
            "prefect_url": dash.links.flow_run(runs.get(r["check_id"]))})
        check["alarm"] |= bool(r["alarm"])
        check["drifted"] |= bool(r["drifted"])
        stat = series.setdefault(r["metric"], {"metric": r["metric"], "threshold": None,
                                               "alarms_below": alarms_below(r["metric"]),
                                               "points": []})
        if r["threshold"] is not None:
            stat["threshold"] = r["threshold"]  # rows are oldest first: the newest one wins
        stat["points"].append({"check_id": r["check_id"], "checked_at": r["checked_at"],
                               "value": r["value"], "threshold": r["threshold"],
                               "alarm": bool(r["alarm"]), "drifted": bool(r["drifted"]),
                               "past": past_threshold(r["metric"], r["value"], r["threshold"])})
    for check in checks.values():
        check["verdict"] = "drift" if check["drifted"] else "alarm" if check["alarm"] \
            else "no drift"
        check["chip"] = "red" if check["drifted"] else "amber" if check["alarm"] else "green"
    return {"total_checks": history.drift_check_count(wh), "shown_checks": len(checks),
            "checks": list(reversed(checks.values())),
            "statistics": sorted(series.values(), key=lambda s: statistic_rank(s["metric"]))}
