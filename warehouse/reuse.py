"""Vector reuse: which chunk texts already have a vector of a model, and which must be embedded.

Vectors are keyed by (model fingerprint, sha256 of the chunk text) across every version, so an
unchanged text is never embedded twice by the same model.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from warehouse.store import LakeSession


def missing_texts(session: LakeSession, chunks: pa.Table, model_fingerprint: str) -> pa.Table:
    """(text_hash, text) to embed: one row per distinct chunk text without a vector yet, in
    order of first appearance. Computed in Arrow: no Python object per chunk."""
    hashes = chunks["text_hash"]
    distinct = pc.unique(hashes)
    first = pc.index_in(distinct, value_set=hashes)  # the row where each text appears first
    known = session.known_hashes(model_fingerprint, distinct)
    todo = pc.invert(pc.is_in(distinct, value_set=known))
    return chunks.select(["text_hash", "text"]).take(first.filter(todo))


def missing_vectors(session: LakeSession, chunks: pa.Table, model_fingerprint: str
                    ) -> tuple[list[str], list[str]]:
    """(hashes to embed, texts to embed) as lists: `missing_texts` for small tables."""
    todo = missing_texts(session, chunks, model_fingerprint)
    return todo["text_hash"].to_pylist(), todo["text"].to_pylist()

