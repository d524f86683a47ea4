"""Evaluate a published version: health always, retrieval and STS where labelled sets are given.

Input: the warehouse, a version, its embedder and an `EvaluateConfig`; output: `Evaluation`s and
their `quality_metrics` rows. The gate then compares those rows with the active version's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tasks.embed import Embedder, embed_texts
from tasks.evalsets import BeirSet, load_beir, load_sts
from tasks.evaluate import (
    Evaluation,
    evaluate_health,
    evaluate_retrieval,
    evaluate_sts,
    neighbour_overlap,
)
from tasks.gate import GateConfig, GateDecision, MetricKey, decide
from tasks.store import load_version_index
from warehouse.store import Version, Warehouse


class EvaluateConfig(BaseModel):
    """Labelled sets every version is scored on (None: health checks only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    beir: Path | None = None  # a BEIR directory: queries.jsonl + qrels/<split>.tsv
    beir_split: str = "test"
    sts: Path | None = None  # an STS-format file
    health_sample: int = Field(1000, ge=10)
    overlap_sample: int = Field(200, ge=1)
    seed: int = 0


@dataclass(frozen=True)
class EmbeddedQueries:
    """A BEIR set with its queries embedded once (for index tuning and for evaluation)."""

    beir: BeirSet
    ids: list[str]
    vectors: np.ndarray


def embed_queries(config: EvaluateConfig, embedder: Embedder, batch_size: int
                  ) -> EmbeddedQueries | None:
    """The configured BEIR set's judged queries, embedded; None when no set is configured."""
    if config.beir is None:
        return None
    beir = load_beir(config.beir, config.beir_split)
    ids = sorted(beir.queries)
    return EmbeddedQueries(beir, ids, embed_texts([beir.queries[i] for i in ids], embedder,
                                                  batch_size))


def evaluate_version(warehouse: Warehouse, version: Version, embedder: Embedder,
                     config: EvaluateConfig, batch_size: int = 64,
                     active: Version | None = None,
                     queries: EmbeddedQueries | None = None) -> list[Evaluation]:
    """Every evaluation of `version` that the config asks for, health first.

    `queries`: the BEIR queries already embedded by the caller (else embedded here).
    """
    index = load_version_index(warehouse, version)
    keys, vectors = warehouse.vectors(version)
    chunks = warehouse.chunk_map(version)
    overlap = None
    if active is not None and active.version_id != version.version_id:
        overlap = _overlap_with(warehouse, version, active, index, keys, vectors, chunks, config)
    results = [evaluate_health(vectors, index, keys, config.health_sample, config.seed,
                               overlap=overlap)]
    queries = queries or embed_queries(config, embedder, batch_size)
    if queries is not None:
        chunk_doc = dict(zip(chunks["chunk_key"].to_pylist(), chunks["doc_id"].to_pylist(),
                             strict=True))
        results.append(evaluate_retrieval(queries.beir.name, queries.beir.qrels, queries.ids,
                                          queries.vectors, index, chunk_doc))
    if config.sts is not None:
        sts = load_sts(config.sts)
        v1 = embed_texts(sts.sentences1, embedder, batch_size)
        v2 = embed_texts(sts.sentences2, embedder, batch_size)
        results.append(evaluate_sts(sts.name, v1, v2, sts.scores))
    return results


def _overlap_with(warehouse: Warehouse, version: Version, active: Version, index: Any,
                  keys: np.ndarray, vectors: np.ndarray, chunks: Any, config: EvaluateConfig
                  ) -> float | None:
    """Neighbour agreement (k=10, by chunk id) on a sample of chunks both versions hold."""
    old_chunks = warehouse.chunk_map(active)
    old_id = dict(zip(old_chunks["chunk_key"].to_pylist(), old_chunks["chunk_id"].to_pylist(),
                      strict=True))
    new_id = dict(zip(chunks["chunk_key"].to_pylist(), chunks["chunk_id"].to_pylist(),
                      strict=True))
    old_key = {cid: key for key, cid in old_id.items()}
    shared = sorted(key for key, cid in new_id.items() if cid in old_key)
    if not shared:
        return None
    rng = np.random.default_rng(config.seed)
    sample = rng.choice(shared, size=min(config.overlap_sample, len(shared)), replace=False)
    old_keys, old_vectors = warehouse.vectors(active)
    old_index = load_version_index(warehouse, active)
    new_rows = np.searchsorted(keys, sample)
    old_rows = np.searchsorted(old_keys, [old_key[new_id[int(k)]] for k in sample])
    k = min(10, len(keys), len(old_keys))
    new_nn = index.query(vectors[new_rows], k)[0]
    old_nn = old_index.query(old_vectors[old_rows], k)[0]
    return neighbour_overlap([{new_id[int(x)] for x in row} for row in new_nn.tolist()],
                             [{old_id[int(x)] for x in row} for row in old_nn.tolist()])


def metric_rows(evaluations: list[Evaluation]) -> list[dict[str, Any]]:
    """`quality_metrics` rows: one per metric, with its direction and primary flag."""
    return [{"evaluator": e.evaluator, "metric": name, "value": float(value),
             "greater_is_better": e.directions.get(name), "is_primary": name == e.primary_metric}
            for e in evaluations for name, value in e.metrics.items()]


def metric_map(rows: list[dict[str, Any]]) -> dict[MetricKey, tuple[float, bool | None]]:
    return {(r["evaluator"], r["metric"]): (float(r["value"]), r["greater_is_better"])
            for r in rows}


def gate_version(warehouse: Warehouse, candidate: Version, active: Version | None,
                 config: GateConfig) -> GateDecision:
    """The gate's decision for `candidate` against the active version (passes if none)."""
    if active is None or active.version_id == candidate.version_id:
        return GateDecision(True, 0)
    new_rows, old_rows = warehouse.metrics(candidate.version_id), warehouse.metrics(
        active.version_id)
    decision = decide(metric_map(new_rows), metric_map(old_rows), config)
    if config.require_improvement and decision.passed:
        return _require_improvement(new_rows, old_rows, decision)
    return decision


def _require_improvement(new_rows: list[dict[str, Any]], old_rows: list[dict[str, Any]],
                         decision: GateDecision) -> GateDecision:
    """Fail unless every shared labelled primary metric strictly improved."""
    old = {(r["evaluator"], r["metric"]): r for r in old_rows if r["is_primary"]}
    shared = [(r, old[(r["evaluator"], r["metric"])]) for r in new_rows
              if r["is_primary"] and r["evaluator"] != "health"
              and (r["evaluator"], r["metric"]) in old]
    if not shared:
        return GateDecision(False, decision.compared, [{
            "evaluator": "-", "metric": "labelled primary metric",
            "note": "no labelled evaluation set shared with the active version: improvement "
                    "cannot be shown (set evaluate.beir or evaluate.sts)"}])
    failures = [{"evaluator": n["evaluator"], "metric": n["metric"], "candidate": n["value"],
                 "active": o["value"], "tolerance": 0.0,
                 "note": f"{n['evaluator']} {n['metric']}: {n['value']:.4f} does not improve on "
                         f"the active {o['value']:.4f} (required for a retrained model)"}
                for n, o in shared
                if not (n["value"] > o["value"] if n["greater_is_better"]
                        else n["value"] < o["value"])]
    return GateDecision(not failures, decision.compared, failures)
