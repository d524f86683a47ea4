"""The torch backends: the sentence-transformers model as it is (fp32, the reference for the
others), under bf16 autocast on the CPU (`torch-bf16`), or in fp16 on a GPU (`cuda-fp16`)."""

from __future__ import annotations

import contextlib
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

        self.backend: str = backend_name or config.backend
        if self.backend not in ("torch", "torch-bf16", "cuda-fp16"):
            self.backend = "torch"
        device = "cuda" if self.backend == "cuda-fp16" else config.device
        try:
            self.model = SentenceTransformer(location, device=device, backend="torch")
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load model {config.model!r} from {location}: {exc}") from exc
        if self.backend == "cuda-fp16":
            self.model.half()
        self.name = config.model
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
        import torch

        if self.backend == "cuda-fp16":  # as many texts a batch as the free memory holds
            batch_size = max(batch_size, cuda_batch_size(self.max_seq_length))
        precision = (torch.autocast("cpu", dtype=torch.bfloat16)
                     if self.backend == "torch-bf16" else contextlib.nullcontext())
        with precision:
            vectors = self.model.encode(list(texts), batch_size=batch_size,
                                        convert_to_numpy=True,
                                        normalize_embeddings=not self.normalizes,
                                        show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def cuda_batch_size(max_seq_length: int, bytes_per_token: int = 64 * 1024) -> int:
    """Texts per GPU batch: a quarter of the free memory, at a generous ~64 KiB of
    activations per token of a MiniLM-sized model in fp16, between 64 and 4,096."""
    import torch

    free, _ = torch.cuda.mem_get_info()
    return int(min(4096, max(64, free // 4 // (bytes_per_token * max_seq_length))))


def identity_fingerprint(local: Path, location: str, identity: dict[str, Any]) -> str:
    """The model fingerprint: weight files and identity, or the hub name and identity."""
    if local.exists():
        return fingerprint_directory(local, identity)
    return hashlib.sha256(json.dumps([location, identity], sort_keys=True,
                                     default=str).encode()).hexdigest()[:16]
