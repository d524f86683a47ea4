"""The mined (inverse-cloze) set: several queries per held-out document, each taken out of the
text it must find, and per-query scores paired with the active model's."""

from __future__ import annotations

import pyarrow as pa

from tasks.embed.hashing import HashEmbedder
from tasks.quality.mined import evaluate_mined, mine

SENTENCES = ["Alpha beta gamma delta epsilon zeta.", "Eta theta iota kappa lambda mu nu.",
             "Xi omicron pi rho sigma tau upsilon.", "Phi chi psi omega alpha beta gamma.",
             "Delta epsilon zeta eta theta iota kappa."]
DOCS = pa.table({"doc_id": [f"d{i}" for i in range(6)],
                 "text": [f"Title {i}. " + " ".join(SENTENCES[i % 5:] + SENTENCES[:i % 5])
                          for i in range(6)]})


def test_several_queries_per_document_each_taken_out_of_its_text():
    mined = mine(DOCS, n_queries=8, n_distractors=10, seed=0, per_document=2)
    assert len(mined.queries) == 8 and len(mined.held_out) == 4
    for qid, sentence in mined.queries.items():
        (doc,) = mined.qrels[qid]
        assert sentence not in mined.corpus[doc]
    assert set(mined.corpus) == {f"d{i}" for i in range(6)}  # held out + distractors


def test_a_candidate_is_paired_with_the_active_models_scores():
    mined = mine(DOCS, n_queries=8, n_distractors=10, seed=0, per_document=2)
    (active,) = evaluate_mined(mined, HashEmbedder(dimension=32), 8)
    assert set(active.per_query) == set(mined.queries)
    assert "ndcg@10_gain" not in active.metrics  # nothing to pair with yet
    paired = mined.with_reference(1, active.per_query)
    (same,) = evaluate_mined(paired, HashEmbedder(dimension=32), 8)
    assert (same.metrics["ndcg@10_gain"], same.metrics["ndcg@10_gain_low"],
            same.metrics["ndcg@10_gain_high"]) == (0.0, 0.0, 0.0)
    assert same.directions.get("ndcg@10_gain") is None  # informational: the gate reads it


def test_titles_make_a_second_view_and_leave_the_body():
    titles = [f"Title {i} of doc." for i in range(6)]
    bodies = [t.split(". ", 1)[1] for t in DOCS["text"].to_pylist()]
    titled = pa.table({"doc_id": DOCS["doc_id"], "title": titles,
                       "text": [f"{t} {b}" for t, b in zip(titles, bodies, strict=True)]})
    mined = mine(titled, n_queries=8, n_distractors=10, seed=0, per_document=2)
    assert len(mined.titles) == len(mined.held_out) == 4
    for tid, title in mined.titles.items():
        (doc,) = mined.qrels[tid]
        assert title == f"Title {doc[1:]} of doc." and not mined.corpus[doc].startswith("Title")
    views = evaluate_mined(mined, HashEmbedder(dimension=32), 8)
    assert [e.evaluator.split(":")[0] for e in views] == ["mined", "mined-title"]
