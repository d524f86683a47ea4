"""Drift statistics between a reference sample (the active version) and a current sample.

Pure functions over NumPy arrays and token counts; each returns `dict[str, float]`.
- embedding drift: MMD² (RBF kernel, median-heuristic bandwidth) with a permutation p-value; a
  classifier two-sample test (logistic regression, cross-validated ROC AUC, rank-permutation
  p-value); cosine distance between centroids; share of dimensions whose KS test rejects after
  Benjamini-Hochberg.
- input drift: KS on token lengths, unknown-token rates, share of current vocabulary unseen in
  the reference.
`decide` applies the configured rule (default: MMD p < 0.01 and AUC > floor) and the k-of-n rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

PRIMARY_METRIC = "mmd_p_value"  # smaller means more evidence of drift
DriftRule = Literal["mmd_and_auc", "mmd", "auc"]


class DriftReport(BaseModel):
    """One drift check: its statistics, this check's alarm, and the k-of-n decision."""

    check_id: str
    version_id: int
    kind: str  # corpus | queries
    source: str
    n_reference: int
    n_current: int
    statistics: dict[str, float]
    alarm: bool  # this check alone
    drifted: bool  # the decision rule, k alarms of the last n checks included
    retrain: dict[str, Any] | None = None
    note: str | None = None  # a check that compared nothing, e.g. the first query log

    def headline(self) -> str:
        """A short verdict for run names and dashboards, e.g. `drift: MMD p=0.002, AUC 0.97`."""
        if self.note:
            return self.note
        verdict = "drift" if self.drifted else ("alarm" if self.alarm else "no drift")
        return (f"{verdict}: MMD p={self.statistics.get('mmd_p_value', float('nan')):.3g}, "
                f"AUC {self.statistics.get('classifier_auc', float('nan')):.2f}")


class DriftConfig(BaseModel):
    """Sample sizes, test settings and the alarm rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reference_size: int = Field(300, ge=20)
    current_size: int = Field(300, ge=20)
    permutations: int = Field(500, ge=20)  # MMD null; p-value resolution is 1/(permutations+1)
    mmd_alpha: float = Field(0.01, gt=0, lt=1)
    # A 20% admixture of another domain caps the achievable AUC near 0.6; 0.55 keeps that
    # detectable while two samples of one distribution stay near 0.5.
    auc_floor: float = Field(0.55, ge=0.5, le=1)
    cv_folds: int = Field(5, ge=2)
    fdr: float = Field(0.05, gt=0, lt=1)  # Benjamini-Hochberg level for per-dimension KS
    rule: DriftRule = "mmd_and_auc"
    alarms_required: int = Field(1, ge=1)  # act when this many of the last `window` checks alarm
    window: int = Field(1, ge=1)
    seed: int = 0


def rbf_mmd2(ref: np.ndarray, cur: np.ndarray, permutations: int, seed: int
             ) -> tuple[float, float]:
    """Unbiased MMD² with an RBF kernel and its permutation p-value."""
    pooled = np.vstack([ref, cur]).astype(np.float64)
    sq = np.sum(pooled**2, axis=1)
    dist2 = np.maximum(sq[:, None] + sq[None, :] - 2 * pooled @ pooled.T, 0)
    upper = dist2[np.triu_indices(len(pooled), k=1)]
    bandwidth = np.median(upper[upper > 0]) if np.any(upper > 0) else 1.0
    kernel = np.exp(-dist2 / bandwidth)
    np.fill_diagonal(kernel, 0.0)
    n, m = len(ref), len(cur)

    def statistic(is_ref: np.ndarray) -> float:
        a, b = is_ref, ~is_ref
        kxx = kernel[np.ix_(a, a)].sum() / (n * (n - 1))
        kyy = kernel[np.ix_(b, b)].sum() / (m * (m - 1))
        kxy = kernel[np.ix_(a, b)].sum() / (n * m)
        return float(kxx + kyy - 2 * kxy)

    labels = np.zeros(n + m, dtype=bool)
    labels[:n] = True
    observed = statistic(labels)
    rng = np.random.default_rng(seed)
    exceed = sum(statistic(rng.permutation(labels)) >= observed for _ in range(permutations))
    return observed, (exceed + 1) / (permutations + 1)


def classifier_auc(ref: np.ndarray, cur: np.ndarray, folds: int, seed: int
                   ) -> tuple[float, float]:
    """Cross-validated ROC AUC of telling current from reference, and its p-value.

    The p-value is the rank-permutation null of the AUC (Mann-Whitney U, normal approximation)
    over the out-of-fold scores, one-sided: AUC above 0.5 is evidence of drift.
    """
    from scipy.stats import norm
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.vstack([ref, cur])
    y = np.r_[np.zeros(len(ref)), np.ones(len(cur))]
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(LogisticRegression(max_iter=1000, C=1.0), x, y, cv=cv,
                               method="decision_function")
    auc = float(roc_auc_score(y, scores))
    n1, n2 = len(ref), len(cur)
    sd = np.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    return auc, float(norm.sf((auc - 0.5) / sd))


def centroid_cosine_distance(ref: np.ndarray, cur: np.ndarray) -> float:
    a, b = ref.mean(axis=0), cur.mean(axis=0)
    return float(1 - a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def drifted_dimensions(ref: np.ndarray, cur: np.ndarray, fdr: float) -> float:
    """Share of dimensions whose two-sample KS test rejects at FDR `fdr` (Benjamini-Hochberg)."""
    from scipy.stats import false_discovery_control, ks_2samp

    p_values = ks_2samp(ref, cur, axis=0).pvalue
    return float(np.mean(false_discovery_control(p_values) < fdr))


def embedding_drift(ref: np.ndarray, cur: np.ndarray, config: DriftConfig) -> dict[str, float]:
    mmd2, mmd_p = rbf_mmd2(ref, cur, config.permutations, config.seed)
    auc, auc_p = classifier_auc(ref, cur, config.cv_folds, config.seed)
    return {"mmd2": round(mmd2, 6), "mmd_p_value": mmd_p, "classifier_auc": round(auc, 4),
            "classifier_p_value": auc_p,
            "centroid_cosine_distance": round(centroid_cosine_distance(ref, cur), 6),
            "drifted_dimensions_share": drifted_dimensions(ref, cur, config.fdr)}


def input_drift(ref_lengths: Sequence[int], cur_lengths: Sequence[int],
                ref_unknown: Sequence[int], cur_unknown: Sequence[int],
                ref_vocabulary: set[str], cur_words: Sequence[str]) -> dict[str, float]:
    """Token-length KS, unknown-token rates, share of current words unseen in the reference."""
    from scipy.stats import ks_2samp

    test = ks_2samp(ref_lengths, cur_lengths)
    unseen = sum(1 for w in cur_words if w not in ref_vocabulary)
    return {
        "token_length_ks": round(float(test.statistic), 4),
        "token_length_p_value": float(test.pvalue),
        "unknown_rate_reference": float(np.sum(ref_unknown) / max(np.sum(ref_lengths), 1)),
        "unknown_rate_current": float(np.sum(cur_unknown) / max(np.sum(cur_lengths), 1)),
        "new_vocabulary_share": unseen / max(len(cur_words), 1),
    }


def thresholds(config: DriftConfig) -> dict[str, float]:
    """The statistics the alarm rule reads, with the value past which each one alarms
    (MMD p-value below, classifier AUC above)."""
    return {"mmd_p_value": config.mmd_alpha, "classifier_auc": config.auc_floor}


def alarm(stats: dict[str, float], config: DriftConfig) -> bool:
    """Does this one check raise an alarm under the configured rule?"""
    mmd = stats["mmd_p_value"] < config.mmd_alpha
    auc = stats["classifier_auc"] > config.auc_floor
    rules = {"mmd_and_auc": mmd and auc, "mmd": mmd, "auc": auc}
    if config.rule not in rules:
        raise ValueError(f"drift rule {config.rule!r} unknown; valid: {sorted(rules)}")
    return rules[config.rule]


def decide(current_alarm: bool, previous_alarms: Sequence[bool], config: DriftConfig) -> bool:
    """Act when `alarms_required` of the last `window` checks (this one included) alarmed.

    >>> decide(True, [False, True], DriftConfig(alarms_required=2, window=3))
    True
    >>> decide(True, [False, False], DriftConfig(alarms_required=2, window=3))
    False
    """
    recent = [*list(previous_alarms)[-(config.window - 1):], current_alarm] \
        if config.window > 1 else [current_alarm]
    return sum(recent) >= config.alarms_required
