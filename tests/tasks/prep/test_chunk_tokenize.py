"""Tokenize and chunk with the real model's tokenizer: budgets are exact, offsets map back."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tasks.prep.chunk import ChunkConfig, chunk_budget, chunk_documents
from tasks.prep.tokenize import count_tokens, tokenize_documents


def docs(tokenizer, texts: list[str]) -> pa.Table:
    table = pa.table({"doc_id": [f"d{i}" for i in range(len(texts))], "text": texts})
    return tokenize_documents(table, tokenizer)


def test_token_counts_exclude_special_tokens(tokenizer):
    n, unknown = count_tokens(["hello world", "", "naïve café 日本"], tokenizer)
    assert n.tolist()[:2] == [2, 0]
    assert n[2] > 0 and unknown.tolist()[0] == 0


def test_tokenize_appends_columns_without_touching_input(tokenizer):
    table = pa.table({"doc_id": ["a"], "text": ["hello world"]})
    out = tokenize_documents(table, tokenizer)
    assert table.column_names == ["doc_id", "text"]
    assert out["n_tokens"].to_pylist() == [2]


def words(tokenizer, n_tokens: int) -> str:
    """A text of exactly n_tokens tokens ("alpha" is one token)."""
    text = " ".join(["alpha"] * n_tokens)
    assert count_tokens([text], tokenizer)[0][0] == n_tokens
    return text


@pytest.mark.parametrize(("extra", "expected_chunks"), [(0, 1), (1, 2)])
def test_chunk_exactly_at_budget_is_one_chunk(tokenizer, extra, expected_chunks):
    config = ChunkConfig(max_tokens=64, overlap_tokens=0)
    budget = chunk_budget(config, 256, tokenizer.num_special_tokens_to_add())  # 62
    chunks = chunk_documents(docs(tokenizer, [words(tokenizer, budget + extra)]), tokenizer, 256,
                             config)
    assert chunks.num_rows == expected_chunks
    assert max(chunks["n_tokens"].to_pylist()) <= 64  # special tokens included


def test_long_documents_respect_the_model_limit_and_offsets(tokenizer):
    sentences = " ".join(f"Sentence number {i} talks about topic {i % 7} in some detail."
                         for i in range(300))
    table = docs(tokenizer, [sentences, "short one"])
    config = ChunkConfig(max_tokens=512, overlap_tokens=16)  # capped at the model's 256
    chunks = chunk_documents(table, tokenizer, 256, config)
    assert max(chunks["n_tokens"].to_pylist()) <= 256
    texts = dict(zip(table["doc_id"].to_pylist(), table["text"].to_pylist(), strict=True))
    for row in chunks.to_pylist():
        assert texts[row["doc_id"]][row["char_start"]:row["char_end"]] == row["text"]
    assert chunks.filter(pa.compute.equal(chunks["doc_id"], "d0"))["seq"].to_pylist() == \
        list(range(chunks.num_rows - 1))
    assert chunks["chunk_id"].to_pylist()[-1] == "d1#0"


def test_overlap_repeats_text_across_neighbours(tokenizer):
    text = " ".join(f"Fact {i} is stated here." for i in range(200))
    table = docs(tokenizer, [text])
    plain = chunk_documents(table, tokenizer, 256, ChunkConfig(max_tokens=64, overlap_tokens=0))
    overlapping = chunk_documents(table, tokenizer, 256,
                                  ChunkConfig(max_tokens=64, overlap_tokens=16))
    assert overlapping.num_rows > plain.num_rows
    starts, ends = overlapping["char_start"].to_pylist(), overlapping["char_end"].to_pylist()
    assert any(s < e for s, e in zip(starts[1:], ends[:-1], strict=True))


def test_unicode_and_empty_table(tokenizer):
    table = docs(tokenizer, ["Ünïcödé tëxt — with “quotes” and emoji 🙂"])
    chunks = chunk_documents(table, tokenizer, 256, ChunkConfig())
    assert chunks["text"].to_pylist() == table["text"].to_pylist()
    empty = chunk_documents(table.slice(0, 0), tokenizer, 256, ChunkConfig())
    assert empty.num_rows == 0
