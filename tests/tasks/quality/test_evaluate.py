"""Evaluators on tiny inputs whose right answers are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.embed.base import normalize_rows
from tasks.errors import SourceError
from tasks.index.ann import ExactIndex
from tasks.quality.base import Evaluation
from tasks.quality.evalsets import load_beir, load_sts
from tasks.quality.evaluate import (
    doc_run,
    evaluate_health,
    evaluate_sts,
    mean_pairwise_cosine,
    retrieval_metrics,
)


def test_doc_score_is_the_best_chunk():
    # chunks 1, 2 belong to doc A, chunk 3 to B; query hits 2 (0.9) before 3 (0.8) before 1 (0.1)
    run = doc_run(["q"], np.array([[2, 3, 1]]), np.array([[0.9, 0.8, 0.1]]),
                  {1: "A", 2: "A", 3: "B"})
    assert run == {"q": {"A": 0.9, "B": 0.8}}


def test_retrieval_metrics_known_values():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    run = {"q1": {"d1": 0.9, "d3": 0.5},   # relevant at rank 1: ndcg 1, mrr 1
           "q2": {"d4": 0.9, "d2": 0.5}}   # relevant at rank 2: ndcg 1/log2(3), mrr 0.5
    metrics = retrieval_metrics(qrels, run)
    assert metrics["mrr@10"] == pytest.approx(0.75)
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / np.log2(3)) / 2, abs=1e-6)
    assert metrics["recall@100"] == 1.0


def test_a_query_with_no_hits_scores_zero():
    assert retrieval_metrics({"q": {"d": 1}}, {"q": {}})["ndcg@10"] == 0.0


def test_sts_correlations():
    rng = np.random.default_rng(0)
    a = normalize_rows(rng.normal(size=(50, 8)).astype(np.float32))
    noise = normalize_rows(rng.normal(size=(50, 8)).astype(np.float32))
    gold = np.linspace(0, 5, 50)
    mix = gold[:, None] / 5  # pairs become more similar as gold grows
    b = normalize_rows((mix * a + (1 - mix) * noise).astype(np.float32))
    result = evaluate_sts("synthetic", a, b, gold.tolist())
    assert result.primary_metric == "spearman" and result.greater_is_better
    assert result.metrics["spearman"] > 0.8


def test_health_flags_nan_zero_and_duplicate_vectors():
    v = normalize_rows(np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32))
    v[3] = np.nan          # one broken vector
    v[4] = 0.0             # one empty vector
    v[5] = v[6]            # one duplicate
    labels = np.arange(20)
    result = evaluate_health(v, ExactIndex(np.nan_to_num(v), labels), labels)
    m = result.metrics
    assert (m["nan_vectors"], m["zero_vectors"], m["duplicate_vectors"]) == (1, 1, 1)
    assert m["ann_recall@10"] == 1.0 and m["norm_max"] == pytest.approx(1.0, abs=1e-5)
    assert result.directions["nan_vectors"] is False and "anisotropy" not in result.directions


def test_anisotropy_extremes():
    same = np.ones((5, 3), dtype=np.float32)
    assert mean_pairwise_cosine(same) == pytest.approx(1.0)
    opposite = np.array([[1, 0], [-1, 0]], dtype=np.float32)
    assert mean_pairwise_cosine(opposite) == pytest.approx(-1.0)


def test_evaluation_contract_requires_its_primary_metric():
    with pytest.raises(ValueError, match="primary metric 'ndcg@10' is not among"):
        Evaluation("x", {"mrr@10": 1.0}, "ndcg@10", True)


def test_load_beir_and_sts(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "a?"}\n'
                                            '{"_id": "q2", "text": "unjudged"}\n')
    beir = load_beir(tmp_path)
    assert beir.queries == {"q1": "a?"} and beir.qrels == {"q1": {"d1": 1}}
    sts = tmp_path / "sts.csv"
    sts.write_text('g\tf\t2012\t1\t4.5\tA "quoted one.\tAnother.\textra\n')
    parsed = load_sts(sts)
    assert parsed.sentences1 == ['A "quoted one.'] and parsed.scores == [4.5]
    with pytest.raises(SourceError, match="qrels/dev.tsv"):
        load_beir(tmp_path, "dev")
