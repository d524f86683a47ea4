"""BM25 over chunk texts and reciprocal rank fusion, on inputs whose answers are known."""

from __future__ import annotations

import numpy as np

from tasks.index.lexical import Bm25, build, reciprocal_rank_fusion


def test_bm25_ranks_by_words_with_stemming(tmp_path):
    keys = np.array([10, 11, 12], dtype=np.int64)
    build(tmp_path, keys, ["Vitamin D deficiency lowers bone density.",
                           "Sea levels rise and fall with the tides.",
                           "Bone marrow transplants save lives."])
    index = Bm25(tmp_path)
    found, scores = index.search("densities of bones", 5)  # stems: densiti, bone
    assert found.tolist()[:2] == [10, 12] and scores[0] > scores[1]
    assert index.search("quantum chromodynamics", 5)[0].size == 0
    index.close()


def test_fusion_rewards_agreement_over_one_top_rank():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "b", "x"]], k=60)
    # b and c are ranked by both lists; a and x by one each, however high
    assert {doc for doc, _ in fused[:2]} == {"b", "c"} and fused[2][0] == "a"
    assert reciprocal_rank_fusion([], k=60) == []
