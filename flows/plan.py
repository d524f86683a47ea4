"""`embedpipe plan`: what an ingest of SOURCE would do and cost, without writing anything.

Runs the same load, clean, tokenize and chunk code as the ingest (no Prefect), compares with the
warehouse's latest state and counts the chunk texts that have no vector yet. The time estimate
uses the embedding throughput measured by the last ingest of this warehouse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from flows.config import EmbedpipeConfig
from tasks.embed.embedding import load_embedder
from tasks.prep import chain
from warehouse.plan import plan_ingest
from warehouse.reuse import missing_vectors
from warehouse.store import Warehouse

# Measured here (all-MiniLM-L6-v2, torch, 2 CPU cores); used until an ingest measured its own.
DEFAULT_TOKENS_PER_SECOND = 4000.0


class PlanReport(BaseModel):
    source: str
    active_version: int | None
    noop: bool
    documents: dict[str, int]
    document_ids: dict[str, list[str]]  # the first 50 of each kind
    chunks_total: int
    chunks_to_embed: int
    chunks_reused: int
    tokens_to_embed: int
    tokens_per_second: float
    throughput_measured: bool
    estimated_embed_seconds: float
    quarantined: int


def measured_throughput(warehouse: Warehouse) -> float | None:
    """Tokens/s of the most recent ingest that embedded anything, from its summary."""
    if not warehouse.exists():
        return None
    for version in reversed(warehouse.versions()):
        seconds = version.summary.get("stage_seconds", {}).get("embed")
        tokens = version.summary.get("tokens_embedded")
        if seconds and tokens:
            return float(tokens) / float(seconds)
    return None


def plan_source(source: Path, config: EmbedpipeConfig) -> PlanReport:
    """Read, clean and chunk `source` as an ingest would, and compare with the warehouse."""
    corpus = chain.read_corpus(source, config.source, config.clean)
    warehouse = config.warehouse.open()
    embedder = load_embedder(config.embed.keeping(warehouse.recorded_backend()))
    chunking = chain.Chunking(config.chunk, embedder.max_seq_length)
    documents = corpus.documents
    if warehouse.exists():
        with warehouse.session() as session:
            plan = plan_ingest(session, documents, embedder.fingerprint, chunking.record())
            _, todo = chain.chunk_corpus(chain.select(documents, plan.to_chunk),
                                        embedder.tokenizer, chunking)
            hashes, _ = missing_vectors(session, todo, embedder.fingerprint)
    else:
        plan = None
        _, todo = chain.chunk_corpus(documents, embedder.tokenizer, chunking)
        hashes = sorted(set(todo["text_hash"].to_pylist()))
    embed_mask = pc.is_in(todo["text_hash"], pa.array(hashes, pa.string()))
    tokens = int(pc.sum(todo.filter(embed_mask)["n_tokens"]).as_py() or 0)
    measured = measured_throughput(warehouse)
    speed = measured or DEFAULT_TOKENS_PER_SECOND
    diff: dict[str, Any] = plan.diff.__dict__ if plan else {
        "added": documents["doc_id"].to_pylist(), "changed": [], "deleted": [], "unchanged": []}
    reused_unchanged = plan.reused_chunks if plan else 0
    return PlanReport(
        source=str(source), active_version=plan.active_version if plan else None,
        noop=bool(plan and plan.noop),
        documents={k: len(v) for k, v in diff.items()},
        document_ids={k: sorted(v)[:50] for k, v in diff.items() if k != "unchanged"},
        chunks_total=todo.num_rows + reused_unchanged, chunks_to_embed=len(hashes),
        chunks_reused=todo.num_rows - len(hashes) + reused_unchanged,
        tokens_to_embed=tokens, tokens_per_second=round(speed, 1),
        throughput_measured=measured is not None,
        estimated_embed_seconds=round(tokens / speed, 1),
        quarantined=corpus.quarantine.num_rows,
    )
