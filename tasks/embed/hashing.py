"""A deterministic stand-in embedder for plumbing tests: no torch, no weights, same contract.

Input: texts. Output: unit vectors of feature-hashed words (similar texts get similar vectors).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from tasks.embed.base import default_model_path, normalize_rows


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
