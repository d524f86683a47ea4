"""The torch backend: the sentence-transformers model as it is (the reference for the others)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tasks.embed.base import DEFAULT_ALIASES, EmbedConfig, fingerprint_directory, resolve_model
from tasks.errors import ModelError


def quiet_transformers() -> None:
    """No download attempts for local weights, no progress bars, no length warnings.

    Chunking tokenizes whole documents on purpose (to split them): the "longer than the maximum
    sequence length" warning would be about a model call that is never made.
    """
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # the CLI draws its own bars
    transformers_logging.set_verbosity_error()


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once, offline when it is a local path."""

    def __init__(self, config: EmbedConfig, backend_name: str | None = None) -> None:
        location = resolve_model(config.model)
        local = Path(location)
        if local.exists():
            # Weights are on disk; never let a missing file turn into a hub download.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        quiet_transformers()
        from sentence_transformers import SentenceTransformer

        try:
            self.model = SentenceTransformer(location, device=config.device, backend="torch")
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load model {config.model!r} from {location}: {exc}") from exc
        self.name = config.model
        self.backend: str = backend_name or "torch"
        # Where to load it again: the bundled default by its name (site-packages moves with every
        # new environment), anything else by the path or hub name it was loaded from.
        self.location = config.model if config.model in DEFAULT_ALIASES else location
        self.tokenizer = self.model.tokenizer
        self.max_seq_length = int(self.model.max_seq_length or 0)
        self.dimension = int(self.model.get_embedding_dimension() or 0)
        self.normalizes = "Normalize" in self.modules
        self.fingerprint = identity_fingerprint(local, location, self.identity(self.backend))

    @property
    def modules(self) -> list[str]:
        return [type(m).__name__ for m in self.model]

    def identity(self, backend: str) -> dict[str, Any]:
        """What, beside the weights, decides the vectors: modules, length, pooling, backend."""
        modules = self.modules
        return {"modules": modules, "max_seq_length": self.max_seq_length,
                "pooling": getattr(self.model[1], "get_config_dict", dict)()
                if len(modules) > 1 else {}, "backend": backend}

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        vectors = self.model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                                    normalize_embeddings=not self.normalizes,
                                    show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def identity_fingerprint(local: Path, location: str, identity: dict[str, Any]) -> str:
    """The model fingerprint: weight files and identity, or the hub name and identity."""
    if local.exists():
        return fingerprint_directory(local, identity)
    return hashlib.sha256(json.dumps([location, identity], sort_keys=True,
                                     default=str).encode()).hexdigest()[:16]
