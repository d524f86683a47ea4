"""The quality gate: a candidate version may replace the active one only if no metric regressed.

Input: the candidate's and the active version's metrics as {(evaluator, metric): (value,
greater_is_better)} and per-metric tolerances. Output: a `GateDecision` naming every failure.
Only metrics both versions have, and that declare a direction, are compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

MetricKey = tuple[str, str]  # (evaluator, metric)


class GateConfig(BaseModel):
    """Allowed regression per metric, in the metric's own units."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    # Retrained models must beat the active version on a labelled primary metric, not merely
    # stay within tolerance of it.
    require_improvement: bool = False
    default_tolerance: float = Field(0.005, ge=0)
    # Keys: "metric" or "evaluator:metric" (e.g. "ndcg@10", "retrieval:scifact/test:ndcg@10").
    tolerances: dict[str, float] = Field(default_factory=lambda: {
        "nan_vectors": 0.0, "zero_vectors": 0.0})


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    compared: int
    failures: list[dict] = field(default_factory=list)

    def reason(self) -> str:
        if self.passed:
            return f"passed ({self.compared} metrics compared)"
        return "; ".join(f["note"] if "note" in f else
                         f"{f['evaluator']} {f['metric']}: {f['candidate']:.4f} vs active "
                         f"{f['active']:.4f} (tolerance {f['tolerance']})"
                         for f in self.failures)


def tolerance_for(config: GateConfig, evaluator: str, metric: str) -> float:
    return config.tolerances.get(f"{evaluator}:{metric}",
                                 config.tolerances.get(metric, config.default_tolerance))


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
