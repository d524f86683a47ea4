"""Steps of the ingest flow: read, plan, chunk, embed, publish, index, evaluate, gate.

Each step is one stage over whole tables (never a task per document); the storage-facing ones
take the `Warehouse` and open their own connections (the flow holds the writer lock).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NONE
from prefect.futures import as_completed

from tasks import report
from tasks.embed import distributed, embedding
from tasks.embed.base import CONCRETE_BACKENDS, EmbedConfig, Embedder
from tasks.errors import ModelError
from tasks.index.build import IndexConfig, IndexReport
from tasks.index.storage import build_version_index
from tasks.prep import chain, chunk, clean, load
from tasks.steps import log
from tasks.steps.timing import timed
from warehouse.codec import StoreConfig
from warehouse.errors import WarehouseError
from warehouse.faults import checkpoint
from warehouse.location import Location
from warehouse.plan import IngestPlan, plan_ingest
from warehouse.reuse import missing_texts
from warehouse.store import Version, Warehouse
from warehouse.writer import Changes, VersionDraft, open_writer


@task(name="read-corpus", cache_policy=NONE)
@timed("read")
def read_corpus(source: Path, source_config: load.SourceConfig,
                clean_config: clean.CleanConfig) -> chain.Corpus:
    """Load and clean the source: every record kept, a duplicate, or quarantined.

    Raises:
        EmptyCorpus: nothing survived (the run stops here, before any model is loaded).
    """
    corpus = chain.require_documents(chain.read_corpus(source, source_config, clean_config))
    reasons = Counter(corpus.quarantine["reason"].to_pylist())
    log(f"read {corpus.n_input} records from {source.name}: {corpus.documents.num_rows} kept"
        + "".join(f", {n} {reason}" for reason, n in sorted(reasons.items())))
    return corpus


@task(name="fingerprint-source", cache_policy=NONE)
@timed("fingerprint")
def fingerprint_source(source: Path, source_config: load.SourceConfig,
                       clean_config: clean.CleanConfig) -> str:
    """The source's fingerprint: its bytes and the read and clean settings (no parsing)."""
    return chain.source_key(source, source_config, clean_config)


def active_version_of_source(warehouse: Warehouse, source_key: str) -> Version | None:
    """The active version, if it was read from the source with this fingerprint."""
    if not warehouse.exists():
        return None
    try:
        with warehouse.session() as session:
            active = session.active_version()
    except WarehouseError:  # a PostgreSQL catalog whose lake the first ingest has yet to create
        return None
    return active if active and active.source_fingerprint == source_key else None


def same_setup(version: Version, embedder: Embedder, chunk_config: chunk.ChunkConfig
               ) -> bool:
    """Was `version` embedded by this model and chunked this way?"""
    chunking = chain.Chunking(chunk_config, embedder.max_seq_length)
    return (version.model_fingerprint == embedder.fingerprint
            and version.chunker_config == chunking.record())


def release_memory() -> None:
    """Give the memory of the tables a run no longer holds back to the system (Arrow's
    allocator keeps freed pages for reuse; the index stage allocates through others)."""
    pa.default_memory_pool().release_unused()


@timed("load_model")
def load_model(config: EmbedConfig, warehouse: Warehouse) -> Embedder:
    """The configured embedder, loaded once for the run (a plain step: a model is no result).

    `auto` keeps the backend the warehouse recorded at its first ingest, so vectors are reused
    and versions stay comparable whichever machine runs; before that, the fastest faithful
    backend measured on this machine.

    Raises:
        ModelError: the warehouse's backend cannot run on this machine (saying which).
    """
    recorded = warehouse.recorded_backend()
    kept = config.keeping(recorded)
    tuned = finetuned_model(kept, warehouse)
    if tuned:
        log(f"model: the active version's fine-tune of {kept.model} ({tuned})")
        kept = kept.model_copy(update={"model": tuned})
    report("load model", 0, 1)
    try:
        model = embedding.load_embedder(kept)
    except (ModelError, ImportError) as exc:
        if kept is config:
            raise
        raise ModelError(f"warehouse {warehouse.where} was embedded with backend {recorded}, "
                         f"which cannot run on this machine ({' '.join(str(exc).split())}); "
                         "run it where it can, or re-embed with --backend") from exc
    report("load model", 1, 1)
    return model


def finetuned_model(config: EmbedConfig, warehouse: Warehouse) -> str | None:
    """The active version's model when a retrain of this warehouse fine-tuned it from the model
    the config names (walking back through fine-tunes of fine-tunes): ingests keep it.

    Before, the next scheduled ingest embedded with the configured base model again and undid
    the promoted retrain (the soak: version 10, a fine-tune the gate promoted; version 11, the
    ingest five minutes later, back on the base model, every chunk re-embedded). Naming another
    model in the config still switches to it.
    """
    try:
        versions = {v.version_id: v for v in warehouse.versions()}
    except WarehouseError:
        return None
    active = [v for v in versions.values() if v.status == "active"]
    models = warehouse.models_dir().resolve()
    version = active[-1] if active else None
    tuned = version.model_location if version else None
    while version is not None and version.model_location and Path(
            version.model_location).resolve().is_relative_to(models):
        version = versions.get(version.parent_id) if version.parent_id else None
    if version is None or tuned == version.model_location or version.model_name != config.model:
        return None
    return tuned


@task(name="plan-ingest", cache_policy=NONE)
@timed("plan")
def plan_changes(warehouse: Warehouse, corpus: chain.Corpus, model_fingerprint: str,
                 chunking: chain.Chunking) -> IngestPlan:
    """What this corpus changes against the lake (reads; a new warehouse's tables are created)."""
    with open_writer(warehouse, lock=False) as writer:
        plan = plan_ingest(writer, corpus.documents, model_fingerprint, chunking.record())
    checkpoint("plan")
    log("plan: " + ("nothing changed" if plan.noop else ", ".join(
        f"{n} {kind}" for kind, n in plan.diff.counts().items())))
    return plan


@task(name="chunk-documents", cache_policy=NONE)
@timed("chunk")
def chunk_changed(corpus: chain.Corpus, plan: IngestPlan, tokenizer: Any,
                  chunking: chain.Chunking) -> tuple[pa.Table, pa.Table]:
    """(tokenized documents, chunks) of the documents the plan says to (re)chunk."""
    documents, chunks = chain.chunk_corpus(chain.select(corpus.documents, plan.to_chunk),
                                          tokenizer, chunking)
    log(f"chunked {documents.num_rows} documents into {chunks.num_rows} chunks")
    return documents, chunks


# Texts embedded at a time in this process: only one slice's Python strings are alive at once.
SLICE_TEXTS = 50_000


@task(name="embed-chunks", cache_policy=NONE)
def embed_locally(todo: pa.Table, embedder: Embedder, config: EmbedConfig
                  ) -> pa.Table:
    """Vectors of `todo`'s texts (text_hash, text) in this process, slice by slice, with a
    progress bar and artifact."""
    artifact = cast(UUID, create_progress_artifact(progress=0.0,
                                                   description="embedding chunk texts"))
    total = todo.num_rows
    report("embed", 0, total)
    parts: list[pa.Table] = []
    shown = [time.monotonic()]  # when the artifact last moved
    for start in range(0, max(total, 1), SLICE_TEXTS):
        part = todo.slice(start, SLICE_TEXTS)

        def on_progress(done: int, start: int = start) -> None:
            report("embed", start + done, total)
            # The artifact is an API call (and work for the API server, on these same cores):
            # at most one a second, and the last.
            if time.monotonic() - shown[0] >= 1.0 or start + done == total:
                shown[0] = time.monotonic()
                update_progress_artifact(artifact_id=artifact,
                                         progress=100.0 * (start + done) / max(total, 1))

        vectors = embedding.embed_texts(part["text"].to_pylist(), embedder, config.batch_size,
                                    on_progress)
        parts.append(embedding.vectors_table(embedder.fingerprint, part["text_hash"].to_pylist(),
                                         vectors))
    return pa.concat_tables(parts)


@task(name="embed-shard", cache_policy=NONE, retries=2)
def embed_shard(hashes: list[str], texts: list[str], config: EmbedConfig,
                fingerprint: str, location: Location, part: str) -> str:
    # Retries: a worker lost mid-shard is the one transient failure of this stage.
    return distributed.embed_shard(hashes, texts, config, fingerprint, location, part)


@timed("embed")
def embed_new_chunks(warehouse: Warehouse, chunks: pa.Table, embedder: Embedder,
                     config: EmbedConfig, run_id: str) -> pa.Table:
    """Vectors for chunk texts that have none yet under this model; the rest are reused.

    With `embed.dask_address` the texts go to the flow's Dask task runner, one task per
    `embed.shard_size` texts (workers write Parquet parts under the warehouse's `staging/`,
    a shared directory or its s3:// prefix); else they are embedded here.
    """
    if config.backend == "auto" and embedder.backend in CONCRETE_BACKENDS:
        config = config.model_copy(update={"backend": embedder.backend})  # workers: the same
    with warehouse.session() as session:
        todo = missing_texts(session, chunks, embedder.fingerprint)
    log(f"embedding {todo.num_rows} new chunk texts; {chunks.num_rows - todo.num_rows} chunks "
        "reuse stored vectors")
    if not config.dask_address:
        return cast(pa.Table, embed_locally(todo, embedder, config))
    staging, location = f"staging/{run_id}", warehouse.location
    step, total = config.shard_size, todo.num_rows
    futures = [embed_shard.submit(todo["text_hash"][i:i + step].to_pylist(),
                                  todo["text"][i:i + step].to_pylist(), config,
                                  embedder.fingerprint, location,
                                  f"{staging}/part-{i // step:05d}.parquet")
               for i in range(0, total, step)]
    report("embed", 0, total)
    for done, _ in enumerate(as_completed(futures), start=1):
        report("embed", min(done * step, total), total)
    vectors = distributed.read_parts(location, [f.result() for f in futures])  # in shard order
    location.delete(staging)
    return vectors


@dataclass(frozen=True)
class Published:
    """A published candidate version and what its run embedded, reused and chunked."""

    version: Version
    tokens: int  # of the run's new chunks
    tokens_embedded: int  # of the chunk texts embedded (not reused): the throughput base
    vectors_embedded: int
    vectors_reused: int


@task(name="publish-version", cache_policy=NONE)
@timed("store")
def publish_version(warehouse: Warehouse, draft: VersionDraft, documents: pa.Table,
                    chunks: pa.Table, plan: IngestPlan, vectors: pa.Table,
                    quarantine: pa.Table, store: StoreConfig) -> Published:
    """Commit the run as a candidate version, in one transaction."""
    reused = chunks.num_rows - vectors.num_rows + plan.reused_chunks
    changes = Changes(documents=documents, chunks=chunks, drop_doc_ids=plan.drop,
                      vectors=vectors, quarantine=quarantine, n_reused=reused,
                      vector_dtype=store.vector_dtype)
    with open_writer(warehouse, lock=False) as writer:
        version = writer.publish(draft, changes)
    log(f"published version {version.version_id} (candidate): {version.n_documents} documents, "
        f"{version.n_chunks} chunks")
    embedded = pc.is_in(chunks["text_hash"], vectors["text_hash"])
    return Published(version, int(pc.sum(chunks["n_tokens"]).as_py() or 0),
                     int(pc.sum(chunks.filter(embedded)["n_tokens"]).as_py() or 0),
                     vectors.num_rows, reused)


@task(name="index-version", cache_policy=NONE)
@timed("index")
def index_version(warehouse: Warehouse, version: Version, config: IndexConfig,
                  queries: np.ndarray | None = None, embedder: Embedder | None = None
                  ) -> tuple[Any, IndexReport]:
    """Build, tune and save the version's index; its report is recorded on the version.

    Tuned on `queries` when configured, else on logged or probe queries `embedder` embeds.
    """
    checkpoint("index")
    indexed, index_report = build_version_index(warehouse, version, config, queries, embedder)
    with open_writer(warehouse, lock=False) as writer:
        writer.record_index(version.version_id, index_report.as_dict())
    log(f"index: {index_report.count} chunks ({index_report.distinct} distinct texts), ef "
        f"{index_report.ef}, recall@{index_report.recall_k} {index_report.recall:.4f} (held-out "
        f"{index_report.heldout_recall}) on {index_report.queries} queries"
        + (f"; {index_report.log_recall:.4f} on {index_report.log_queries} logged queries"
           if index_report.log_recall is not None else ""))
    return indexed, index_report
