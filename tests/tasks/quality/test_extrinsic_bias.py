"""Extrinsic evaluators and the bias test, with the real model on data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.embed.embedding import embed_texts
from tasks.quality.bias import load_tests, weat
from tasks.quality.evalsets import load_labelled
from tasks.quality.extrinsic import clustering, linear_probe, structure
from tests.conftest import DATA_DIR

STSB = DATA_DIR / "stsb" / "sts-test.csv"


def test_probe_on_stsb_genres_beats_the_majority_class(real_embedder):
    if not STSB.exists():
        pytest.skip(f"STS-B not found under {STSB.parent} (set EMBEDPIPE_DATA_DIR)")
    labelled = load_labelled(STSB)
    assert set(labelled.labels) >= {"main-captions", "main-news", "main-forums"}
    rng = np.random.default_rng(0)  # 600 sentences keep the test quick
    take = rng.choice(len(labelled.texts), size=600, replace=False)
    texts = [labelled.texts[i] for i in take]
    labels = [labelled.labels[i] for i in take]
    vectors = embed_texts(texts, real_embedder, 64)
    probe = linear_probe("sts-test", vectors, labels)
    assert probe.metrics["accuracy"] > probe.metrics["majority_accuracy"] + 0.2
    assert 0 < probe.metrics["macro_f1"] <= 1
    clusters = clustering("sts-test", vectors, labels)
    assert clusters.metrics["v_measure"] > 0.1 and clusters.primary_metric == "v_measure"
    health = structure(vectors, 300)
    assert -1 <= health.metrics["silhouette"] <= 1


def test_weat_reproduces_the_direction_of_the_published_flowers_effect(real_embedder):
    """WEAT 1 (flowers vs insects, pleasant vs unpleasant): d = 1.50 in GloVe; a sentence
    encoder trained on human text shows the same direction, significantly."""
    test = next(t for t in load_tests() if t.name.startswith("weat1"))
    x, y, a, b = (embed_texts(words, real_embedder, 64) for words in (test.x, test.y, test.a,
                                                                      test.b))
    d, p = weat(x, y, a, b, permutations=2000)
    assert d > 0.5 and p < 0.01
    # Swapping the targets flips the sign: the statistic is about the pairing.
    d_swapped, _ = weat(y, x, a, b, permutations=100)
    assert d_swapped == pytest.approx(-d, abs=1e-6)


def test_labelled_files_of_every_shape(tmp_path):
    (tmp_path / "l.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": 2}\n')
    (tmp_path / "l.csv").write_text("text,label\nhello,x\nworld,y\n")
    assert load_labelled(tmp_path / "l.jsonl").labels == ["x", "2"]
    assert load_labelled(tmp_path / "l.csv").texts == ["hello", "world"]
