"""The three ranx metrics the evaluators use, in plain Python, for machines without ranx.

The GPU box `bench/retrain.py --device cuda` runs on has neither ranx nor a way to install it
(no network; ranx pulls ir_datasets and a dozen more). Same definitions as trec_eval: nDCG@10
with graded gains and a log2 discount, recall@100 over the judged-relevant documents, MRR@10.
Only used when `import ranx` fails.
"""

from __future__ import annotations

import math


def Qrels(qrels: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:  # noqa: N802
    return qrels


def Run(run: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:  # noqa: N802
    return run


def _one(relevant: dict[str, int], ranked: dict[str, float], metric: str) -> float:
    order = sorted(ranked, key=lambda d: (-ranked[d], d))
    if metric == "ndcg@10":
        dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(order[:10]))
        ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:10]
        best = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        return dcg / best if best else 0.0
    if metric == "recall@100":
        wanted = {d for d, g in relevant.items() if g > 0}
        return len(wanted & set(order[:100])) / len(wanted) if wanted else 0.0
    if metric == "mrr@10":
        return next((1 / (i + 1) for i, d in enumerate(order[:10]) if relevant.get(d, 0) > 0),
                    0.0)
    raise ValueError(f"metric {metric!r} is not in ranx-lite")


def evaluate(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
             metrics: list[str], make_comparable: bool = True) -> dict[str, float]:
    """Mean of each metric over the judged queries (a query missing from the run scores 0)."""
    queries = sorted(qrels)
    return {m: sum(_one(qrels[q], run.get(q, {}), m) for q in queries) / len(queries)
            for m in metrics}
