"""Embed chunk texts into L2-normalised float32 vectors with the embedder a config or version names.

Input: a list of texts and an `Embedder` (`load_embedder(config)`, `version_embedder(version)`).
Output: an (n, dimension) float32 array, row i the unit vector of text i; `vectors_table` turns
it into rows of the lake's `embeddings` table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa

from tasks.embed.backends.loader import load
from tasks.embed.base import EmbedConfig, Embedder, normalize_rows
from tasks.embed.hashing import HashEmbedder
from tasks.errors import ModelError


def load_embedder(config: EmbedConfig) -> Embedder:
    """The embedder `config` names. Loads weights; call once per process and pass it on.

    `torch` runs sentence-transformers; `onnx`, `onnx-int8` and `openvino` run an exported copy
    of the same model (built once per model and kept, see `tasks/backends/exports.py`) without
    importing torch.
    """
    if config.model == "hash":
        return HashEmbedder()
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
