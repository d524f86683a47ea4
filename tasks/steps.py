"""Prefect task wrappers of the stage cores: retries, logging, progress artifacts; nothing else.

Kept apart from the cores so that commands which run no flow (search, sql, versions) never
import Prefect. Tasks take whole tables (batches), never single documents.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import numpy as np
import pyarrow as pa
from prefect import task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NONE
from prefect.futures import as_completed

from tasks import chunk, clean, distributed, embed, load, quality, store, tokenize
from tasks.gate import GateConfig, GateDecision
from tasks.index import IndexConfig, IndexReport
from tasks.progress import report
from warehouse.store import Version, Warehouse
from warehouse.writer import VersionDraft, open_writer


@task(name="load-documents", cache_policy=NONE)
def load_documents(source: Path, config: load.SourceConfig) -> load.LoadResult:
    return load.load_source(source, config)


@task(name="clean-documents", cache_policy=NONE)
def clean_documents(raw: pa.Table, config: clean.CleanConfig) -> clean.CleanResult:
    return clean.clean_documents(raw, config)


@task(name="plan-ingest", cache_policy=NONE)
def plan_ingest(warehouse: Warehouse, documents: pa.Table, model_fingerprint: str,
                chunker_config: dict[str, Any]) -> store.IngestPlan:
    with open_writer(warehouse, lock=False) as writer:
        writer.delete_orphaned_files()  # left behind by a writer killed mid-commit
        return store.plan_ingest(writer, documents, model_fingerprint, chunker_config)


@task(name="tokenize-documents", cache_policy=NONE)
def tokenize_documents(documents: pa.Table, tokenizer: Any) -> pa.Table:
    return tokenize.tokenize_documents(documents, tokenizer)


@task(name="chunk-documents", cache_policy=NONE)
def chunk_documents(documents: pa.Table, tokenizer: Any, max_seq_length: int,
                    config: chunk.ChunkConfig) -> pa.Table:
    return chunk.chunk_documents(documents, tokenizer, max_seq_length, config)


@task(name="embed-chunks", cache_policy=NONE)
def embed_chunks(warehouse: Warehouse, chunks: pa.Table, embedder: embed.Embedder,
                 config: embed.EmbedConfig) -> pa.Table:
    """Vectors for chunk texts that have none yet under this model; the rest are reused."""
    with open_writer(warehouse, lock=False) as writer:
        hashes, texts = store.missing_vectors(writer, chunks, embedder.fingerprint)
    artifact = cast(UUID, create_progress_artifact(progress=0.0,
                                                   description="embedding chunk texts"))

    def on_progress(done: int) -> None:
        report("embed", done, len(texts))
        update_progress_artifact(artifact_id=artifact, progress=100.0 * done / max(len(texts), 1))

    report("embed", 0, len(texts))
    vectors = embed.embed_texts(texts, embedder, config.batch_size, on_progress)
    return store.vectors_table(embedder.fingerprint, hashes, vectors)


@task(name="embed-shard", cache_policy=NONE, retries=2)
def embed_shard(hashes: list[str], texts: list[str], config: embed.EmbedConfig,
                fingerprint: str, part: Path) -> str:
    # Retries: a worker lost mid-shard is the one transient failure of this stage.
    return distributed.embed_shard(hashes, texts, config, fingerprint, part)


def embed_chunks_on_cluster(warehouse: Warehouse, chunks: pa.Table, fingerprint: str,
                            config: embed.EmbedConfig, run_id: str) -> pa.Table:
    """`embed_chunks` spread over the flow's Dask task runner, one task per shard."""
    with open_writer(warehouse, lock=False) as writer:
        hashes, texts = store.missing_vectors(writer, chunks, fingerprint)
    staging = warehouse.path / "staging" / run_id
    step = config.shard_size
    futures = [embed_shard.submit(hashes[i:i + step], texts[i:i + step], config, fingerprint,
                                  staging / f"part-{i // step:05d}.parquet")
               for i in range(0, len(hashes), step)]
    report("embed", 0, len(hashes))
    for done, _ in enumerate(as_completed(futures), start=1):
        report("embed", min(done * step, len(hashes)), len(hashes))
    vectors = distributed.read_parts([f.result() for f in futures])  # in shard order
    shutil.rmtree(staging, ignore_errors=True)
    return vectors


@task(name="publish-version", cache_policy=NONE)
def publish_version(warehouse: Warehouse, draft: VersionDraft, documents: pa.Table,
                    chunks: pa.Table, plan: store.IngestPlan, vectors: pa.Table,
                    quarantine: pa.Table) -> Version:
    with open_writer(warehouse, lock=False) as writer:
        return store.publish(writer, draft, documents, chunks, plan, vectors, quarantine)


@task(name="index-version", cache_policy=NONE)
def index_version(warehouse: Warehouse, version: Version, config: IndexConfig,
                  queries: np.ndarray | None = None) -> IndexReport:
    report_ = store.build_version_index(warehouse, version, config, queries)
    with open_writer(warehouse, lock=False) as writer:
        writer.record_index(version.version_id, report_.as_dict())
    return report_


def artifact_key(warehouse: Warehouse, kind: str) -> str:
    """A Prefect artifact key per warehouse, so the UI shows each warehouse's history."""
    digest = hashlib.sha1(str(warehouse.path.resolve()).encode()).hexdigest()[:12]
    return f"embedpipe-{kind}-{digest}"


@task(name="evaluate-version", cache_policy=NONE)
def evaluate_version(warehouse: Warehouse, version: Version, embedder: embed.Embedder,
                     config: quality.EvaluateConfig, batch_size: int,
                     queries: quality.EmbeddedQueries | None = None) -> list[dict[str, Any]]:
    """Score `version`, store the metrics in the lake and publish them as a table artifact."""
    with warehouse.session() as session:
        active = session.active_version()
    evaluations = quality.evaluate_version(warehouse, version, embedder, config, batch_size,
                                           active, queries)
    rows = quality.metric_rows(evaluations)
    with open_writer(warehouse, lock=False) as writer:
        writer.record_metrics(version.version_id, rows)
    create_table_artifact(
        key=artifact_key(warehouse, "quality"),
        table=[{"version": version.version_id, **row} for row in rows],
        description=f"Quality of version {version.version_id} of {warehouse.path}")
    return rows


@task(name="gate-and-promote", cache_policy=NONE)
def gate_and_promote(warehouse: Warehouse, version: Version, config: GateConfig,
                     summary: dict[str, Any]) -> GateDecision:
    """Promote `version` if the gate passes; otherwise keep it as `rejected`, with the reason."""
    with open_writer(warehouse, lock=False) as writer:
        decision = quality.gate_version(warehouse, version, writer.active_version(), config)
        writer.record_summary(version.version_id, summary)
        writer.record_gate(version.version_id, {**asdict(decision),
                                                "reason": decision.reason()})
        if decision.passed:
            writer.promote(version.version_id)
        else:
            writer.set_status(version.version_id, "rejected")
    return decision
