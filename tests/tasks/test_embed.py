"""Embedding: unit float32 vectors in input order, from the real model and the test model."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.embed import (
    EmbedConfig,
    HashEmbedder,
    default_model_path,
    embed_texts,
    fingerprint_directory,
)


@pytest.fixture(params=["real", "hash"])
def embedder(request, real_embedder):
    """The contract holds for every embedder: the same test runs against each."""
    return real_embedder if request.param == "real" else HashEmbedder(dimension=32)


def test_vectors_are_unit_float32_in_input_order(embedder):
    texts = ["a short text", "a much longer text " * 20, "a short text", "naïve café 日本"]
    vectors = embed_texts(texts, embedder, batch_size=2)
    assert vectors.shape == (4, embedder.dimension) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)  # same text, same vector
    # Sorting by length inside must not reorder the output.
    single = embed_texts([texts[1]], embedder, batch_size=2)
    np.testing.assert_allclose(single[0], vectors[1], atol=1e-5)


def test_empty_input(embedder):
    assert embed_texts([], embedder, batch_size=8).shape == (0, embedder.dimension)


def test_progress_reaches_the_total():
    seen: list[int] = []
    embed_texts([f"text {i}" for i in range(50)], HashEmbedder(8), batch_size=2,
                on_progress=seen.append)
    assert seen[-1] == 50 and seen == sorted(seen)


def test_real_model_meaning_and_identity(real_embedder):
    assert real_embedder.dimension == 384 and real_embedder.max_seq_length == 256
    a, b, c = embed_texts(["A cat sits on the mat.", "A kitten is sitting on a rug.",
                           "Quarterly revenue grew by four percent."], real_embedder, 8)
    assert a @ b > a @ c + 0.3
    # The fingerprint hashes files and pooling config: stable, and unlike any other model's.
    assert real_embedder.fingerprint == fingerprint_directory(default_model_path(), {
        "modules": ["Transformer", "Pooling", "Normalize"], "max_seq_length": 256,
        "pooling": real_embedder.model[1].get_config_dict(), "backend": "torch"})
    assert real_embedder.fingerprint != HashEmbedder().fingerprint


def test_config_rejects_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        EmbedConfig(backend="tensorflow")  # type: ignore[arg-type]
