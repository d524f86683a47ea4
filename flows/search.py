"""Search a version: embed the query with that version's model, query its HNSW index, join text.

No Prefect here: search is a plain function so the CLI answers without starting any server.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tasks.embed import EmbedConfig, Embedder, load_embedder
from tasks.errors import ModelError
from tasks.store import load_version_index
from warehouse.store import Version, Warehouse

SNIPPET_CHARS = 240


@dataclass(frozen=True)
class SearchHit:
    rank: int
    score: float
    doc_id: str
    title: str | None
    chunk_id: str
    snippet: str
    version_id: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def version_embedder(version: Version) -> Embedder:
    """The model a version was built with, checked against its fingerprint."""
    embedder = load_embedder(EmbedConfig(model=version.model_location or version.model_name))
    if embedder.fingerprint != version.model_fingerprint:
        raise ModelError(
            f"model at {version.model_location} has fingerprint {embedder.fingerprint}, but "
            f"version {version.version_id} was embedded with {version.model_fingerprint}")
    return embedder


def search(warehouse: Warehouse, query: str, k: int = 10, version_id: int | None = None,
           embedder: Embedder | None = None) -> list[SearchHit]:
    """The `k` best documents for `query` (one hit per document: its best chunk).

    >>> from warehouse.store import open
    >>> wh = open(".embedpipe/warehouse")                          # doctest: +SKIP
    >>> search(wh, "parse command line arguments", k=3)[0].doc_id  # doctest: +SKIP
    'argparse'
    """
    version = warehouse.version(version_id)
    embedder = embedder or version_embedder(version)
    vector = embedder.encode([query], batch_size=1)
    return search_vector(warehouse, version, vector[0], k)


def search_vector(warehouse: Warehouse, version: Version, vector: np.ndarray, k: int
                  ) -> list[SearchHit]:
    """Hits for one query vector; over-fetches chunks so k distinct documents come back."""
    index = load_version_index(warehouse, version)
    labels, scores = index.query(vector.reshape(1, -1).astype(np.float32), k * 4)
    rows = warehouse.chunk_rows(version, [int(x) for x in labels[0]])
    hits: list[SearchHit] = []
    seen: set[str] = set()
    for label, score in zip(labels[0].tolist(), scores[0].tolist(), strict=True):
        row = rows.get(int(label))
        if row is None or row["doc_id"] in seen:
            continue
        seen.add(row["doc_id"])
        text = " ".join(row["text"].split())
        title = row["title"] or ""
        if title and text.startswith(title):  # the first chunk repeats the title
            text = text[len(title):].lstrip(" .:-—")
        snippet = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"
        hits.append(SearchHit(len(hits) + 1, round(float(score), 4), row["doc_id"], row["title"],
                              row["chunk_id"], snippet, version.version_id))
        if len(hits) == k:
            break
    return hits
