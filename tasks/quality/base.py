"""The one evaluation contract: `Evaluation(metrics, primary_metric, greater_is_better)`.

Every quality or drift check returns one; the gate reads only this and `DIRECTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Which way is better, per metric; metrics not listed are informational and never gated.
# ANN recall is not gated: each index is tuned to reach index.target_recall at build time, and
# its self-query recall moves with the corpus, not with the quality of the vectors.
DIRECTIONS: dict[str, bool] = {
    "ndcg@10": True, "recall@100": True, "mrr@10": True,
    "spearman": True, "pearson": True,
    "nan_vectors": False, "zero_vectors": False,
}


@dataclass(frozen=True)
class Evaluation:
    evaluator: str  # e.g. "retrieval:scifact/test", "sts:sts-test.csv", "health"
    metrics: dict[str, float]
    primary_metric: str
    greater_is_better: bool
    directions: dict[str, bool] = field(default_factory=dict)
    # The primary metric per query (query id -> value), where the evaluator keeps it: what a
    # paired test of two models on the same queries needs (`tasks/quality/paired.py`).
    per_query: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.primary_metric not in self.metrics:
            raise ValueError(f"primary metric {self.primary_metric!r} is not among "
                             f"{sorted(self.metrics)}")
        declared = self.directions.get(self.primary_metric)
        if declared is not None and declared != self.greater_is_better:
            raise ValueError(f"{self.evaluator}: greater_is_better={self.greater_is_better} "
                             f"contradicts the direction declared for {self.primary_metric!r}")
