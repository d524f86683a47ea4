"""Split documents into token-budget chunks the model sees whole.

Input: a documents table (`doc_id`, `text`, `n_tokens`), the model's tokenizer and its
max_seq_length. Output: a `schema.CHUNKS` table. Every chunk, special tokens included, is at most
`min(chunk.max_tokens, max_seq_length)` tokens, so the model truncates nothing; `char_start` and
`char_end` point back into the document (`text[char_start:char_end] == chunk text`).

How: documents that fit the budget are one chunk without further work. The others are tokenized
once, all together (the fast tokenizer's batch call, with character offsets), and the chunk
boundaries are chosen on those tokens: each chunk takes as many tokens as the budget allows and
ends at the best break in its last half — a paragraph, else a sentence, else a clause, else a
word — and the next one starts `overlap_tokens` earlier, at a word start. Nothing is tokenized
again per candidate split; one batch count at the end checks every chunk against the budget
(a boundary inside a word can tokenize differently on its own) and splits the rare one over it.
"""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from tasks.prep.schema import CHUNKS

# Tokenizing a column at once is fast (Rust), but one batch of millions of texts holds every
# id list in memory at once; 1,024 texts keep that bounded with no loss of speed.
_BATCH = 1024
_SENTENCE_END = frozenset(".!?。！？")
_CLAUSE_END = frozenset(",;:)]—–")


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
        tokenizer: the embedding model's (fast) tokenizer.
        max_seq_length: the model's limit, special tokens included.
        config: budget and overlap.

    Returns:
        A `schema.CHUNKS` table; `n_tokens` counts special tokens.
    """
    n_special = tokenizer.num_special_tokens_to_add()
    budget = chunk_budget(config, max_seq_length, n_special)
    overlap = min(config.overlap_tokens, budget // 2)
    ids, texts = documents["doc_id"].to_pylist(), documents["text"].to_pylist()
    counts = documents["n_tokens"].to_pylist()
    long_rows = [i for i, n in enumerate(counts) if n > budget]
    spans: dict[int, list[tuple[int, int]]] = {}
    for start in range(0, len(long_rows), _BATCH):
        rows = long_rows[start:start + _BATCH]
        encoded = tokenizer([texts[i] for i in rows], add_special_tokens=False,
                            return_offsets_mapping=True, verbose=False)["offset_mapping"]
        for i, offsets in zip(rows, encoded, strict=True):
            spans[i] = split_spans(texts[i], offsets, budget, overlap)
    doc_col: list[str] = []
    seq_col: list[int] = []
    start_col: list[int] = []
    end_col: list[int] = []
    pieces: list[str] = []
    for i, text in enumerate(texts):
        for seq, (a, b) in enumerate(spans.get(i, [(0, len(text))])):
            doc_col.append(ids[i])
            seq_col.append(seq)
            start_col.append(a)
            end_col.append(b)
            pieces.append(text[a:b])
    pieces, start_col, end_col, seq_col, doc_col, counts = _within_budget(
        pieces, start_col, end_col, seq_col, doc_col, tokenizer, budget)
    n_tokens = [c + n_special for c in counts]
    return pa.table({
        "chunk_id": pa.array([f"{d}#{s}" for d, s in zip(doc_col, seq_col, strict=True)],
                             pa.string()),
        "doc_id": pa.array(doc_col, pa.string()), "seq": pa.array(seq_col, pa.int32()),
        "text": pa.array(pieces, pa.string()),
        "text_hash": pa.array([text_hash(p) for p in pieces], pa.string()),
        "char_start": pa.array(start_col, pa.int64()), "char_end": pa.array(end_col, pa.int64()),
        "n_tokens": pa.array(n_tokens, pa.int32()),
    }, schema=CHUNKS)


def split_spans(text: str, offsets: list[tuple[int, int]], budget: int, overlap: int
                ) -> list[tuple[int, int]]:
    """Character spans of the chunks of one document, from its tokens' character offsets.

    >>> split_spans("One two. Three four.", [(0, 3), (4, 7), (7, 8), (9, 14), (15, 19),
    ...                                      (19, 20)], 4, 0)
    [(0, 8), (9, 20)]
    """
    n = len(offsets)
    out: list[tuple[int, int]] = []
    start = 0
    while start < n:
        end = min(start + budget, n)
        if end < n:
            end = _best_break(text, offsets, start, end)
        out.append((offsets[start][0], offsets[end - 1][1]))
        if end >= n:
            break
        nxt = max(end - overlap, start + 1)
        while nxt < end and not _word_start(text, offsets, nxt):
            nxt += 1
        start = nxt
    return out


def _word_start(text: str, offsets: list[tuple[int, int]], i: int) -> bool:
    """May a chunk start at token i? Yes after a gap, or next to punctuation (a token of its
    own); never inside a word, where a piece tokenizes differently on its own."""
    if i == 0 or offsets[i][0] > offsets[i - 1][1]:
        return True
    before, after = text[offsets[i - 1][1] - 1], text[offsets[i][0]]
    return unicodedata.category(before)[0] == "P" or unicodedata.category(after)[0] == "P"


def _best_break(text: str, offsets: list[tuple[int, int]], start: int, end: int) -> int:
    """The token index to end a chunk before: the latest strongest break in the window's last
    half (paragraph 3, sentence 2, clause 1, word 0); `end` itself when no word starts there."""
    best, best_rank = end, -1
    for i in range(end, start + max((end - start) // 2, 1), -1):
        if not _word_start(text, offsets, i):
            continue
        gap = text[offsets[i - 1][1]:offsets[i][0]]
        last = text[offsets[i - 1][1] - 1]
        rank = 3 if "\n" in gap else 2 if last in _SENTENCE_END and gap else \
            1 if last in _CLAUSE_END else 0
        if rank > best_rank:
            best, best_rank = i, rank
            if rank == 3:
                break
    return best


def _within_budget(pieces: list[str], starts: list[int], ends: list[int], seqs: list[int],
                   docs: list[str], tokenizer: Any, budget: int) -> tuple[list, ...]:
    """Split any chunk whose own tokenization exceeds the budget at token offsets (rare: a
    boundary that tokenizes differently alone). Renumbers `seq` where a split happened.

    Returns the columns and each chunk's token count (special tokens excluded).
    """
    counts = _token_counts(pieces, tokenizer, special=False)
    if all(c <= budget for c in counts):
        return pieces, starts, ends, seqs, docs, counts
    out: tuple[list, list, list, list, list] = ([], [], [], [], [])
    last_doc, seq = None, 0
    for piece, a, count, doc in zip(pieces, starts, counts, docs, strict=True):
        parts = [(a, a + len(piece))]
        if count > budget:
            offsets = tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True,
                                verbose=False)["offset_mapping"]
            parts = [(a + offsets[i][0], a + offsets[min(i + budget, len(offsets)) - 1][1])
                     for i in range(0, len(offsets), budget)]
        for x, y in parts:
            seq = 0 if doc != last_doc else seq + 1
            last_doc = doc
            text = piece[x - a:y - a]
            for column, value in zip(out, (text, x, y, seq, doc), strict=True):
                column.append(value)
    return (*out, _token_counts(out[0], tokenizer, special=False))


def _token_counts(texts: list[str], tokenizer: Any, special: bool = True) -> list[int]:
    counts: list[int] = []
    for start in range(0, len(texts), _BATCH):
        batch = texts[start:start + _BATCH]
        if batch:
            encoded = tokenizer(batch, add_special_tokens=special, verbose=False)["input_ids"]
            counts.extend(len(ids) for ids in encoded)
    return counts


__all__ = ["ChunkConfig", "chunk_budget", "chunk_documents", "split_spans", "text_hash"]
