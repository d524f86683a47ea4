"""A 2-D map of a version's vectors, and new data placed on it.

Input: unit vectors (a seeded sample of a version's chunks; later a drift check's sample).
Output: coordinates in the plane and a cluster per point. UMAP (cosine) draws the map when
`umap-learn` is installed and the sample is large enough, PCA otherwise (and on request: it is
linear and fast). New points are placed where their nearest sample points lie (a weighted mean
of their neighbours' coordinates) and take their neighbours' majority cluster, so a drift
check's sample lands in the version's own plane without refitting it — the map a person looks
at does not move between checks.

Computed once per version and per check by the flows; pages only read the stored rows.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class MapConfig(BaseModel):
    """How each version's map is drawn."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # pca (default): linear, milliseconds, never a noticeable share of an ingest. umap: UMAP
    # (cosine), when asked: its JIT compilation alone costs 10-30 s per process, which on the
    # demo corpus was 33 s of a 90 s ingest, as long as the embedding it illustrates (#23).
    # auto: UMAP from `umap_min_points` sampled chunks on, PCA below.
    method: Literal["auto", "umap", "pca", "off"] = "pca"
    umap_min_points: int = Field(1000, ge=2)
    sample: int = Field(5000, ge=10)  # chunks on the map
    # UMAP's neighbourhood: small shows local structure, large the global layout.
    neighbours: int = Field(15, ge=2)
    clusters: int = Field(0, ge=0)  # 0: about one cluster per 250 points, 2 to 12
    seed: int = 0


def sample_rows(n_rows: int, size: int, seed: int) -> np.ndarray:
    """Seeded, sorted positions of at most `size` of `n_rows` rows."""
    if n_rows <= size:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=size, replace=False))


def project(vectors: np.ndarray, config: MapConfig) -> tuple[np.ndarray, str]:
    """(coordinates (n, 2), the method used) of `vectors`.

    UMAP needs more points than its neighbourhood; a smaller sample is drawn with PCA.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    wanted = config.method == "umap" or (config.method == "auto"
                                         and len(vectors) >= config.umap_min_points)
    if wanted and len(vectors) > config.neighbours + 1:
        import warnings

        with warnings.catch_warnings():  # "n_jobs overridden by random_state": seeded on purpose
            warnings.simplefilter("ignore")
            import umap

            reducer = umap.UMAP(n_neighbors=config.neighbours, n_components=2, metric="cosine",
                                min_dist=0.1, random_state=config.seed)
            coords = reducer.fit_transform(vectors)
        return np.asarray(coords, dtype=np.float64), "umap"
    return pca(vectors), "pca"


def pca(vectors: np.ndarray) -> np.ndarray:
    """The first two principal components (sign fixed, so reruns draw the same picture).

    >>> pca(np.eye(3, dtype=np.float32)).shape
    (3, 2)
    """
    if len(vectors) == 0:
        return np.zeros((0, 2))
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2]
    components *= np.sign(components[:, :1] + 1e-12)
    coords = centred @ components.T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return np.asarray(coords, dtype=np.float64)


def cluster(vectors: np.ndarray, config: MapConfig) -> np.ndarray:
    """k-means clusters of the vectors themselves (not of the 2-D picture)."""
    n = len(vectors)
    k = config.clusters or int(np.clip(n // 250, 2, 12))
    k = min(k, n)
    if k < 2:
        return np.zeros(n, dtype=np.int64)
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=k, n_init=3, random_state=config.seed).fit_predict(vectors)
    return np.asarray(labels, dtype=np.int64)


def place(new_vectors: np.ndarray, map_vectors: np.ndarray, map_coords: np.ndarray,
          map_clusters: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(coordinates, clusters) of new points on an existing map.

    Each point goes to the similarity-weighted mean position of its `k` most similar map
    points, and takes their most common cluster.

    >>> coords, labels = place(np.array([[1.0, 0.0]]), np.eye(2), np.array([[0., 0.], [5., 5.]]),
    ...                        np.array([3, 4]), k=1)
    >>> coords.tolist(), labels.tolist()
    ([[0.0, 0.0]], [3])
    """
    if len(new_vectors) == 0 or len(map_vectors) == 0:
        return np.zeros((len(new_vectors), 2)), np.zeros(len(new_vectors), dtype=np.int64)
    k = min(k, len(map_vectors))
    scores = np.asarray(new_vectors, dtype=np.float32) @ np.asarray(map_vectors,
                                                                    dtype=np.float32).T
    nearest = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    weights = np.maximum(np.take_along_axis(scores, nearest, axis=1), 1e-6)
    coords = (map_coords[nearest] * weights[:, :, None]).sum(axis=1) / weights.sum(axis=1)[
        :, None]
    labels = np.array([np.bincount(map_clusters[row]).argmax() for row in nearest],
                      dtype=np.int64)
    return coords, labels
