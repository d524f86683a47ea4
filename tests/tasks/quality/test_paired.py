"""The paired bootstrap the retrain gate reads: per-query nDCG, an interval that covers noise."""

from __future__ import annotations

import numpy as np

from tasks.quality.paired import ndcg_at_k, paired_bootstrap, per_query_ndcg


def test_ndcg_of_one_query_matches_the_trec_definition():
    assert ndcg_at_k({"a": 1}, {"a": 0.9, "b": 0.8}) == 1.0
    assert ndcg_at_k({"a": 1}, {"b": 0.9, "a": 0.8}) == round(1 / np.log2(3), 4)
    assert ndcg_at_k({"a": 1}, {"b": 0.9}) == 0.0
    assert per_query_ndcg({"q1": {"a": 1}, "q2": {"c": 1}}, {"q1": {"a": 1.0}}) == {
        "q1": 1.0, "q2": 0.0}


def test_noise_is_not_significant_and_a_real_gain_is():
    rng = np.random.default_rng(0)
    base = {f"q{i}": float(x) for i, x in enumerate(rng.uniform(0, 1, 200))}
    noise = {q: v + float(rng.normal(0, 0.15)) for q, v in base.items()}  # no true gain
    interval = paired_bootstrap(noise, base, seed=1)
    assert interval.queries == 200 and interval.low < 0 < interval.high
    assert not interval.significant
    better = {q: v + 0.05 + float(rng.normal(0, 0.15)) for q, v in base.items()}
    interval = paired_bootstrap(better, base, seed=1)
    assert interval.significant and interval.low < 0.05 < interval.high
    assert interval.describe().startswith("+0.0")
