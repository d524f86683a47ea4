"""The ingest flow: source -> clean -> tokenize -> chunk -> embed -> publish -> index -> promote.

One flow run publishes at most one version. It holds the warehouse's writer lock from planning
to promotion, so two ingests never interleave; an identical re-run publishes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import Flow, flow

from flows.config import EmbedpipeConfig, resolve
from flows.outcome import finish, ingest_outcome
from flows.summary import IngestSummary, decided, summarize, summarize_unchanged, table_rows
from tasks.embed.base import runtime_versions
from tasks.errors import EmbedpipeError
from tasks.prep.chain import Chunking, Corpus
from tasks.steps import evaluate as evaluating
from tasks.steps import ingest as steps
from tasks.steps import report
from tasks.steps.timing import stage_timer
from warehouse.errors import WarehouseError
from warehouse.lock import warehouse_lock
from warehouse.store import Warehouse
from warehouse.writer import VersionDraft


@flow(name="ingest-corpus")
def ingest_corpus(source: str, config: EmbedpipeConfig | None = None,
                  overrides: dict[str, Any] | None = None) -> IngestSummary:
    """Ingest `source` into the configured warehouse and make it the active version.

    The writer lock is taken first, so a second ingest of the same warehouse fails (or waits,
    with warehouse.lock_wait_seconds) before doing any work. `config` None (served runs): read
    now from this process's config file and environment; `overrides` ("section.key": value) on
    top.
    """
    config = resolve(config, overrides)
    warehouse = config.warehouse.open()
    started = report.now()
    with warehouse_lock(warehouse, config.warehouse.lock_wait_seconds):
        try:
            summary = ingest_source(Path(source), config, warehouse)
        except (EmbedpipeError, WarehouseError) as exc:  # on record, then as it was
            report.record_run(warehouse, "ingest", started, "failed", " ".join(str(exc).split()),
                              None, source, {})
            raise
        name, message = ingest_outcome(summary)
        report.record_run(warehouse, "ingest", started, summary.status, message,
                          summary.version_id, source, summary.model_dump())
    report.publish_run_summary(warehouse, f"ingest {source}: {message}", table_rows(summary))
    report.log(message)
    return finish(summary, name, message)


def ingest_source(source: Path, config: EmbedpipeConfig, warehouse: Warehouse) -> IngestSummary:
    """Read the source and ingest it, unless the active version was read from these very bytes
    with the same settings, model and chunking: then nothing is read at all."""
    with stage_timer() as timer:
        key = steps.fingerprint_source(source, config.source, config.clean)
        active = steps.active_version_of_source(warehouse, key)
        embedder = steps.load_model(config.embed, warehouse) if active else None
        summary = None
        if active and embedder and steps.same_setup(active, embedder, config.chunk):
            summary = summarize_unchanged(active, str(source), timer.seconds)
        if summary is None:
            summary = ingest_documents(steps.read_corpus(source, config.source, config.clean),
                                       config, warehouse, f"ingest {source}", key, embedder)
    return summary.model_copy(update={"stage_peak_rss_mb": timer.peak_rss_mb})


def ingest_documents(corpus: Corpus, config: EmbedpipeConfig, warehouse: Warehouse,
                     message: str, source_key: str | None = None,
                     embedder: Any = None) -> IngestSummary:
    """The ingest recipe, for callers that already hold the writer lock (ingest, retrain).

    `source_key` (tasks.prep.chain.source_key) is recorded on the version, so that a re-run over the
    same bytes is known unchanged without reading; `embedder`: one already loaded.
    """
    with stage_timer(reuse=True) as timer:
        embedder = embedder or steps.load_model(config.embed, warehouse)
        chunking = Chunking(config.chunk, embedder.max_seq_length)
        read = corpus.counts()
        plan = steps.plan_changes(warehouse, corpus, embedder.fingerprint, chunking)
        if plan.noop:
            return summarize(read, plan, timer.seconds)
        documents, chunks = steps.chunk_changed(corpus, plan, embedder.tokenizer, chunking)
        vectors = steps.embed_new_chunks(warehouse, chunks, embedder, config.embed,
                                         plan.corpus_fingerprint)
        published = steps.publish_version(warehouse,
                                          draft(embedder, chunking, plan, message, source_key),
                                          documents, chunks, plan, vectors, corpus.quarantine,
                                          config.store)
        del corpus, documents, chunks, vectors  # in the lake now: what follows reads it there
        steps.release_memory()
        version = published.version
        queries = evaluating.embed_eval_queries(config.evaluate, embedder,
                                                config.embed.batch_size)
        indexed, built = steps.index_version(warehouse, version, config.index,
                                             queries.vectors if queries else None, embedder)
        evaluations = evaluating.evaluate_version(warehouse, version, indexed, embedder,
                                                  config.evaluate, config.embed.batch_size,
                                                  queries)
        evaluating.map_version(warehouse, version, indexed, config.map)
        summary = summarize(read, plan, timer.seconds, published, built)
        decision = evaluating.gate_and_promote(warehouse, version, evaluations, built,
                                               config.gate, summary.model_dump())
        report.write_card(warehouse, version.version_id)
    return decided(summary, decision, timer.seconds)


def draft(embedder: Any, chunking: Chunking, plan: Any, message: str,
          source_key: str | None) -> VersionDraft:
    """What the new version is made of, besides its rows."""
    return VersionDraft(embedder.name, embedder.location, embedder.fingerprint,
                        embedder.dimension, chunking.record(), plan.corpus_fingerprint,
                        message=message, model_backend=embedder.backend,
                        source_fingerprint=source_key, runtime=runtime_versions())


def ingest_flow_for(config: EmbedpipeConfig) -> Flow[..., IngestSummary]:
    """The ingest flow with the task runner the config asks for (Dask when an address is set)."""
    if not config.embed.dask_address:
        return ingest_corpus
    from prefect_dask import DaskTaskRunner

    runner: Any = DaskTaskRunner(address=config.embed.dask_address)  # a TaskRunner subclass
    return ingest_corpus.with_options(task_runner=runner)
