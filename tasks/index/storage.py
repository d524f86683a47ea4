"""The storage-facing index stage: build a version's index from the lake, save it, open it again.

Input: the warehouse and a published version. Output: an `IndexedVersion` (the ANN index over
its distinct chunk texts, the rows search shows, and the distinct vectors when asked) and, on
build, the `IndexReport`. The files themselves (staging, rename, meta check) are
`warehouse/indexes.py`'s; which backend reads them is named in their meta.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from tasks.index import lexical
from tasks.index.ann import backend
from tasks.index.build import IndexConfig, IndexReport, VersionIndex, build_index
from tasks.index.hits import HitRows, IndexedVersion, index_rows
from warehouse import indexes
from warehouse.errors import MixedModels
from warehouse.store import Version, Warehouse


def build_version_index(warehouse: Warehouse, version: Version, config: IndexConfig,
                        queries: np.ndarray | None = None) -> tuple[IndexedVersion, IndexReport]:
    """Build, tune and save the index of `version` (one entry per distinct chunk text).

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
    ann, report = build_index(vectors, np.arange(len(vectors), dtype=np.int64), config, queries)
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


def load_version_index(warehouse: Warehouse, version: Version) -> VersionIndex:
    """Just the index of `version` (answers with chunk keys)."""
    return open_version_index(warehouse, version).index


def _indexed(version: Version, ann, rows, vectors: np.ndarray, directory: Path
             ) -> IndexedVersion:
    labels = rows["label"].to_numpy()
    offsets = np.searchsorted(labels, np.arange(len(ann) + 1), side="left")
    index = VersionIndex(ann, rows["chunk_key"].to_numpy(), offsets)
    return IndexedVersion(version.version_id, index, HitRows(rows), labels, vectors, directory)


__all__ = ["IndexReport", "build_version_index", "load_version_index", "open_version_index"]
