"""Steps that score a version and let the gate decide: evaluate, record, gate, promote.

Evaluations reach the gate in memory; the lake keeps them (`quality_metrics`), and a Prefect
table artifact keyed per warehouse shows their history in the UI.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from tasks.embed.base import Embedder
from tasks.index.build import IndexReport
from tasks.index.hits import IndexedVersion
from tasks.index.storage import open_version_index
from tasks.monitor import projection
from tasks.quality import gate, scoring
from tasks.quality.base import Evaluation
from tasks.steps import log
from tasks.steps.timing import timed
from warehouse.errors import IndexMismatch
from warehouse.faults import checkpoint
from warehouse.store import Version, Warehouse
from warehouse.writer import open_writer


def artifact_key(warehouse: Warehouse, kind: str) -> str:
    """A Prefect artifact key per warehouse, so the UI shows each warehouse's history.

    Keys allow lowercase letters, digits and dashes: the warehouse's directory name, then a
    short hash of its full path (two warehouses called `wh` stay apart).
    """
    url = warehouse.location.url  # the resolved directory, or s3://bucket/prefix
    digest = hashlib.sha1(url.encode()).hexdigest()[:8]
    last = url.rsplit("/", 1)[-1] if warehouse.location.is_remote else warehouse.path.name
    name = "".join(c if c.isalnum() else "-" for c in last.lower()).strip("-")
    return f"embedpipe-{kind}-{name[:24] or 'warehouse'}-{digest}"


@task(name="embed-eval-queries", cache_policy=NONE)
@timed("index")
def embed_eval_queries(config: scoring.EvaluateConfig, embedder: Embedder,
                       batch_size: int) -> scoring.EmbeddedQueries | None:
    """The labelled queries, embedded once: they tune the index and score the version."""
    return scoring.embed_queries(config, embedder, batch_size)


def active_for_comparison(warehouse: Warehouse, version: Version) -> IndexedVersion | None:
    """The active version (with vectors), when it is another one and its index opens."""
    active = warehouse.active_or_none()
    if active is None or active.version_id == version.version_id:
        return None
    try:
        return open_version_index(warehouse, active, with_vectors=True)
    except IndexMismatch:
        return None  # nothing to compare neighbours with; the rest of the evaluation stands


@task(name="evaluate-version", cache_policy=NONE)
@timed("evaluate")
def evaluate_version(warehouse: Warehouse, version: Version, indexed: IndexedVersion,
                     embedder: Embedder, config: scoring.EvaluateConfig, batch_size: int,
                     queries: scoring.EmbeddedQueries | None = None) -> list[Evaluation]:
    """Score `version`, store the metrics in the lake and publish them as a table artifact."""
    evaluations = scoring.score_version(indexed, config, embedder, batch_size, queries,
                                        previous=active_for_comparison(warehouse, version))
    rows = scoring.metric_rows(evaluations)
    with open_writer(warehouse, lock=False) as writer:
        writer.record_metrics(version.version_id, rows)
    create_table_artifact(
        key=artifact_key(warehouse, "quality"),
        table=[{"version": version.version_id, **row} for row in rows],
        description=f"Quality of version {version.version_id} of {warehouse.where}")
    create_markdown_artifact(
        key=artifact_key(warehouse, "quality-summary"),
        markdown=f"# Quality of version {version.version_id}\n\n" + "\n".join(
            f"- **{e.evaluator}**: " + ", ".join(f"{k} {v:.4g}" for k, v in e.metrics.items())
            for e in evaluations),
        description=f"Quality of version {version.version_id}")
    log("evaluated: " + "; ".join(f"{e.evaluator} {e.primary_metric} "
                                  f"{e.metrics[e.primary_metric]:.4f}" for e in evaluations))
    return evaluations


@task(name="map-version", cache_policy=NONE)
@timed("map")
def map_version(warehouse: Warehouse, version: Version, indexed: IndexedVersion,
                config: projection.MapConfig) -> str | None:
    """Draw the version's 2-D map (a seeded sample of its chunks) and store it in the lake."""
    if config.method == "off" or len(indexed.rows.doc_id) == 0:
        return None
    rows = projection.sample_rows(len(indexed.rows.doc_id), config.sample, config.seed)
    vectors = indexed.vectors[indexed.labels[rows]]
    coords, method = projection.project(vectors, config)
    clusters = projection.cluster(vectors, config)
    hits = indexed.rows
    records = [{"chunk_key": int(indexed.index.keys[r]), "doc_id": hits.doc_id[r],
                "title": hits.title[r], "snippet": hits.snippet[r], "x": float(x), "y": float(y),
                "cluster": int(c), "method": method}
               for r, (x, y), c in zip(rows.tolist(), coords, clusters, strict=True)]
    with open_writer(warehouse, lock=False) as writer:
        writer.record_projection(version.version_id, None, records)
    return method


@task(name="gate-and-promote", cache_policy=NONE)
@timed("gate")
def gate_and_promote(warehouse: Warehouse, version: Version, evaluations: list[Evaluation],
                     index_report: IndexReport | None, config: gate.GateConfig,
                     summary: dict[str, Any]) -> gate.GateDecision:
    """Promote `version` if the gate passes; otherwise keep it as `rejected`, with the reason."""
    checkpoint("promote")
    with open_writer(warehouse, lock=False) as writer:
        active = writer.active_version()
        previous = warehouse.metrics(active.version_id) if active and \
            active.version_id != version.version_id else None
        decision = gate.judge(scoring.metric_rows(evaluations), previous, config,
                              index_report.as_dict() if index_report else None)
        writer.record_summary(version.version_id, summary)
        writer.record_gate(version.version_id, {**asdict(decision), "reason": decision.reason(),
                                                "headline": decision.headline()})
        if decision.passed:
            writer.promote(version.version_id)
        else:
            writer.set_status(version.version_id, "rejected")
    log(f"gate: version {version.version_id} " + ("promoted, " if decision.passed else
                                                   "rejected, ") + decision.reason())
    return decision
