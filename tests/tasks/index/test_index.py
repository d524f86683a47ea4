"""ANN indexes: one contract for every backend, recall measured against exact search."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.embed.base import normalize_rows
from tasks.index.ann import BACKENDS, ExactIndex
from tasks.index.build import IndexConfig, VersionIndex, build_index, recall_at_k, tie_aware_recall


def unit_vectors(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    return normalize_rows(np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32))


@pytest.fixture(params=sorted(BACKENDS))
def index_of(request):
    """The contract holds for every backend: one line per backend, in `tasks.index.ann.BACKENDS`."""
    def make(vectors, labels):
        index = BACKENDS[request.param].build(vectors, labels, {})
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


def test_every_backend_saves_and_loads_the_same_index(index_of, tmp_path):
    vectors = unit_vectors(60)
    index = index_of(vectors, np.arange(60))
    index.save(tmp_path)
    loaded = type(index).load(tmp_path, dimension=32, count=60)
    loaded.set_ef(200)
    np.testing.assert_array_equal(loaded.query(vectors[:5], 3)[0], index.query(vectors[:5], 3)[0])


def test_repeated_texts_do_not_swamp_the_index():
    """10,000 chunks holding 6 distinct texts (one pasted paragraph, repeated): one ANN entry
    per text keeps recall perfect, and a hit stands for every chunk holding it."""
    distinct = unit_vectors(6)
    labels = np.arange(10_000) % 6  # chunk i holds text i % 6
    ann, report = build_index(distinct, np.arange(6), IndexConfig())
    index = VersionIndex.from_labels(ann, np.arange(10_000), labels)
    keys, scores = index.query(distinct[2:3], 5)
    assert report.recall == 1.0 and len(ann) == 6
    assert keys[0].tolist() == [2, 8, 14, 20, 26]  # the first chunks holding text 2
    np.testing.assert_allclose(scores[0], 1.0, atol=1e-5)


def test_recall_counts_tied_hits():
    # Two items tie for the 2nd place: finding either one is a correct top-2.
    assert tie_aware_recall(np.array([[0.9, 0.5]]), np.array([[0.9, 0.5]])) == 1.0
    assert tie_aware_recall(np.array([[0.9, 0.4]]), np.array([[0.9, 0.5]])) == 0.5


def test_tuning_reports_recall_on_queries_it_never_saw():
    vectors = unit_vectors(2000, d=64, seed=3)
    queries = unit_vectors(100, d=64, seed=4)
    _, report = build_index(vectors, np.arange(2000), IndexConfig(target_recall=0.95), queries)
    assert report.heldout_recall is not None and report.heldout_recall >= 0.95
    assert report.sample_queries == 100
