"""Is a candidate better than the active model by more than the evaluation set can resolve?

Two models scored on the same queries differ per query; the mean difference of a few hundred
queries moves by about a hundredth between resamples of them. `bench/retrain.py` found a
fine-tune at +0.011 nDCG@10 on the mined set and -0.003 on real judgements: an "any
improvement" rule promotes on noise. So a label-free verdict rests on a paired bootstrap of the
per-query differences: the candidate is better only when the lower bound of the interval
(`gate.improvement_level`, 95% by default) clears zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """Mean per-query difference (candidate - reference) and its bootstrap interval."""

    mean: float
    low: float
    high: float
    queries: int
    level: float

    @property
    def significant(self) -> bool:
        return self.low > 0

    def describe(self) -> str:
        """E.g. `+0.011 [-0.004, +0.026]`."""
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def ndcg_at_k(relevant: dict[str, int], ranked: dict[str, float], k: int = 10) -> float:
    """nDCG@k of one query (gain = relevance grade, log2 discount, as trec_eval).

    >>> ndcg_at_k({"a": 1}, {"b": 0.9, "a": 0.8})
    0.6309
    """
    order = sorted(ranked, key=lambda d: -ranked[d])[:k]
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(order))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    best = sum(g / math.log2(i + 2) for i, g in enumerate(ideal) if g > 0)
    return round(dcg / best, 4) if best > 0 else 0.0


def per_query_ndcg(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
                   k: int = 10) -> dict[str, float]:
    """nDCG@k of every judged query (a query with no ranking scores 0)."""
    return {q: ndcg_at_k(rel, run.get(q) or {}, k) for q, rel in qrels.items()}


def paired_bootstrap(candidate: dict[str, float], reference: dict[str, float],
                     level: float = 0.95, resamples: int = 10_000, seed: int = 0) -> Interval:
    """The mean of candidate - reference over the queries both scored, with a percentile
    bootstrap interval (queries resampled with replacement, seeded)."""
    shared = sorted(set(candidate) & set(reference))
    if not shared:
        return Interval(0.0, 0.0, 0.0, 0, level)
    diffs = np.array([candidate[q] - reference[q] for q in shared])
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(resamples, len(diffs)))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(round(float(diffs.mean()), 4), round(float(low), 4), round(float(high), 4),
                    len(shared), level)


def pooled_bootstrap(views: Sequence[tuple[Mapping[str, float], Mapping[str, float],
                                            Mapping[str, str]]],
                     level: float = 0.95, resamples: int = 10_000, seed: int = 0) -> Interval:
    """The mean over several views of each view's mean per-query gain (candidate - reference),
    with a bootstrap interval that resamples *units*, not queries: each view is
    (candidate per query, reference per query, unit of each query), and queries of one unit move
    together (a held-out document's sentence and title queries; one logged search judged by two
    pseudo-labels), so views that share units are not counted as independent evidence.
    `queries` of the result counts units.

    >>> a = ({"q1": 1.0, "q2": 0.5}, {"q1": 0.5, "q2": 0.5}, {"q1": "d1", "q2": "d2"})
    >>> pooled_bootstrap([a, a]).mean
    0.25
    """
    units = sorted({u for _, _, unit in views for u in unit.values()})
    position = {u: i for i, u in enumerate(units)}
    sums, sizes, points = [], [], []  # per view: difference summed per unit, queries per unit
    for candidate, reference, unit in views:
        shared = sorted(set(candidate) & set(reference) & set(unit))
        if shared:
            at = np.array([position[unit[q]] for q in shared])
            diffs = np.array([candidate[q] - reference[q] for q in shared])
            sums.append(np.bincount(at, diffs, len(units)))
            sizes.append(np.bincount(at, None, len(units)).astype(float))
            points.append(float(diffs.mean()))
    if not points:
        return Interval(0.0, 0.0, 0.0, 0, level)
    rng = np.random.default_rng(seed)
    weights_s, weights_n = np.stack(sums, axis=1), np.stack(sizes, axis=1)  # units x views
    means = np.empty(resamples)
    for start in range(0, resamples, 500):  # counts[r, u]: draws of unit u in resample r
        n = min(500, resamples - start)
        counts = np.zeros((n, len(units)))
        np.add.at(counts, (np.repeat(np.arange(n), len(units)),
                           rng.integers(0, len(units), size=n * len(units))), 1)
        totals = counts @ weights_n
        view_means = np.where(totals > 0, (counts @ weights_s) / np.maximum(totals, 1),
                              np.array(points))
        means[start:start + n] = view_means.mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(round(float(np.mean(points)), 4), round(float(low), 4),
                    round(float(high), 4), len(units), level)
