"""Embedding backends behind the one `Embedder` contract: torch and three exported runtimes.

`load(config)` gives the embedder `embed.backend` names. The exported ones (`onnx`, `onnx-int8`,
`openvino`) are built from the torch model on first use (`exports.py`) and then load without
importing torch. The same contract test runs against every backend
(`tests/tasks/test_embed.py`), each must agree with torch (cosine >= 0.99; int8 >= 0.98).
"""

from __future__ import annotations

from pathlib import Path

from tasks.embed import DEFAULT_ALIASES, EmbedConfig, Embedder, resolve_model
from tasks.errors import ModelError

__all__ = ["load", "native_class"]


def native_class(backend: str) -> type:
    """The embedder class of an exported backend."""
    if backend == "openvino":
        from tasks.backends.openvino import OpenVINOEmbedder

        return OpenVINOEmbedder
    from tasks.backends.onnx import OnnxEmbedder

    return OnnxEmbedder


def load(config: EmbedConfig) -> Embedder:
    """The embedder for `config` (model and backend), its export built once if needed.

    Raises:
        ModelError: an exported backend for a model that is not on local disk (export a hub
            model by downloading it first), or a model the backend cannot run.
    """
    if config.backend == "torch":
        from tasks.backends.torch import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(config)
    from tasks.backends.exports import ensure_export, export_root

    source = Path(resolve_model(config.model))
    if not source.is_dir():
        raise ModelError(f"backend {config.backend} needs the model on disk; {config.model!r} "
                         "is not a local directory (use backend torch, or download it first)")
    directory = ensure_export(source, config.backend, export_root(config.export_dir))
    location = config.model if config.model in DEFAULT_ALIASES else str(source)
    embedder: Embedder = native_class(config.backend)(directory, config.model, location, source,
                                                      threads=_threads())
    return embedder


def _threads() -> int:
    import os

    return max(1, min(len(os.sched_getaffinity(0)), 8))
