"""Extrinsic quality: how well the vectors serve a downstream classifier and a clustering.

Input: vectors of labelled texts (`evalsets.load_labelled`: any `(text, label)` file, e.g.
STS-B's sentences with their genre) or, without labels, a sample of the corpus's own vectors.
Output: `Evaluation`s on the one contract:
- `probe:<set>`: a linear probe (logistic regression, stratified k-fold): accuracy and macro-F1,
  beside the majority-class accuracy of the same folds (what a probe must beat to mean anything).
- `clusters:<set>`: k-means with as many clusters as labels, against the labels: V-measure and
  adjusted Rand index.
- `structure`: without labels, the silhouette (cosine) of a k-means clustering of a corpus
  sample — a health figure: near 0 means no cluster structure at all.
"""

from __future__ import annotations

import numpy as np

from tasks.quality.base import Evaluation


def linear_probe(name: str, vectors: np.ndarray, labels: list[str], folds: int = 5,
                 seed: int = 0) -> Evaluation:
    """Cross-validated accuracy and macro-F1 of a logistic regression on the vectors."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels)
    folds = int(min(folds, np.unique(y, return_counts=True)[1].min()))
    if folds < 2:
        raise ValueError(f"{name}: every label needs at least 2 examples for a probe")
    predicted = np.empty(len(y), dtype=y.dtype)
    majority = np.empty(len(y), dtype=y.dtype)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(vectors, y):
        model = LogisticRegression(max_iter=2000, C=1.0).fit(vectors[train], y[train])
        predicted[test] = model.predict(vectors[test])
        values, counts = np.unique(y[train], return_counts=True)
        majority[test] = values[np.argmax(counts)]
    metrics = {"accuracy": round(float(accuracy_score(y, predicted)), 4),
               "macro_f1": round(float(f1_score(y, predicted, average="macro")), 4),
               "majority_accuracy": round(float(accuracy_score(y, majority)), 4),
               "examples": float(len(y)), "classes": float(len(np.unique(y)))}
    return Evaluation(f"probe:{name}", metrics, "accuracy", True,
                      {"accuracy": True, "macro_f1": True})


def clustering(name: str, vectors: np.ndarray, labels: list[str], seed: int = 0) -> Evaluation:
    """How well k-means (k = number of labels) on the vectors recovers the labels."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, v_measure_score

    k = len(set(labels))
    found = KMeans(n_clusters=k, n_init=5, random_state=seed).fit_predict(vectors)
    metrics = {"v_measure": round(float(v_measure_score(labels, found)), 4),
               "adjusted_rand": round(float(adjusted_rand_score(labels, found)), 4)}
    return Evaluation(f"clusters:{name}", metrics, "v_measure", True,
                      {"v_measure": True, "adjusted_rand": True})


def structure(vectors: np.ndarray, sample: int = 1000, k: int = 8, seed: int = 0) -> Evaluation:
    """Silhouette (cosine) of k-means on a sample of the corpus's vectors (informational)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    take = rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    points = vectors[np.sort(take)]
    k = min(k, len(points) - 1)
    if k < 2:
        return Evaluation("structure", {"silhouette": 0.0}, "silhouette", True)
    found = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(points)
    if len(set(found)) < 2:
        return Evaluation("structure", {"silhouette": 0.0}, "silhouette", True)
    score = silhouette_score(points, found, metric="cosine")
    return Evaluation("structure", {"silhouette": round(float(score), 4), "k": float(k)},
                      "silhouette", True)
