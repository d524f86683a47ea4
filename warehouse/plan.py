"""What publishing a corpus would change in the lake: the ingest plan. Reads only.

Input: cleaned documents (doc_id, content_hash), the model fingerprint and the chunking record;
the lake's latest and active state through a `LakeSession`. Output: an `IngestPlan`: which
documents to (re)chunk, which rows to drop, whether nothing changed at all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from warehouse.diff import DocumentDiff, diff_documents
from warehouse.store import LakeSession


def corpus_fingerprint(documents: pa.Table) -> str:
    """sha256 over sorted (doc_id, content_hash): equal iff the cleaned corpora are equal."""
    pairs = sorted(zip(documents["doc_id"].to_pylist(), documents["content_hash"].to_pylist(),
                       strict=True))
    digest = hashlib.sha256()
    for doc_id, content in pairs:
        digest.update(f"{doc_id}\x00{content}\n".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class IngestPlan:
    """What publishing `documents` would change relative to the lake's current state."""

    diff: DocumentDiff  # against the active version (what users see change)
    to_chunk: list[str]  # documents to (re)tokenize and chunk
    drop: list[str]  # documents whose rows are replaced or removed in the lake
    corpus_fingerprint: str
    noop: bool  # same corpus, model and chunker as the active version: nothing to publish
    active_version: int | None
    reused_chunks: int  # chunks of unchanged documents kept as they are


def plan_ingest(session: LakeSession, documents: pa.Table, model_fingerprint: str,
                chunking: dict[str, Any]) -> IngestPlan:
    """Compare `documents` with the lake.

    Chunks of unchanged documents are kept only when the latest published state was chunked
    with the same model (tokenizer) and chunking; otherwise every document is re-chunked (and
    its vectors still reused where a chunk's text is unchanged).
    """
    fingerprint = corpus_fingerprint(documents)
    active, head = session.active_version(), session.head_version()
    same_setup = head is not None and head.model_fingerprint == model_fingerprint \
        and head.chunker_config == chunking
    head_docs = session.head_documents()
    if same_setup:
        head_diff = diff_documents(head_docs, documents)
        to_chunk = head_diff.added + head_diff.changed
        drop = head_diff.changed + head_diff.deleted
        kept = sorted(head_diff.unchanged)
    else:  # another model or chunker: every document is chunked anew (vectors still reused)
        to_chunk, drop, kept = documents["doc_id"].to_pylist(), head_docs["doc_id"].to_pylist(), []
    before = session.documents_at(active) if active else _no_documents()
    noop = (active is not None and active.corpus_fingerprint == fingerprint
            and active.model_fingerprint == model_fingerprint
            and active.chunker_config == chunking)
    reused = session.count_head_chunks(kept) if kept else 0
    return IngestPlan(diff_documents(before, documents), sorted(to_chunk), sorted(drop),
                      fingerprint, noop, active.version_id if active else None, reused)


def _no_documents() -> pa.Table:
    return pa.table({"doc_id": pa.array([], pa.string()),
                     "content_hash": pa.array([], pa.string())})
