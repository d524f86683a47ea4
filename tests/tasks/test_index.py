"""ANN indexes: one contract for every backend, recall measured against exact search."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.embed import normalize_rows
from tasks.errors import IndexMismatch
from tasks.index import ExactIndex, HnswIndex, IndexConfig, build_index, recall_at_k


def unit_vectors(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    return normalize_rows(np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32))


@pytest.fixture(params=["exact", "hnsw"])
def index_of(request):
    def make(vectors, labels):
        if request.param == "exact":
            return ExactIndex(vectors, labels)
        index = HnswIndex.build(vectors, labels, IndexConfig())
        index.set_ef(200)
        return index
    return make


def test_each_vector_finds_itself_first_with_its_label(index_of):
    vectors = unit_vectors(300)
    labels = np.arange(1000, 1300)  # labels are chunk keys, not positions
    labels_found, scores = index_of(vectors, labels).query(vectors[:20], 5)
    assert labels_found[:, 0].tolist() == labels[:20].tolist()
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-4)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_k_larger_than_the_index(index_of):
    labels, _ = index_of(unit_vectors(3), np.arange(3)).query(unit_vectors(1, seed=9), 10)
    assert labels.shape == (1, 3)


def test_tuned_ef_reaches_the_recall_target():
    vectors = unit_vectors(3000, d=64, seed=1)
    queries = unit_vectors(100, d=64, seed=2)  # not in the index
    index, report = build_index(vectors, np.arange(3000), IndexConfig(target_recall=0.99),
                                queries)
    truth, _ = ExactIndex(vectors, np.arange(3000)).query(queries, 10)
    assert recall_at_k(index.query(queries, 10)[0], truth) >= 0.99
    assert report.recall >= 0.99 and report.ef == index.ef and report.count == 3000


def test_saved_index_refuses_another_version(tmp_path):
    vectors = unit_vectors(50)
    index, report = build_index(vectors, np.arange(50), IndexConfig())
    meta = {"version_id": 3, "count": 50, "dimension": 32}
    index.save(tmp_path / "idx", meta)
    loaded = HnswIndex.load(tmp_path / "idx", {"version_id": 3, "count": 50})
    assert loaded.query(vectors[:1], 1)[0][0, 0] == 0
    with pytest.raises(IndexMismatch, match="version_id: index has 3, version has 4"):
        HnswIndex.load(tmp_path / "idx", {"version_id": 4})
    with pytest.raises(IndexMismatch, match="no index here"):
        HnswIndex.load(tmp_path / "nothing", {})
