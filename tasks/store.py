"""The storage stage: decide what a run changes, then publish, index and promote a version.

Input: cleaned documents, the model's identity and the chunker config; the warehouse (through a
`WarehouseWriter`). Output: an `IngestPlan` (what changes, what is reused), then a `Version`.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tasks.index import HnswIndex, IndexConfig, IndexReport, build_index
from warehouse.diff import DocumentDiff, diff_documents
from warehouse.store import LakeSession, Version, Warehouse
from warehouse.writer import Changes, VersionDraft, WarehouseWriter


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
                chunker_config: dict[str, Any]) -> IngestPlan:
    """Compare `documents` with the lake. Pure reads; writes nothing.

    Chunks of unchanged documents are kept only when the latest published state was chunked
    with the same model (tokenizer) and chunker config; otherwise every document is re-chunked
    (and its vectors still reused where a chunk's text is unchanged).
    """
    fingerprint = corpus_fingerprint(documents)
    active, head = session.active_version(), session.head_version()
    same_setup = head is not None and head.model_fingerprint == model_fingerprint \
        and head.chunker_config == chunker_config
    head_docs = session.head_documents()
    new_ids = documents["doc_id"].to_pylist()
    if same_setup:
        head_diff = diff_documents(head_docs, documents)
        to_chunk = head_diff.added + head_diff.changed
        drop = head_diff.changed + head_diff.deleted
        kept = set(head_diff.unchanged)
    else:  # another model or chunker: every document is chunked anew (vectors still reused)
        to_chunk, drop, kept = list(new_ids), head_docs["doc_id"].to_pylist(), set()
    diff = diff_documents(_documents_at(session.warehouse, active), documents)
    noop = (active is not None and active.corpus_fingerprint == fingerprint
            and active.model_fingerprint == model_fingerprint
            and active.chunker_config == chunker_config)
    reused = session.head_chunks(sorted(kept)).num_rows if kept else 0
    return IngestPlan(diff, sorted(to_chunk), sorted(drop), fingerprint, noop,
                      active.version_id if active else None, reused)


def _documents_at(warehouse: Warehouse, version: Version | None) -> pa.Table:
    if version is None:
        return pa.table({"doc_id": pa.array([], pa.string()),
                         "content_hash": pa.array([], pa.string())})
    return warehouse.documents_state(version)


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


def vectors_table(model_fingerprint: str, hashes: list[str], vectors: np.ndarray) -> pa.Table:
    n, dim = len(hashes), vectors.shape[1]
    offsets = pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32))
    lists = pa.ListArray.from_arrays(offsets, pa.array(vectors[:n].reshape(-1), pa.float32()))
    return pa.table({"model_fingerprint": pa.array([model_fingerprint] * len(hashes), pa.string()),
                     "text_hash": pa.array(hashes, pa.string()), "vector": lists})


def publish(writer: WarehouseWriter, draft: VersionDraft, documents: pa.Table, chunks: pa.Table,
            plan: IngestPlan, vectors: pa.Table, quarantine: pa.Table) -> Version:
    """Commit the run as a candidate version (documents limited to the re-chunked ones)."""
    mask = pc.is_in(documents["doc_id"], pa.array(plan.to_chunk, pa.string()))
    changes = Changes(documents=documents.filter(mask), chunks=chunks,
                      drop_doc_ids=plan.drop, vectors=vectors, quarantine=quarantine,
                      n_reused=chunks.num_rows - vectors.num_rows + plan.reused_chunks)
    return writer.publish(draft, changes)


def embedded_tokens(chunks: pa.Table, vectors: pa.Table) -> int:
    """Tokens of the chunk texts that were embedded (not reused) in a run."""
    mask = pc.is_in(chunks["text_hash"], vectors["text_hash"])
    return int(pc.sum(chunks.filter(mask)["n_tokens"]).as_py() or 0)


def index_meta(version: Version, report: IndexReport) -> dict[str, Any]:
    """What ties an index file to its version; checked when the index is loaded."""
    return {"version_id": version.version_id, "lake_snapshot": version.lake_snapshot,
            "model_fingerprint": version.model_fingerprint, "count": report.count,
            "dimension": report.dimension}


def build_version_index(warehouse: Warehouse, version: Version, config: IndexConfig,
                        queries: np.ndarray | None = None) -> IndexReport:
    """Build, check and save the HNSW index of `version` under `indexes/<version_id>/`.

    The files are written to a temporary directory and renamed into place, so a crash never
    leaves a half-written index where a reader would load it.
    """
    keys, vectors = warehouse.vectors(version)
    index, report = build_index(vectors, keys, config, queries)
    final = warehouse.index_dir(version.version_id)
    staging = final.with_name(final.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    index.save(staging, {**index_meta(version, report), "report": report.as_dict()})
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return report


def load_version_index(warehouse: Warehouse, version: Version) -> HnswIndex:
    """The saved index of `version`, refusing one built for anything else."""
    expect = {"version_id": version.version_id, "lake_snapshot": version.lake_snapshot,
              "model_fingerprint": version.model_fingerprint, "count": version.n_chunks}
    return HnswIndex.load(warehouse.index_dir(version.version_id), expect)
