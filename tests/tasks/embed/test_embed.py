"""Embedding: unit float32 vectors in input order, from the real model and the test model."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.embed.base import EmbedConfig, default_model_path, fingerprint_directory
from tasks.embed.embedding import embed_texts
from tasks.embed.hashing import HashEmbedder
from tasks.embed.selection import (
    MIN_INVARIANCE,
    Measurement,
    calibration_texts,
    choose,
    cpu_flags,
    cuda_available,
    invariance,
)
from tests.conftest import run_python

EXPORTED = ("onnx", "onnx-int8", "openvino", "openvino-fp32")
# Every backend `auto` may choose (onnx-int8 quantizes activations per batch: refused).
SELECTABLE = ("torch", "torch-bf16", "cuda-fp16", "onnx", "openvino", "openvino-fp32")
BF16 = bool({"amx_bf16", "avx512_bf16"} & set(cpu_flags()))


def backend_param(backend: str):
    """A backend as a test parameter, skipped with the reason where this machine lacks it."""
    marks = []
    if backend == "torch-bf16":
        marks = [pytest.mark.skipif(not BF16, reason="the CPU has no AMX or AVX-512 BF16: "
                                    "torch-bf16 is never a candidate here")]
    if backend == "cuda-fp16":
        marks = [pytest.mark.skipif(not cuda_available(), reason="torch sees no GPU here: the "
                                    "CUDA backend is measured on a machine with one")]
    return pytest.param(backend, marks=marks, id=backend)


@pytest.fixture(scope="session")
def exported(real_embedder):
    """The exported backends of the bundled model (built once per machine, then reused)."""
    from tasks.embed.embedding import load_embedder

    return {backend: load_embedder(EmbedConfig(backend=backend)) for backend in EXPORTED}


def load_backend(backend: str, real_embedder, exported):
    from tasks.embed.embedding import load_embedder

    if backend == "hash":
        return HashEmbedder(dimension=32)
    if backend in exported:
        return exported[backend]
    return real_embedder if backend == "torch" else load_embedder(EmbedConfig(backend=backend))


@pytest.fixture(params=[backend_param(b) for b in
                        ("torch", "torch-bf16", "cuda-fp16", *EXPORTED, "hash")])
def embedder(request, real_embedder, exported):
    """The contract holds for every embedder: the same test runs against each backend."""
    return load_backend(request.param, real_embedder, exported)


@pytest.mark.parametrize("backend", [backend_param(b) for b in (*SELECTABLE, "hash")])
def test_every_selectable_backend_is_batch_invariant(backend, real_embedder, exported):
    """A text alone and inside a batch of 64 mixed texts (long ones pad it) get the same
    vector: queries are embedded alone, documents in batches, and both must mean the same."""
    embedder = load_backend(backend, real_embedder, exported)
    assert invariance(embedder, calibration_texts(), sample=16) >= MIN_INVARIANCE


@pytest.mark.parametrize("backend", [backend_param(b) for b in (*SELECTABLE, "hash")])
def test_dask_shard_size_does_not_change_vectors(backend, real_embedder, exported):
    """A Dask worker embeds its shard alone (`tasks/embed/distributed.py`): shards of 3 texts and
    shards of 10 must store the same vectors, or two ingests of one corpus would differ."""
    embedder = load_backend(backend, real_embedder, exported)
    texts = calibration_texts()[:30]

    def by_shards(size: int) -> np.ndarray:
        return np.vstack([embed_texts(texts[i:i + size], embedder, 64)
                          for i in range(0, len(texts), size)])

    cosines = np.sum(by_shards(3) * by_shards(10), axis=1)
    assert float(cosines.min()) >= MIN_INVARIANCE


def test_vectors_are_unit_float32_in_input_order(embedder):
    texts = ["a short text", "a much longer text " * 20, "a short text", "naïve café 日本"]
    vectors = embed_texts(texts, embedder, batch_size=2)
    assert vectors.shape == (4, embedder.dimension) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Sorting by length inside must not reorder the output.
    single = embed_texts([texts[1]], embedder, batch_size=2)
    if embedder.backend == "onnx-int8":
        # Dynamic int8 quantizes activations with one scale per batch: a text's vector moves a
        # little with its batch companions (vectors are stored once and reused, so a version
        # is still consistent), never beyond the backend's agreement bound.
        assert float(vectors[0] @ vectors[2]) >= 0.99
        assert float(single[0] @ vectors[1]) >= 0.99
    elif embedder.backend in ("torch-bf16", "cuda-fp16", "openvino"):
        # Half-precision arithmetic (openvino runs bf16 where the CPU has it): the same text
        # agrees within the batch-invariance bound auto holds every backend to, not bit for bit.
        assert float(vectors[0] @ vectors[2]) >= MIN_INVARIANCE
        assert float(single[0] @ vectors[1]) >= MIN_INVARIANCE
    else:
        np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)  # same text, same vector
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


@pytest.mark.parametrize(("backend", "bound"), [("onnx", 0.99), ("onnx-int8", 0.98),
                                                ("openvino", 0.99), ("openvino-fp32", 0.99)])
def test_exported_backends_agree_with_torch(real_embedder, exported, backend, bound):
    texts = ["A cat sits on the mat.", "Vitamin D deficiency and bone density in adults.",
             "The GIL lets one thread run Python bytecode at a time. " * 12,
             "naïve café 日本語", "Quarterly revenue grew by four percent."]
    reference = embed_texts(texts, real_embedder, 4)
    other = embed_texts(texts, exported[backend], 4)
    assert float(np.min(np.sum(reference * other, axis=1))) >= bound
    # Different backends never share vectors: the fingerprint names the backend.
    assert exported[backend].fingerprint != real_embedder.fingerprint
    assert exported[backend].dimension == 384 and exported[backend].max_seq_length == 256
    assert other.dtype == np.float32


def test_exported_backends_load_without_torch(exported):
    """What `embedpipe search` needs with an exported backend imports no torch (fast start)."""
    code = ("import sys; from tasks.embed.base import EmbedConfig; "
            "from tasks.embed.embedding import load_embedder; "
            "e = load_embedder(EmbedConfig(backend='onnx-int8')); e.encode(['x'], 1); "
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') "
            "if m in sys.modules))")
    done = run_python(code)
    assert done.stdout.strip() == "[]", done.stderr


def row(backend: str, speed: float, cosine: float = 1.0, invariant: float = 1.0) -> Measurement:
    faithful = cosine >= 0.999 and invariant >= MIN_INVARIANCE
    return Measurement(backend, speed, speed / 100, cosine, invariant, faithful)


def test_auto_picks_the_fastest_faithful_backend():
    rows = [row("torch", 100), row("onnx", 120),
            row("onnx-int8", 300, cosine=0.9889, invariant=0.986),  # fastest, but per batch
            row("openvino", 280, cosine=0.99997),
            row("torch-bf16", 400, cosine=0.9981)]  # fastest of all, but not faithful
    assert choose(rows) == "openvino"
    assert choose([row("torch", 100), row("onnx-int8", 300, invariant=0.99)]) == "torch"
    assert choose([]) == "torch"  # nothing measured: the reference


def test_the_calibration_sample_is_mixed_lengths():
    texts = calibration_texts()
    lengths = sorted(len(t.split()) for t in texts)
    assert len(texts) >= 200 and lengths[0] <= 12 and lengths[-1] >= 150
