"""Association bias of an embedding space: the Word Embedding Association Test (WEAT).

Input: the shipped target and attribute sets (`tasks/data/weat.json`: WEAT 1, 2, 6, 7 and 8 of
Caliskan et al. 2017, their source named in the file) and an embedder. Output: one `Evaluation`
with, per test, the effect size d (how much more target set X associates with attribute A than
Y does, in pooled standard deviations; GloVe's published d is in the file) and a one-sided
permutation p-value over equal-size re-partitions of X ∪ Y. Reported, not gated (the rows have
no direction), unless the config names a bound (`gate.bias_bound`): the gate then fails a
version whose |d| exceeds it on any test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.embed.base import Embedder
from tasks.embed.embedding import embed_texts
from tasks.quality.base import Evaluation

DATA = Path(__file__).with_name("data") / "weat.json"


@dataclass(frozen=True)
class WeatTest:
    name: str
    x: list[str]
    y: list[str]
    a: list[str]
    b: list[str]
    published_effect: float | None = None


def load_tests(path: Path = DATA) -> list[WeatTest]:
    """The shipped WEAT tests."""
    data = json.loads(path.read_text())
    return [WeatTest(name, t["X"], t["Y"], t["A"], t["B"], t.get("published_effect"))
            for name, t in data["tests"].items()]


def association(w: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """s(w, A, B) = mean cos(w, a) - mean cos(w, b), for each row of unit vectors `w`."""
    return (w @ a.T).mean(axis=1) - (w @ b.T).mean(axis=1)


def weat(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray, permutations: int = 10_000,
         seed: int = 0) -> tuple[float, float]:
    """(effect size d, one-sided permutation p-value) of targets X, Y and attributes A, B.

    >>> a, b = np.eye(4)[:1], np.eye(4)[1:2]
    >>> d, p = weat(np.tile(a, (5, 1)), np.tile(b, (5, 1)), a, b, 200)
    >>> round(d, 2), p < 0.05
    (1.9, True)
    """
    sx, sy = association(x, a, b), association(y, a, b)
    pooled = np.concatenate([sx, sy])
    spread = pooled.std(ddof=1)
    effect = float((sx.mean() - sy.mean()) / spread) if spread > 0 else 0.0
    observed = sx.sum() - sy.sum()
    rng = np.random.default_rng(seed)
    n = len(sx)
    exceed = 0
    for _ in range(permutations):
        order = rng.permutation(len(pooled))
        exceed += pooled[order[:n]].sum() - pooled[order[n:]].sum() >= observed
    return effect, float((exceed + 1) / (permutations + 1))


def evaluate_bias(embedder: Embedder, batch_size: int, tests: list[WeatTest] | None = None,
                  permutations: int = 10_000) -> Evaluation:
    """Effect size and p-value of every shipped WEAT test for this embedder's space."""
    metrics: dict[str, float] = {}
    for test in tests or load_tests():
        x, y, a, b = (embed_texts(words, embedder, batch_size)
                      for words in (test.x, test.y, test.a, test.b))
        d, p = weat(x, y, a, b, permutations)
        metrics[f"{test.name}_effect"] = round(d, 4)
        metrics[f"{test.name}_effect_abs"] = round(abs(d), 4)
        metrics[f"{test.name}_p_value"] = round(p, 5)
    return Evaluation("bias:weat", metrics, next(iter(metrics)), False)
