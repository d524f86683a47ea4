"""The base of the exported backends: tokenize with `tokenizers`, run a graph, pool in NumPy.

No torch, no transformers on this path (a search from a shell starts in well under a second):
the `tokenizers` package reads the model's own tokenizer.json, and mean (or CLS) pooling and L2
normalisation are a few NumPy lines. Subclasses (`onnx.py`, `openvino.py`) only open and run
the graph.
`tokenizer`, the Hugging Face tokenizer that chunking needs, loads on first use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np


class NativeEmbedder:
    """An exported model directory (see `tasks/backends/exports.py`) as an `Embedder`."""

    def __init__(self, directory: Path, name: str, location: str, source: Path,
                 threads: int) -> None:
        from tokenizers import Tokenizer

        meta = json.loads((directory / "meta.json").read_text())
        self.directory, self.source = directory, source
        self.name, self.location = name, location
        self.backend: str = meta["backend"]
        self.fingerprint: str = meta["fingerprint"]
        self.dimension: int = int(meta["dimension"])
        self.max_seq_length: int = int(meta["max_seq_length"])
        self.pooling: str = meta["pooling"]
        self.threads = threads
        self.fast = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.fast.enable_truncation(max_length=self.max_seq_length)
        pad_id = int(meta.get("pad_id", 0))
        self.fast.enable_padding(pad_id=pad_id, pad_token=meta.get("pad_token", "[PAD]"))
        self.inputs = self.open_graph(directory, threads)

    @cached_property
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer of the source model (chunking counts and splits with it)."""
        from tasks.embed.backends.torch import quiet_transformers

        quiet_transformers()
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.source))

    def open_graph(self, directory: Path, threads: int) -> set[str]:
        """Load the runtime's graph from `directory`; returns the names of its inputs."""
        raise NotImplementedError

    def run(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        """The model's last hidden state (batch, tokens, dimension)."""
        raise NotImplementedError

    def feed(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> dict[str, np.ndarray]:
        """The token arrays by input name, only those the graph takes (some drop token types)."""
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: array for name, array in arrays.items() if name in self.inputs}

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Unit vectors, float32, one row per text (texts length-sorted within the call)."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            encoded = self.fast.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            types = np.array([e.type_ids for e in encoded], dtype=np.int64)
            out[idx] = self._pool(self.run(ids, mask, types), mask)
        return out

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
