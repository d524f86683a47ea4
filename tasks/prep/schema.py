"""Column names and Arrow schemas of the tables the stages pass to each other.

Defined once here; `warehouse/schema.py` declares the same columns as lake DDL and a test checks
that the two agree.
"""

from __future__ import annotations

import pyarrow as pa

RAW_DOCUMENTS = pa.schema(
    [
        ("doc_id", pa.string()),
        ("title", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),  # file path relative to the source root
        ("row", pa.int64()),  # 1-based line/row in that file; 0 for whole-file documents
        ("markup", pa.string()),  # "text", "html" or "auto": how clean should read `text`
    ]
)

CLEANED = pa.schema(
    [
        ("doc_id", pa.string()),
        ("title", pa.string()),
        ("text", pa.string()),  # cleaned; the title heads it when there is one
        ("content_hash", pa.string()),  # sha256 of `text`
        ("source", pa.string()),
        ("row", pa.int64()),
    ]
)

# Cleaned documents with their token counts: what a version stores.
DOCUMENTS = CLEANED.append(
    pa.field("n_tokens", pa.int64())  # model tokens of `text`, without special tokens
).append(pa.field("n_unknown", pa.int64()))  # of which the tokenizer's unknown token

QUARANTINE = pa.schema(
    [
        ("source", pa.string()),
        ("row", pa.int64()),
        ("doc_id", pa.string()),
        ("reason", pa.string()),  # one of QUARANTINE_REASONS
        ("detail", pa.string()),  # a human sentence: what was wrong
        ("twin_doc_id", pa.string()),  # for duplicates: the kept document
    ]
)

QUARANTINE_REASONS = (
    "unreadable",  # the file could not be read (or is a link/special file never opened)
    "bad_encoding",  # invalid UTF-8 or a lone surrogate: not storable as text
    "bad_record",  # a JSONL/CSV/Parquet row that is not a usable record
    "missing_text",  # no text field, or it is not a string
    "empty",  # nothing left after cleaning
    "too_short",  # fewer characters than clean.min_chars after cleaning
    "duplicate_id",  # the same doc_id appeared earlier in the input
    "exact_duplicate",  # same cleaned text as twin_doc_id
    "near_duplicate",  # MinHash Jaccard >= clean.near_duplicate_threshold with twin_doc_id
)
DUPLICATE_REASONS = ("exact_duplicate", "near_duplicate")

CHUNKS = pa.schema(
    [
        ("chunk_id", pa.string()),  # "<doc_id>#<seq>"
        ("doc_id", pa.string()),
        ("seq", pa.int32()),
        ("text", pa.string()),
        ("text_hash", pa.string()),  # sha256 of `text`: the key of vector reuse
        ("char_start", pa.int64()),  # offsets into documents.text
        ("char_end", pa.int64()),
        ("n_tokens", pa.int32()),  # including the model's special tokens
    ]
)

