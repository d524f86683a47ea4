"""Load the embedder `embed.backend` names: torch, or an exported runtime (built once first).

Input: an `EmbedConfig`. Output: an `Embedder`; the exported ones load without importing torch.
"""

from __future__ import annotations

from pathlib import Path

from tasks.embed.backends.registry import native_class
from tasks.embed.base import (
    DEFAULT_ALIASES,
    TORCH_BACKENDS,
    EmbedConfig,
    Embedder,
    resolve_model,
)
from tasks.errors import ModelError


def load(config: EmbedConfig) -> Embedder:
    """The embedder for `config` (model and backend), its export built once if needed.

    Raises:
        ModelError: an exported backend for a model that is not on local disk (export a hub
            model by downloading it first), or a model the backend cannot run.
    """
    if config.backend == "auto":
        config = config.model_copy(update={"backend": resolve_auto(config)})
    if config.backend in TORCH_BACKENDS:
        from tasks.embed.backends.torch import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(config)
    from tasks.embed.backends.exports import ensure_export, export_root

    source = Path(resolve_model(config.model))
    if not source.is_dir():
        raise ModelError(f"backend {config.backend} needs the model on disk; {config.model!r} "
                         "is not a local directory (use backend torch, or download it first)")
    directory = ensure_export(source, config.backend, export_root(config.export_dir))
    location = config.model if config.model in DEFAULT_ALIASES else str(source)
    embedder: Embedder = native_class(config.backend)(directory, config.model, location, source,
                                                      threads=_threads())
    return embedder


def resolve_auto(config: EmbedConfig) -> str:
    """The backend `auto` means for this model on this machine (measured once, then cached);
    torch for a model that is not on local disk (the exported backends need its files)."""
    from tasks.embed.backends.exports import export_root
    from tasks.embed.selection import select

    if not Path(resolve_model(config.model)).is_dir():
        return "torch"
    return select(config, load, export_root(config.export_dir)).chosen


def _threads() -> int:
    import os

    return max(1, min(len(os.sched_getaffinity(0)), 8))
