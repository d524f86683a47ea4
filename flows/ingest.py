"""The ingest flow: source -> clean -> tokenize -> chunk -> embed -> publish -> index -> promote.

One flow run publishes at most one version. It holds the warehouse's writer lock from planning
to promotion, so two ingests never interleave; an identical re-run publishes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pyarrow as pa
from prefect import Flow, flow

from flows.config import EmbedpipeConfig
from flows.summary import IngestSummary, StageTimer, rejection_counts
from tasks import steps
from tasks.embed import load_embedder
from tasks.errors import EmptyCorpus
from tasks.quality import embed_queries
from tasks.schema import DUPLICATE_REASONS
from tasks.store import embedded_tokens
from warehouse.faults import checkpoint
from warehouse.lock import writer_lock
from warehouse.store import Warehouse
from warehouse.writer import VersionDraft


@flow(name="ingest-corpus")
def ingest_corpus(source: str, config: EmbedpipeConfig) -> IngestSummary:
    """Ingest `source` into the configured warehouse and make it the active version.

    The writer lock is taken first, so a second ingest of the same warehouse fails (or waits,
    with warehouse.lock_wait_seconds) before doing any work.
    """
    warehouse = Warehouse(config.warehouse.path, config.warehouse.catalog)
    with writer_lock(warehouse.path, config.warehouse.lock_wait_seconds):
        return ingest_locked(source, config, warehouse)


def ingest_flow_for(config: EmbedpipeConfig) -> Flow[..., IngestSummary]:
    """The ingest flow with the task runner the config asks for (Dask when an address is set)."""
    if not config.embed.dask_address:
        return ingest_corpus
    from prefect_dask import DaskTaskRunner

    runner: Any = DaskTaskRunner(address=config.embed.dask_address)  # a TaskRunner subclass
    return ingest_corpus.with_options(task_runner=runner)


def ingest_locked(source: str, config: EmbedpipeConfig, warehouse: Warehouse,
                  message: str | None = None) -> IngestSummary:
    """The ingest itself, for callers that already hold the writer lock (ingest, retrain)."""
    timer = StageTimer()
    with timer("load"):
        loaded = steps.load_documents(Path(source), config.source)
    with timer("clean"):
        cleaned = steps.clean_documents(loaded.documents, config.clean)
    quarantine = pa.concat_tables([loaded.problems, cleaned.quarantine])
    if cleaned.documents.num_rows == 0:
        raise EmptyCorpus(f"{source}: no document survived loading and cleaning "
                          f"({quarantine.num_rows} rejected); see the problems above")
    with timer("load_model"):
        embedder = load_embedder(config.embed)
    chunker = {**config.chunk.model_dump(), "max_seq_length": embedder.max_seq_length}
    with timer("plan"):
        plan = steps.plan_ingest(warehouse, cleaned.documents, embedder.fingerprint, chunker)
    checkpoint("plan")
    summary = _summary(source, loaded.documents.num_rows + loaded.problems.num_rows,
                       cleaned.documents.num_rows, quarantine, plan)
    if plan.noop:
        return summary.model_copy(update={"stage_seconds": timer.seconds})
    with timer("tokenize"):
        to_chunk = cleaned.documents.filter(pa.compute.is_in(
            cleaned.documents["doc_id"], pa.array(plan.to_chunk, pa.string())))
        documents = steps.tokenize_documents(to_chunk, embedder.tokenizer)
    with timer("chunk"):
        # cast: Prefect types a task call as "result or coroutine"; these tasks are sync.
        chunks = cast(pa.Table, steps.chunk_documents(
            documents, embedder.tokenizer, embedder.max_seq_length, config.chunk))
    with timer("embed"):
        if config.embed.dask_address:
            vectors = steps.embed_chunks_on_cluster(warehouse, chunks, embedder.fingerprint,
                                                    config.embed, plan.corpus_fingerprint)
        else:
            vectors = cast(pa.Table, steps.embed_chunks(warehouse, chunks, embedder,
                                                        config.embed))
    draft = VersionDraft(embedder.name, getattr(embedder, "location", embedder.name),
                         embedder.fingerprint, embedder.dimension, chunker,
                         plan.corpus_fingerprint, message=message or f"ingest {source}")
    with timer("store"):
        version = steps.publish_version(warehouse, draft, documents, chunks, plan, vectors,
                                        quarantine)
    checkpoint("index")
    with timer("index"):
        # Real queries, when an evaluation set names them, tune the index's ef and are scored.
        queries = embed_queries(config.evaluate, embedder, config.embed.batch_size)
        report = steps.index_version(warehouse, version, config.index,
                                     queries.vectors if queries else None)
    with timer("evaluate"):
        steps.evaluate_version(warehouse, version, embedder, config.evaluate,
                               config.embed.batch_size, queries)
    summary = summary.model_copy(update={
        "status": "published", "version_id": version.version_id, "chunks": version.n_chunks,
        "tokens": int(pa.compute.sum(chunks["n_tokens"]).as_py() or 0),
        "vectors_embedded": vectors.num_rows, "tokens_embedded": embedded_tokens(chunks, vectors),
        "vectors_reused": chunks.num_rows - vectors.num_rows + plan.reused_chunks,
        "index": {"ef": report.ef, "recall": report.recall, "m": report.m,
                  "ef_construction": report.ef_construction},
    })
    checkpoint("promote")
    with timer("gate"):
        recorded = summary.model_copy(update={"stage_seconds": dict(timer.seconds)})
        decision = steps.gate_and_promote(warehouse, version, config.gate, recorded.model_dump())
    return summary.model_copy(update={
        "stage_seconds": timer.seconds, "status": "published" if decision.passed else "rejected",
        "gate": decision.reason()})


def _summary(source: str, n_input: int, n_kept: int, quarantine: pa.Table, plan) -> IngestSummary:
    exact, near, others = rejection_counts(quarantine)
    counts = plan.diff.counts()
    problems = quarantine.filter(pa.compute.invert(pa.compute.is_in(
        quarantine["reason"], pa.array(DUPLICATE_REASONS)))).slice(0, 20)
    return IngestSummary(
        source=source, status="unchanged", version_id=plan.active_version,
        input_documents=n_input, kept=n_kept, exact_duplicates=exact, near_duplicates=near,
        quarantined=sum(others.values()), quarantined_by_reason=others,
        documents_added=counts["added"], documents_changed=counts["changed"],
        documents_deleted=counts["deleted"], documents_unchanged=counts["unchanged"],
        problems=problems.to_pylist(),
    )
