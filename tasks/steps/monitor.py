"""Steps of the monitor flow: sample both sides, compare, decide, record, announce."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from tasks.embed.embedding import version_embedder
from tasks.errors import SourceError
from tasks.index.build import IndexConfig
from tasks.index.storage import Retune, retune
from tasks.monitor import drift, samples
from tasks.monitor.drift import DriftReport
from tasks.prep import chain, clean, load
from tasks.steps import log
from tasks.steps.evaluate import artifact_key
from warehouse import query_log
from warehouse.query_log import QUERY_LOG
from warehouse.store import Version, Warehouse
from warehouse.writer import open_writer

Kind = Literal["corpus", "queries"]
LOG_READ_LIMIT = 100_000  # the newest distinct logged queries a check reads


@task(name="read-batch", cache_policy=NONE)
def read_batch(kind: Kind, source: Path, source_config: load.SourceConfig,
               clean_config: clean.CleanConfig, warehouse: Warehouse | None = None
               ) -> chain.Corpus | list[str]:
    """The new data, read before any model loads: a missing source fails the run in seconds.

    Queries from `log` (QUERY_LOG) are the warehouse's own query log (`warehouse/query_log.py`).
    """
    if kind == "queries" and str(source) == QUERY_LOG and warehouse is not None:
        logged = query_log.texts(warehouse, LOG_READ_LIMIT)
        if not logged:
            raise SourceError(f"the query log of {warehouse.where} is empty: nothing to check "
                              "(searches are logged by the CLI and the dashboard)")
        return logged
    if kind == "queries":
        return load.read_query_log(source)
    corpus = chain.read_corpus(source, source_config, clean_config)
    if corpus.documents.num_rows == 0:
        raise SourceError(f"{source}: no usable document to check for drift")
    return corpus


@task(name="sample-and-compare", cache_policy=NONE)
def sample_and_compare(warehouse: Warehouse, version: Version, kind: Kind, source: Path,
                       batch: chain.Corpus | list[str], config: drift.DriftConfig,
                       batch_size: int, reference_queries: list[str] | None = None
                       ) -> tuple[DriftReport, samples.Sample]:
    """Drift statistics of the batch against the right reference.

    A corpus batch is chunked the way `version` was and one chunk per document is sampled; the
    reference is a seeded sample of the version's own chunks. A query log is compared with an
    earlier query log (queries are short questions, chunks are passages: comparing the two
    would always alarm); the first log checked becomes that reference, and `reference_queries`
    replaces it. Both sides are embedded with the version's own model.
    """
    embedder = version_embedder(version)
    check_id = uuid.uuid4().hex[:12]
    if isinstance(batch, list):
        current = samples.embedded_sample(_pick(batch, config), embedder, batch_size)
        stored = warehouse.query_reference()
        if reference_queries is not None or stored is None:
            texts = _pick(reference_queries if reference_queries is not None else batch, config)
            with open_writer(warehouse, lock=False) as writer:
                writer.record_query_reference(check_id, str(source), texts)
            if reference_queries is None:
                note = (f"reference set: {len(texts)} queries of {source.name}; later query "
                        "logs are compared with them")
                return DriftReport(check_id=check_id, version_id=version.version_id, kind=kind,
                                   source=str(source), n_reference=0, n_current=len(texts),
                                   statistics={}, alarm=False, drifted=False, note=note), current
            stored = (check_id, str(source), texts)
        reference = samples.embedded_sample(stored[2], embedder, batch_size)
    else:
        texts, vectors = warehouse.reference_sample(version, config.reference_size, config.seed)
        reference = samples.stored_sample(texts, vectors, embedder.tokenizer)
        current = _corpus_sample(batch, version, embedder, config, batch_size)
    stats = samples.drift_statistics(reference, current, config).metrics
    alarm = drift.alarm(stats, config)
    history = warehouse.recent_alarms(version.version_id, kind, config.window - 1)
    report = DriftReport(check_id=check_id, version_id=version.version_id,
                         kind=kind, source=str(source), n_reference=len(reference.texts),
                         n_current=len(current.texts), statistics=stats, alarm=alarm,
                         drifted=drift.decide(alarm, history, config))
    return report, current


def _pick(texts: list[str], config: drift.DriftConfig) -> list[str]:
    return [texts[i] for i in samples.pick(len(texts), config.current_size, config.seed)]


def _corpus_sample(corpus: chain.Corpus, version: Version, embedder, config: drift.DriftConfig,
                   batch_size: int) -> samples.Sample:
    """One chunk per document of the batch, chunked as `version` was, embedded."""
    chunking = chain.Chunking.from_record(version.chunker_config)
    _, chunks = chain.chunk_corpus(corpus.documents, embedder.tokenizer, chunking)
    rows = samples.one_chunk_per_document(chunks["doc_id"].to_pylist(), config.current_size,
                                          config.seed)
    texts_all, doc_ids = chunks["text"].to_pylist(), chunks["doc_id"].to_pylist()
    ids = [doc_ids[i] for i in rows]
    title_of = dict(zip(corpus.documents["doc_id"].to_pylist(),
                        corpus.documents["title"].to_pylist(), strict=True))
    return samples.embedded_sample([texts_all[i] for i in rows], embedder, batch_size, ids,
                                   [title_of.get(doc) for doc in ids])


@task(name="map-drift-sample", cache_policy=NONE)
def map_drift_sample(warehouse: Warehouse, version: Version, report: DriftReport,
                     current: samples.Sample) -> int:
    """Place the check's sample on the version's 2-D map (stored with the check's id)."""
    from tasks.index.hits import snippet
    from tasks.monitor.projection import place

    reference = warehouse.projection(version.version_id)
    if reference.num_rows == 0:
        return 0
    keys, vectors = warehouse.chunk_vectors(version, reference["chunk_key"].to_pylist())
    order = {k: i for i, k in enumerate(reference["chunk_key"].to_pylist())}
    rows = [order[int(k)] for k in keys]
    coords = np.column_stack([reference["x"].to_numpy()[rows], reference["y"].to_numpy()[rows]])
    clusters = reference["cluster"].to_numpy()[rows]
    placed, labels = place(current.vectors, vectors, coords, clusters)
    ids = current.ids or [f"query {i + 1}" for i in range(len(current.texts))]
    titles = current.titles or [None] * len(current.texts)
    records = [{"chunk_key": -1 - i, "doc_id": ids[i], "title": titles[i],
                "snippet": snippet(current.texts[i], titles[i]), "x": float(x), "y": float(y),
                "cluster": int(c), "method": str(reference["method"][0])}
               for i, ((x, y), c) in enumerate(zip(placed, labels, strict=True))]
    with open_writer(warehouse, lock=False) as writer:
        writer.record_projection(version.version_id, report.check_id, records)
    return len(records)


@task(name="record-drift", cache_policy=NONE)
def record_drift(warehouse: Warehouse, report: DriftReport, config: drift.DriftConfig) -> None:
    """One `drift_metrics` row per statistic, a table artifact and a markdown verdict."""
    now = datetime.now(UTC).replace(tzinfo=None)
    thresholds = drift.thresholds(config)
    rule = f"{config.rule}, {config.alarms_required} of the last {config.window}"
    rows = [{"check_id": report.check_id, "version_id": report.version_id, "checked_at": now,
             "kind": report.kind, "source": report.source, "n_reference": report.n_reference,
             "n_current": report.n_current, "metric": name, "value": float(value),
             "alarm": report.alarm, "drifted": report.drifted,
             "threshold": thresholds.get(name), "rule": rule}
            for name, value in report.statistics.items()]
    with open_writer(warehouse, lock=False) as writer:
        writer.record_drift(rows)
    create_table_artifact(key=artifact_key(warehouse, "drift"),
                          table=[{"metric": k, "value": float(np.round(v, 6)),
                                  "threshold": thresholds.get(k)}
                                 for k, v in report.statistics.items()],
                          description=f"Drift check {report.check_id} ({report.kind}: "
                                      f"{report.source}) vs version {report.version_id}: "
                                      f"{report.headline()}")
    verdict = "**drift detected**" if report.drifted else "no drift"
    create_markdown_artifact(
        key=artifact_key(warehouse, "drift-summary"),
        markdown=f"# Drift check: {verdict}\n\n{report.kind} `{report.source}` "
                 f"({report.n_current} samples) vs version {report.version_id} "
                 f"({report.n_reference} samples): {report.headline()}; rule "
                 f"{config.rule}, {config.alarms_required} of the last {config.window} checks.")


@task(name="retune-index", cache_policy=NONE)
def retune_on_log(warehouse: Warehouse, version: Version, config: IndexConfig) -> Retune | None:
    """The scheduled form of `embedpipe index --retune`: once the query log holds
    `index.log_min_queries` searches, check the active index's recall on them and raise its ef
    if short (recorded on the version; the index files are not rebuilt). None: too few."""
    if len(query_log.texts(warehouse, config.log_min_queries)) < config.log_min_queries:
        return None
    result = retune(warehouse, version, version_embedder(version), config)
    with open_writer(warehouse, lock=False) as writer:
        writer.record_index(version.version_id, result.report)
    if result.changed:
        log(f"index of version {version.version_id}: recall on {result.queries} logged searches "
            f"{result.recall_before} below target {result.target}: ef {result.ef_before} -> "
            f"{result.ef_after} (recall {result.recall_after})")
    return result
