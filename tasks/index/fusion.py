"""Fusing several rankings into one: reciprocal rank fusion (Cormack et al., 2009).

Hybrid search fuses BM25's and the vector index's rankings (`tasks/index/hits.py`); a retrain's
pseudo-labels fuse BM25's and the active model's (`tasks/train/pairs.pseudo_relevant`). Pure
Python: it needs neither DuckDB nor an index.
"""

from __future__ import annotations


def reciprocal_rank_fusion(rankings: list[list[str]], k: int = 60) -> list[tuple[str, float]]:
    """Items of several best-first rankings by the sum of 1 / (k + rank), best first.

    >>> reciprocal_rank_fusion([["a", "b", "c"], ["b", "c", "d"]], k=60)[:2]
    [('b', 0.03252247488101534), ('c', 0.03200204813108039)]
    """
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
