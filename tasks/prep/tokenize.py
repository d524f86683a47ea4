"""Count the embedding model's tokens per document.

Input: a table with a `text` column and a Hugging Face tokenizer (the model's own).
Output: the same table with `n_tokens` (without special tokens) and `n_unknown` (how many of them
are the tokenizer's unknown token) appended; the input table is not modified.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

# Tokenizing a column at once is fast (Rust), but one batch of millions of texts holds every
# id list in memory at once; 2,048 texts keep that bounded with no loss of speed.
_BATCH = 2048


def count_tokens(texts: list[str], tokenizer: Any) -> tuple[np.ndarray, np.ndarray]:
    """Token and unknown-token counts per text, special tokens excluded.

    Returns:
        (n_tokens, n_unknown), both int64 arrays of len(texts).
    """
    n_tokens = np.zeros(len(texts), dtype=np.int64)
    n_unknown = np.zeros(len(texts), dtype=np.int64)
    unk = tokenizer.unk_token_id
    for start in range(0, len(texts), _BATCH):
        batch = texts[start : start + _BATCH]
        ids = tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]
        n_tokens[start : start + len(batch)] = [len(x) for x in ids]
        if unk is not None:
            n_unknown[start : start + len(batch)] = [x.count(unk) for x in ids]
    return n_tokens, n_unknown


def tokenize_documents(documents: pa.Table, tokenizer: Any) -> pa.Table:
    """`documents` with `n_tokens` and `n_unknown` columns appended."""
    n_tokens, n_unknown = count_tokens(documents["text"].to_pylist(), tokenizer)
    return documents.append_column("n_tokens", pa.array(n_tokens)).append_column(
        "n_unknown", pa.array(n_unknown)
    )
