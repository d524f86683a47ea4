"""Training pairs without labels: every kind named and counted, held-out documents never used,
hard negatives from other documents only."""

from __future__ import annotations

import pyarrow as pa

from tasks.embed.hashing import HashEmbedder
from tasks.train.pairs import add_hard_negatives, mine_pairs, training_pairs

TEXTS = {
    "tea": "Tea. Tea is brewed from the leaves of the tea plant. Green tea is not oxidised at "
           "all. Black tea is fully oxidised before drying.",
    "tides": "Tides. Tides rise and fall twice a day. The moon's gravity pulls the oceans "
             "toward it. Spring tides come with the new and the full moon.",
    "held": "Held. This document is held out for evaluation only. Nothing from it may be "
            "trained on. Its sentences are evaluation queries.",
}
DOCS = pa.table({"doc_id": list(TEXTS), "title": [t.split(".")[0] for t in TEXTS.values()],
                 "text": list(TEXTS.values())})
CHUNKS = pa.table({"doc_id": [d for d in TEXTS for _ in range(2)],
                   "seq": [0, 1] * len(TEXTS),
                   "text": [part for t in TEXTS.values()
                            for part in (t[:len(t) // 2], t[len(t) // 2:])]})


def test_pairs_by_kind_are_counted_and_keep_held_out_documents_out():
    counts: dict[str, int] = {}
    pairs = mine_pairs(DOCS, CHUNKS, 100, 0, exclude={"held"}, counts=counts,
                       kinds=["title", "adjacent", "ict"])
    assert counts == {"title->first chunk": 2, "adjacent chunks": 2,
                      "sentence->rest of its document": 2}
    assert len(pairs) == 6
    assert not any("held out" in a or "held out" in p for a, p in pairs)
    ict = [p for p in training_pairs(DOCS, CHUNKS, 100, 0, {"held"}, ["ict"])]
    for pair in ict:  # the sentence is taken out of the text it must find
        assert pair.anchor not in pair.positive and pair.anchor in TEXTS[pair.doc_id]


def test_hard_negatives_come_from_other_documents():
    pairs = add_hard_negatives(training_pairs(DOCS, CHUNKS, 100, 0, set(), ["title", "ict"]),
                               HashEmbedder(dimension=64))
    assert all(p.negative is not None for p in pairs)
    for pair in pairs:
        assert pair.negative not in TEXTS[pair.doc_id] and pair.negative != pair.positive
