"""Logged searches as a label-free evaluation set: split, pseudo-labels, views, the pooled gain."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from tasks.quality.base import Evaluation
from tasks.quality.logged import (
    document_rankings,
    evaluate_logged,
    make_logged_set,
    pooled,
    split_log,
    version_rankings,
    views_of,
)
from tasks.quality.mined import MinedSet
from tasks.quality.paired import paired_bootstrap, pooled_bootstrap
from tasks.train.pairs import pseudo_relevant, query_log_pairs


def test_the_split_keeps_a_search_on_its_side_as_the_log_grows():
    first = [f"how do I parse {w}" for w in ("dates", "json", "csv", "xml", "urls", "paths")]
    held, training = split_log(first, 0.5)
    assert len(held) + len(training) == 6 and not set(held.values()) & set(training.values())
    assert split_log(first * 2, 0.5) == (held, training)  # repeats are one search
    variants = split_log(["Parse JSON", "parse  json", "parse json"], 0.5)
    assert len(variants[0]) + len(variants[1]) == 1  # case and spacing: one search, one side
    grown_held, grown_training = split_log([*first, *(f"q{i}" for i in range(200))], 0.5)
    # A search never moves sides: it is decided by the text's hash, not by its arrival.
    assert held.items() <= grown_held.items() and training.items() <= grown_training.items()
    assert 70 < len(grown_held) < 136


def test_pseudo_labels_and_hard_negatives_skip_what_bm25_also_ranks_high():
    lexical = {"a": ["d1", "d2", "d3", "d4"], "b": ["d5", "d6"], "c": ["d7"]}
    dense = {"a": ["d2", "d1", "d9", "d3"], "b": ["d5", "d8"], "c": ["d8", "d9"]}
    assert pseudo_relevant(lexical, dense, "lexical") == {"a": "d1", "b": "d5", "c": "d7"}
    assert pseudo_relevant(lexical, dense, "agree") == {"b": "d5"}
    fused = pseudo_relevant(lexical, dense, "fused")
    assert fused["b"] == "d5" and fused["a"] in ("d1", "d2")
    texts = {f"d{i}": f"text {i}" for i in range(10)}
    pairs = query_log_pairs({"a": "query a", "b": "query b"}, {"a": "d1", "b": "d5"}, texts,
                            lexical, dense)
    # a: d2 and d3 are in BM25's top 3 (likely relevant too): the negative is d9.
    assert [(p.kind, p.anchor, p.positive, p.negative) for p in pairs] == [
        ("log", "query a", "text 1", "text 9"), ("log", "query b", "text 5", "text 8")]
    # Held-out documents (the mined set's) are never a positive or a negative.
    kept = query_log_pairs({"a": "query a", "b": "query b"}, {"a": "d1", "b": "d5"}, texts,
                           lexical, dense, exclude={"d1", "d8"})
    assert [(p.anchor, p.negative) for p in kept] == [("query b", None)]


def test_documents_rank_by_their_best_chunk():
    chunks = np.array([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]], dtype=np.float32)
    run = document_rankings(np.array([[1, 0]], dtype=np.float32), chunks,
                            {0: "x", 1: "y", 2: "x", 3: "z"}, ["q"], depth=3)
    assert list(run["q"]) == ["x", "y", "z"] and run["q"]["x"] == 1.0
    # A version's chunks, restricted to the documents the set was ranked over (a retrain's
    # new batch, here "y", neither helps nor hurts the candidate).
    version = SimpleNamespace(rows=SimpleNamespace(doc_id=["x", "y", "x", "z"]),
                              labels=np.array([0, 1, 2, 3]), vectors=chunks)
    kept = version_rankings(version, np.array([[1, 0]], dtype=np.float32), ["q"], ["x", "z"])
    assert list(kept["q"]) == ["x", "z"]


def test_views_score_the_gain_over_the_active_model_with_its_interval():
    logged = make_logged_set({"l0": "q0", "l1": "q1"},
                             {"lexical": {"l0": "a", "l1": "b"}, "fused": {"l0": "a"}}, 4)
    active_run = {"l0": {"c": 0.9, "a": 0.8}, "l1": {"b": 0.9}}
    reference = evaluate_logged(logged, active_run)
    assert [e.evaluator for e in reference] == [f"log-lexical:{logged.name}",
                                               f"log-fused:{logged.name}"]
    assert reference[0].per_query == {"l0": 0.6309, "l1": 1.0}
    logged = logged.with_reference(1, reference)
    better = evaluate_logged(logged, {"l0": {"a": 0.9, "c": 0.8}, "l1": {"b": 0.9}})
    assert better[0].metrics["ndcg@10_gain"] == round((1 - 0.6309) / 2, 4)
    assert better[0].metrics["ndcg@10_gain_low"] == 0.0  # l1 did not move: zero is in reach


def test_the_pool_resamples_units_so_shared_evidence_is_not_counted_twice():
    rng = np.random.default_rng(0)
    base = {f"q{i}": float(x) for i, x in enumerate(rng.random(200))}
    candidate = {q: v + float(rng.normal(0.01, 0.1)) for q, v in base.items()}
    own = {q: q for q in base}
    one = paired_bootstrap(candidate, base)
    # The same view twice, on the same units, is the same evidence: the same interval.
    twice = pooled_bootstrap([(candidate, base, own), (candidate, base, own)])
    assert abs(twice.low - one.low) < 0.004 and abs(twice.high - one.high) < 0.004
    # Counted as independent (each query its own unit in each view) it would look surer.
    apart = pooled_bootstrap([(candidate, base, own),
                              ({f"x{q}": v for q, v in candidate.items()},
                               {f"x{q}": v for q, v in base.items()},
                               {f"x{q}": f"x{q}" for q in base})])
    assert apart.high - apart.low < (twice.high - twice.low) * 0.8


def test_the_pool_needs_a_query_log_view():
    mined = MinedSet("ict-1", {"q0": "s"}, {"d": "t"}, {"q0": {"d": 1}}, reference={"q0": 0.5})
    units, references = views_of(mined, None)
    views = [Evaluation("mined:ict-1", {"ndcg@10": 1.0}, "ndcg@10", True, per_query={"q0": 1.0})]
    assert pooled(views, units, references) is None
    logged = make_logged_set({"l0": "q"}, {"lexical": {"l0": "d"}}, 1)
    logged = logged.with_reference(1, evaluate_logged(logged, {"l0": {"e": 1.0, "d": 0.5}}))
    units, references = views_of(mined, logged)
    assert units == {"mined": {"q0": "d"}, "log-lexical": {"l0": "l0"}}
    views += evaluate_logged(logged, {"l0": {"d": 1.0}})
    gain = pooled(views, units, references)
    assert gain is not None and gain.evaluator == f"label-free:ict-1+{logged.name}"
    assert gain.metrics["ndcg@10_gain"] == round(((1.0 - 0.5) + (1.0 - 0.6309)) / 2, 4)
