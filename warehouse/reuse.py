"""Vector reuse: which chunk texts already have a vector of a model, and which must be embedded.

Vectors are keyed by (model fingerprint, sha256 of the chunk text) across every version, so an
unchanged text is never embedded twice by the same model.
"""

from __future__ import annotations

import pyarrow as pa

from warehouse.store import LakeSession


def missing_vectors(session: LakeSession, chunks: pa.Table, model_fingerprint: str
                    ) -> tuple[list[str], list[str]]:
    """(hashes to embed, texts to embed): one per distinct chunk text without a vector yet."""
    hashes = chunks["text_hash"].to_pylist()
    known = session.known_hashes(model_fingerprint, hashes)
    todo: dict[str, str] = {}
    for h, text in zip(hashes, chunks["text"].to_pylist(), strict=True):
        if h not in known and h not in todo:
            todo[h] = text
    return list(todo), list(todo.values())

