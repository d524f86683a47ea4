"""The quality gate: may a candidate version become the active one?

Input: the candidate's metric rows (in memory, straight from its evaluation), the active
version's rows (None for a first version), the candidate's index report and a `GateConfig`.
Output: a `GateDecision` naming every failure. Two kinds of checks:
- absolute, on every version (a first one too): no NaN or zero vectors, not mostly identical
  vectors, and an index that reached its recall target (on the tuning queries and on held-out
  ones). A version that fails these is broken whatever the active one scores.
- relative, against the active version: every shared metric that declares a direction may not
  regress beyond its tolerance; with `require_improvement` (retrained models) every shared
  labelled primary metric must strictly improve. Label-free views (the mined set, held-out
  logged searches: evaluations that recorded a paired gain interval) are judged by their
  intervals instead: none may be wholly below zero, and a retrained model needs the gain pooled
  over all of them to clear zero (`POOLED`, `tasks/quality/logged.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MetricKey = tuple[str, str]  # (evaluator, metric)
# The evaluator (prefix) of the gain pooled over every label-free view
# (`tasks/quality/logged.py`): a fine-tune is promoted on it when no labelled set is configured.
POOLED = "label-free"
Rows = list[dict[str, Any]]  # quality_metrics rows: evaluator, metric, value, greater_is_better…


class GateConfig(BaseModel):
    """Allowed regression per metric, in the metric's own units, and the absolute floors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    # Retrained models must beat the active version on a labelled primary metric, not merely
    # stay within tolerance of it.
    require_improvement: bool = False
    default_tolerance: float = Field(0.005, ge=0)
    # Keys: "metric" or "evaluator:metric" (e.g. "ndcg@10", "retrieval:scifact/test:ndcg@10").
    tolerances: dict[str, float] = Field(default_factory=lambda: {
        "nan_vectors": 0.0, "zero_vectors": 0.0})
    # Share of distinct chunk texts whose vectors are identical to another's: a model that maps
    # different texts to one point is broken, however its other metrics compare.
    max_duplicate_share: float = Field(0.5, ge=0, le=1)
    # The largest association-bias effect size |d| (WEAT, `tasks/bias.py`) a version may show;
    # None: bias is reported, never gated.
    bias_bound: float | None = Field(None, gt=0)


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    compared: int
    failures: list[dict] = field(default_factory=list)
    # The labelled primary metrics both versions have (what the decision rests on).
    primary: list[dict] = field(default_factory=list)

    def reason(self) -> str:
        if self.passed:
            shown = "; ".join(f"{p['evaluator']} {p['metric']} {p['candidate']:.4f} vs active "
                              f"{p['active']:.4f}" + (f", gain {describe(p['interval'])}"
                                                      if "interval" in p else "")
                              for p in self.primary)
            return f"passed ({self.compared} metrics compared" + (f"; {shown})" if shown
                                                                     else ")")
        return "; ".join(f["note"] if "note" in f else _regression(f) for f in self.failures)

    def headline(self) -> str:
        """A short outcome for run names and dashboards, e.g. `ndcg@10 -0.012 beyond 0.005`."""
        unresolved = {(f["evaluator"], f["metric"]) for f in self.failures if "interval" in f
                      and f["interval"]["high"] >= 0}
        shown = [p for p in self.primary if "interval" in p]
        if any(p["evaluator"].split(":")[0] == POOLED for p in shown):  # views: `reason()`
            shown = [p for p in shown if p["evaluator"].split(":")[0] == POOLED]
        gains = "; ".join(f"{p['evaluator'].split(':')[0]} {p['metric']} "
                          f"{describe(p['interval'])}"
                          + (" not significant" if (p["evaluator"], p["metric"]) in unresolved
                             else "") for p in shown)
        if self.passed:
            return "passed" + (f": {gains}" if gains else "")
        first = self.failures[0]
        if "interval" in first and first["interval"]["high"] >= 0:
            return gains  # the gain that did not clear its noise
        if "note" in first:
            short = first.get("short", first["note"])
        else:
            short = (f"{first['metric']} {first['candidate'] - first['active']:+.3f} beyond "
                     f"{first['tolerance']:g}")
        return short + (f"; {gains}" if gains else "")  # the label-free gain, for the record


def _regression(f: dict) -> str:
    delta = f["candidate"] - f["active"]
    return (f"{f['evaluator']} {f['metric']}: {f['candidate']:.4f} vs active {f['active']:.4f} "
            f"({delta:+.4f}, tolerance {f['tolerance']:g})")


def tolerance_for(config: GateConfig, evaluator: str, metric: str) -> float:
    return config.tolerances.get(f"{evaluator}:{metric}",
                                 config.tolerances.get(metric, config.default_tolerance))


def metric_map(rows: Rows) -> dict[MetricKey, tuple[float, bool | None]]:
    return {(r["evaluator"], r["metric"]): (float(r["value"]), r["greater_is_better"])
            for r in rows}


def decide(candidate: dict[MetricKey, tuple[float, bool | None]],
           active: dict[MetricKey, tuple[float, bool | None]], config: GateConfig
           ) -> GateDecision:
    """Compare every shared, directed metric; a regression beyond tolerance fails the gate.

    >>> cand = {("retrieval:x", "ndcg@10"): (0.50, True), ("health", "anisotropy"): (0.9, None)}
    >>> act = {("retrieval:x", "ndcg@10"): (0.60, True), ("health", "anisotropy"): (0.1, None)}
    >>> d = decide(cand, act, GateConfig())
    >>> d.passed, d.compared, d.failures[0]["metric"]
    (False, 1, 'ndcg@10')
    """
    failures = []
    compared = 0
    for key in sorted(set(candidate) & set(active)):
        (new, higher_better), (old, _) = candidate[key], active[key]
        if higher_better is None:
            continue
        compared += 1
        tol = tolerance_for(config, *key)
        worse = new < old - tol if higher_better else new > old + tol
        if worse:
            failures.append({"evaluator": key[0], "metric": key[1], "candidate": new,
                             "active": old, "tolerance": tol,
                             "direction": "higher is better" if higher_better
                             else "lower is better"})
    return GateDecision(not failures or not config.enabled, compared, failures)


def broken(rows: Rows, index_report: dict[str, Any] | None, config: GateConfig) -> list[dict]:
    """Absolute failures of one version, whatever any other version scores."""
    health = {r["metric"]: float(r["value"]) for r in rows if r["evaluator"] == "health"}
    failures = []
    for metric, what in (("nan_vectors", "NaN"), ("zero_vectors", "all-zero")):
        if health.get(metric, 0) > 0:
            failures.append({"evaluator": "health", "metric": metric,
                             "short": f"{int(health[metric])} {what} vectors",
                             "note": f"{int(health[metric])} {what} vectors: the model or its "
                                     "input is broken"})
    vectors = health.get("vectors", 0)
    share = health.get("duplicate_vectors", 0) / vectors if vectors else 0.0
    if share > config.max_duplicate_share:
        failures.append({"evaluator": "health", "metric": "duplicate_vectors",
                         "short": f"{share:.0%} identical vectors",
                         "note": f"{share:.0%} of distinct chunk texts share a vector with "
                                 "another (gate.max_duplicate_share "
                                 f"{config.max_duplicate_share:g}): the model collapses "
                                 "different texts"})
    if config.bias_bound is not None:
        for r in rows:
            if r["evaluator"] == "bias:weat" and r["metric"].endswith("_effect_abs") \
                    and float(r["value"]) > config.bias_bound:
                test = r["metric"].removesuffix("_effect_abs")
                failures.append({"evaluator": r["evaluator"], "metric": r["metric"],
                                 "short": f"bias {test} |d| {float(r['value']):.2f}",
                                 "note": f"association bias {test}: |d| {float(r['value']):.2f}"
                                         f" over gate.bias_bound {config.bias_bound:g}"})
    if index_report:
        target = index_report.get("target_recall", 0)
        slack = heldout_slack(index_report)
        for key, which in (("recall", "tuning"), ("heldout_recall", "held-out")):
            value = index_report.get(key)
            # The held-out half is a sample: it fails when below the target by more than its
            # sampling error (the tuning half was chosen to reach the target with a margin).
            allowed = slack if key == "heldout_recall" else 0.0
            if value is not None and value < target - allowed:
                failures.append({
                    "evaluator": "index", "metric": f"{key}@{index_report.get('recall_k')}",
                    "short": f"index recall {value:.2f} below {target:g}",
                    "note": f"index recall@{index_report.get('recall_k')} on {which} queries is "
                            f"{value:.4f} at ef {index_report.get('ef')}, below its target "
                            f"{target:g}: search would miss results"})
    return failures


def heldout_slack(index_report: dict[str, Any]) -> float:
    """Two standard errors of a recall measured on the held-out half of the tuning queries
    (`recall_k` results each) at the target: 60 queries (30 held out) allow 0.011 below a
    0.99 target, 400 allow 0.0044.

    >>> round(heldout_slack({"target_recall": 0.99, "sample_queries": 400, "recall_k": 10}), 4)
    0.0044
    """
    target = float(index_report.get("target_recall") or 0)
    total = int(index_report.get("sample_queries") or 0)
    items = (total - total // 2) * int(index_report.get("recall_k") or 10)
    return 2 * (target * (1 - target) / items) ** 0.5 if items else 0.0


def judge(candidate: Rows, active: Rows | None, config: GateConfig,
          index_report: dict[str, Any] | None = None) -> GateDecision:
    """The gate's decision for a candidate (rows in memory) against the active version's rows.

    `active` None: a first version, checked on the absolute criteria only. Label-free views
    (evaluations that recorded a paired gain interval) are judged by their intervals, not by
    tolerances on point values: none may be significantly worse, and a retrained model must
    show a significant pooled gain (`POOLED`).
    """
    absolute = broken(candidate, index_report, config)
    if active is None:
        return GateDecision(not absolute or not config.enabled, 0, absolute)
    by_interval = {r["evaluator"] for r in candidate if r["metric"].endswith("_gain_low")}
    decision = decide(metric_map([r for r in candidate if r["evaluator"] not in by_interval]),
                      metric_map(active), config)
    failures = absolute + decision.failures + _significantly_worse(candidate, active)
    if config.require_improvement and not failures:
        failures = _require_improvement(candidate, active)
    return GateDecision(not failures or not config.enabled, decision.compared, failures,
                        _shared_primary(candidate, active))


def _significantly_worse(candidate: Rows, active: Rows) -> list[dict]:
    """A label-free view whose gain interval lies wholly below zero."""
    failures = []
    for p in _shared_primary(candidate, active):
        gain = p.get("interval")
        if gain is not None and gain["high"] < 0:
            what = f"{p['evaluator'].split(':')[0]} {p['metric']} {describe(gain)}"
            failures.append({**p, "tolerance": 0.0, "short": f"{what} worse",
                             "note": f"{what}: the candidate is worse than the active version "
                                     f"on {p['evaluator']} beyond the evaluation's noise"})
    return failures


def _labelled(r: dict) -> bool:
    """A primary metric of a labelled evaluator (informational and health rows prove nothing;
    `general:` guards must not regress, like any metric, but need not improve)."""
    return bool(r["is_primary"]) and r["evaluator"] != "health" \
        and not r["evaluator"].startswith("general:") and r["greater_is_better"] is not None


def _shared_primary(candidate: Rows, active: Rows) -> list[dict]:
    old = {(r["evaluator"], r["metric"]): r for r in active if _labelled(r)}
    return [{"evaluator": r["evaluator"], "metric": r["metric"], "candidate": r["value"],
             "active": old[(r["evaluator"], r["metric"])]["value"],
             **({"interval": gain} if (gain := interval_of(candidate, r["evaluator"],
                                                            r["metric"])) else {})}
            for r in candidate if _labelled(r) and (r["evaluator"], r["metric"]) in old]


def _require_improvement(new_rows: Rows, old_rows: Rows) -> list[dict]:
    """Failures unless the candidate improved: every shared labelled primary metric strictly,
    and, where the evaluation is label-free (views with paired gain intervals), the pooled gain
    over all of them beyond its noise (`POOLED`, its interval's lower bound above zero).

    Without the query-log views the pooled gain is not computed and a fine-tune cannot be
    promoted: the mined views alone do not rank fine-tuned models (`bench/retrain.py`: rank
    correlation with real judgements about 0, and a fine-tune trained on inverse-cloze pairs
    gains on them while it loses on real queries)."""
    old = {(r["evaluator"], r["metric"]): r for r in old_rows if _labelled(r)}
    shared = [(r, old[(r["evaluator"], r["metric"])]) for r in new_rows
              if _labelled(r) and (r["evaluator"], r["metric"]) in old]
    if not shared:
        return [{"evaluator": "-", "metric": "labelled primary metric",
                 "short": "no evaluation set to show improvement",
                 "note": "no labelled evaluation set shared with the active version: improvement "
                         "cannot be shown (set evaluate.beir or evaluate.sts)"}]
    failures = []
    label_free = False
    for n, o in shared:
        gain = interval_of(new_rows, n["evaluator"], n["metric"])
        if gain is not None:
            label_free = True
            if n["evaluator"].split(":")[0] != POOLED:
                continue  # each view only may not be significantly worse (checked before)
            if gain["low"] <= 0:
                what = f"{POOLED} {n['metric']} {describe(gain)}"
                failures.append({"evaluator": n["evaluator"], "metric": n["metric"],
                                 "candidate": n["value"], "active": o["value"],
                                 "tolerance": 0.0, "interval": gain,
                                 "short": f"{what} not significant",
                                 "note": f"{what} not significant: the candidate's gain over "
                                         "the active version, pooled over every label-free "
                                         "view (mean per-query difference, 95% bootstrap "
                                         "interval), does not clear zero"})
        elif not (n["value"] > o["value"] if n["greater_is_better"] else n["value"] < o["value"]):
            failures.append({"evaluator": n["evaluator"], "metric": n["metric"],
                             "candidate": n["value"], "active": o["value"], "tolerance": 0.0,
                             "note": f"{n['evaluator']} {n['metric']}: {n['value']:.4f} does not "
                                     f"improve on the active {o['value']:.4f} (required for a "
                                     "retrained model)"})
    if label_free and not any(n["evaluator"].split(":")[0] == POOLED for n, _ in shared):
        failures.append({"evaluator": "-", "metric": "query log",
                         "short": "no query log to judge a fine-tune by",
                         "note": "no query log to judge a fine-tune by: the set mined from the "
                                 "corpus alone does not tell a better fine-tune from a worse "
                                 "one; a retrain judges fine-tunes on logged searches (retrain."
                                 "log_min_searches) or on a labelled set (evaluate.beir)"})
    return failures


def interval_of(rows: Rows, evaluator: str, metric: str) -> dict[str, float] | None:
    """The paired gain interval an evaluation recorded for `metric` (mean, low, high)."""
    found = {r["metric"]: float(r["value"]) for r in rows if r["evaluator"] == evaluator}
    keys = {"mean": f"{metric}_gain", "low": f"{metric}_gain_low", "high": f"{metric}_gain_high"}
    if not all(k in found for k in keys.values()):
        return None
    return {name: found[k] for name, k in keys.items()}


def describe(gain: dict[str, float]) -> str:
    """`+0.011 [-0.004, +0.026]`."""
    return f"{gain['mean']:+.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}]"
