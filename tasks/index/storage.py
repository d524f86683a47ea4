"""The storage-facing index stage: build a version's index from the lake, save it, open it again.

Input: the warehouse and a published version. Output: an `IndexedVersion` (the ANN index over
its distinct chunk texts, the rows search shows, and the distinct vectors when asked) and, on
build, the `IndexReport`. The files themselves (staging, rename, meta check) are
`warehouse/indexes.py`'s; which backend reads them is named in their meta.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from tasks.embed.base import Embedder
from tasks.index import lexical, probes
from tasks.index.ann import ExactIndex, backend
from tasks.index.build import (
    EF_LADDER,
    IndexConfig,
    IndexReport,
    VersionIndex,
    build_index,
    tie_aware_recall,
)
from tasks.index.hits import HitRows, IndexedVersion, index_rows
from warehouse import indexes, query_log
from warehouse.errors import MixedModels
from warehouse.store import Version, Warehouse


def build_version_index(warehouse: Warehouse, version: Version, config: IndexConfig,
                        queries: np.ndarray | None = None, embedder: Embedder | None = None
                        ) -> tuple[IndexedVersion, IndexReport]:
    """Build, tune and save the index of `version` (one entry per distinct chunk text).

    `queries`: configured labelled queries to tune on. Without them, `embedder` (the version's
    model) embeds logged or probe queries to tune on (`tasks/index/probes.py`); without it, the
    index tunes on its own vectors.

    Raises:
        MixedModels: a chunk of the version has no vector of the version's model.
    """
    hashes, vectors = warehouse.distinct_vectors(version)  # label i: the i-th distinct text
    chunks = warehouse.chunks(version)
    found = pc.index_in(chunks["text_hash"], value_set=hashes)  # null: no vector of its text
    if found.null_count:
        raise MixedModels(f"version {version.version_id}: some chunks have no vector of model "
                          f"{version.model_fingerprint}")
    labels = found.to_numpy().astype(np.int64)
    logged = query_log.texts(warehouse, config.log_sample) if embedder is not None else []
    tuning = probes.tuning_queries(queries, logged, chunks["text"].to_pylist(), embedder,
                                   config.sample_queries, config.log_min_queries, config.seed)
    ann, report = build_index(vectors, np.arange(len(vectors), dtype=np.int64), config,
                              tuning.vectors, tuning.kind, tuning.log_vectors)
    report = replace(report, count=chunks.num_rows)
    rows = index_rows(chunks, labels)
    keys, texts = chunks["chunk_key"].to_numpy(), chunks["text"]

    def write(directory: Path) -> None:
        ann.save(directory)
        if config.bm25:
            lexical.build(directory, keys, texts)

    directory = indexes.save(warehouse, version, write, rows, report.as_dict())
    return _indexed(version, ann, rows, vectors, directory), report


def open_version_index(warehouse: Warehouse, version: Version, with_vectors: bool = False
                       ) -> IndexedVersion:
    """The saved index of `version`, checked to be its own.

    `with_vectors`: also read the distinct vectors from the lake (evaluation needs them; search
    does not).

    Raises:
        IndexMismatch: no index, or one built for another version, model or snapshot.
    """
    directory, meta = indexes.checked(warehouse, version)
    report = meta.get("report", {})
    ann = backend(meta.get("backend") or "hnswlib").load(directory, int(meta["dimension"]),
                                                         int(report.get("distinct", 0)))
    ann.set_ef(int(meta.get("ef") or 10))
    rows = indexes.read_rows(directory)
    vectors = warehouse.distinct_vectors(version)[1] if with_vectors else \
        np.zeros((0, int(meta["dimension"])), dtype=np.float32)
    return _indexed(version, ann, rows, vectors, directory)


@dataclass(frozen=True)
class Retune:
    """What `retune` found on the logged queries and did to a version's ef."""

    version_id: int
    queries: int  # logged queries measured
    ef_before: int
    ef_after: int
    recall_before: float | None  # None: too few logged queries to measure
    recall_after: float | None
    target: float
    report: dict[str, Any]  # the index report as now recorded

    @property
    def changed(self) -> bool:
        return self.ef_after != self.ef_before

    def as_dict(self) -> dict[str, Any]:
        return {"version_id": self.version_id, "queries": self.queries,
                "ef_before": self.ef_before, "ef_after": self.ef_after,
                "recall_before": self.recall_before, "recall_after": self.recall_after,
                "target_recall": self.target, "changed": self.changed}


def retune(warehouse: Warehouse, version: Version, embedder: Embedder, config: IndexConfig,
           min_queries: int = 10) -> Retune:
    """Measure the index's recall on the logged queries; below target, raise `ef` (a query-time
    setting: the graph files are not touched) to the smallest step of `EF_LADDER` that reaches
    it. The new ef and recall are written to the index's meta.json and returned; the caller
    records them on the version.
    """
    indexed = open_version_index(warehouse, version, with_vectors=True)
    directory, meta = indexes.checked(warehouse, version)
    report = dict(meta.get("report") or {})
    ef = before = int(meta.get("ef") or indexed.index.ef)
    target = config.target_recall  # today's target, which may be above the one built for
    k = int(report.get("recall_k") or config.recall_k)
    logged = query_log.texts(warehouse, config.log_sample)
    if len(logged) < min_queries or len(indexed.vectors) == 0:
        return Retune(version.version_id, len(logged), ef, ef, None, None, target, report)
    queries = probes.embed_alone(logged, embedder)
    ann, vectors = indexed.index.ann, indexed.vectors
    _, truth = ExactIndex(vectors, np.arange(len(vectors), dtype=np.int64)).query(queries, k)
    recall = first = tie_aware_recall(ann.query(queries, k)[1], truth)
    for step in (e for e in EF_LADDER if e > before):
        if recall >= target:
            break
        ann.set_ef(step)
        ef, recall = step, tie_aware_recall(ann.query(queries, k)[1], truth)
    report.update(ef=ef, log_recall=round(recall, 4), log_queries=len(logged),
                  target_recall=target)
    if ef != before:
        report.update(retuned_from=before, retuned_on="log")
    indexes.update_meta(warehouse, version, {"ef": ef, "report": report})
    return Retune(version.version_id, len(logged), before, ef, round(first, 4),
                  round(recall, 4), target, report)


def load_version_index(warehouse: Warehouse, version: Version) -> VersionIndex:
    """Just the index of `version` (answers with chunk keys)."""
    return open_version_index(warehouse, version).index


def _indexed(version: Version, ann, rows, vectors: np.ndarray, directory: Path
             ) -> IndexedVersion:
    labels = rows["label"].to_numpy()
    offsets = np.searchsorted(labels, np.arange(len(ann) + 1), side="left")
    index = VersionIndex(ann, rows["chunk_key"].to_numpy(), offsets)
    return IndexedVersion(version.version_id, index, HitRows(rows), labels, vectors, directory)


__all__ = ["IndexReport", "Retune", "build_version_index", "load_version_index",
           "open_version_index", "retune"]
