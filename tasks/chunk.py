"""Split documents into token-budget chunks the model sees whole.

Input: a documents table (`doc_id`, `text`, `n_tokens`), the model's tokenizer and its
max_seq_length. Output: a `schema.CHUNKS` table. Every chunk, special tokens included, is at most
`min(chunk.max_tokens, max_seq_length)` tokens, so the model truncates nothing; `char_start` and
`char_end` point back into the document (`text[char_start:char_end] == chunk text`).

Splitting is semchunk's (sentence, then clause, then word boundaries, driven by the model's own
tokenizer); documents that already fit the budget are one chunk without calling it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from tasks.schema import CHUNKS


class ChunkConfig(BaseModel):
    """Chunk budget in model tokens, special tokens included."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Capped at the model's max_seq_length: a longer chunk would be silently truncated.
    max_tokens: int = Field(256, ge=8)
    # Tokens shared by neighbouring chunks of one document, so a sentence cut at a boundary is
    # whole in one of them. Costs about overlap/max_tokens more chunks to embed.
    overlap_tokens: int = Field(32, ge=0)


def chunk_budget(config: ChunkConfig, max_seq_length: int, n_special: int) -> int:
    """Tokens of text (special tokens excluded) one chunk may hold."""
    return min(config.max_tokens, max_seq_length) - n_special


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_documents(
    documents: pa.Table, tokenizer: Any, max_seq_length: int, config: ChunkConfig
) -> pa.Table:
    """Chunks of every document, in document order.

    Args:
        documents: needs `doc_id`, `text` and `n_tokens` (text tokens without special tokens).
        tokenizer: the embedding model's tokenizer.
        max_seq_length: the model's limit, special tokens included.
        config: budget and overlap.
    """
    import semchunk

    n_special = tokenizer.num_special_tokens_to_add()
    budget = chunk_budget(config, max_seq_length, n_special)
    overlap = min(config.overlap_tokens, budget // 2) or None
    chunker = semchunk.chunkerify(tokenizer, chunk_size=budget)
    rows: list[dict[str, Any]] = []
    for doc_id, text, n_tokens in zip(
        documents["doc_id"].to_pylist(), documents["text"].to_pylist(),
        documents["n_tokens"].to_pylist(), strict=True,
    ):
        spans: list[tuple[int, int]] = [(0, len(text))]
        if n_tokens > budget:
            _, found = chunker(text, offsets=True, overlap=overlap)
            spans = _enforce_budget(text, list(found), tokenizer, budget)  # type: ignore[arg-type]
        for seq, (start, end) in enumerate(spans):
            piece = text[start:end]
            rows.append({"chunk_id": f"{doc_id}#{seq}", "doc_id": doc_id, "seq": seq,
                         "text": piece, "text_hash": text_hash(piece), "char_start": start,
                         "char_end": end, "n_tokens": 0})
    table = pa.Table.from_pylist(rows, schema=CHUNKS)
    counts = _token_counts(table["text"].to_pylist(), tokenizer)
    return table.set_column(table.schema.get_field_index("n_tokens"), "n_tokens",
                            pa.array(counts, type=pa.int32()))


def _token_counts(texts: list[str], tokenizer: Any) -> list[int]:
    if not texts:
        return []
    encoded = tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]
    return [len(ids) for ids in encoded]


def _enforce_budget(
    text: str, spans: list[tuple[int, int]], tokenizer: Any, budget: int
) -> list[tuple[int, int]]:
    """Split any span whose own tokenization exceeds the budget at token offsets.

    semchunk counts tokens of pieces it merges; a merged piece can tokenize one or two tokens
    longer than the sum (word pieces across a join). This guarantees the invariant regardless.
    """
    out: list[tuple[int, int]] = []
    for start, end in spans:
        enc = tokenizer(text[start:end], add_special_tokens=False, return_offsets_mapping=True,
                        verbose=False)
        offsets = enc["offset_mapping"]
        if len(offsets) <= budget:
            out.append((start, end))
            continue
        for i in range(0, len(offsets), budget):
            window = offsets[i : i + budget]
            out.append((start + window[0][0], start + window[-1][1]))
    return out
