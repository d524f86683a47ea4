"""A version of the warehouse: one row of the `versions` table, typed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Version:
    """One row of `versions`, typed."""

    version_id: int
    parent_id: int | None
    status: str
    pinned: bool
    model_name: str
    model_location: str
    model_fingerprint: str
    model_backend: str | None  # None: written before backends were recorded (torch)
    dimension: int
    chunker_config: dict[str, Any]
    corpus_fingerprint: str
    lake_snapshot: int
    n_documents: int
    n_chunks: int
    n_embedded: int
    n_reused: int
    n_quarantined: int
    max_chunk_key: int
    created_at: Any
    message: str | None
    summary: dict[str, Any]
    index_meta: dict[str, Any]
    gate: dict[str, Any]
    # The source file(s) and read/clean settings it was ingested from (tasks.prep.chain.source_key);
    # None for a retrain's corpus or a warehouse from before sources were fingerprinted.
    source_fingerprint: str | None = None
    # The packages that computed its vectors ({"torch": "2.13.0+cpu", ...}): two versions of
    # one model whose vectors differ can tell why. Empty for a version from before.
    runtime: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Version:
        # .get: a warehouse from an older embedpipe lacks columns until its next writer adds them
        parsed: dict[str, Any] = {f.name: row.get(f.name) for f in fields(cls)}
        for key in ("chunker_config", "summary", "index_meta", "gate", "runtime"):
            parsed[key] = json.loads(parsed[key]) if parsed[key] else {}
        return cls(**parsed)

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["created_at"] = str(self.created_at)
        return out
