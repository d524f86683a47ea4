"""Embedding shards on Dask workers: each worker loads the model once and writes Parquet parts.

Input: shards of (text_hash, text) and the embed config; output: one Parquet file per shard,
(model_fingerprint, text_hash, vector), in a staging directory the driver can read (shared
storage on a real cluster). The driver publishes all parts as one version.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.embed import EmbedConfig, Embedder, embed_texts, load_embedder, vectors_table
from tasks.errors import ModelError


@cache
def _worker_embedder(config_json: str) -> Embedder:
    """The model of this worker process, loaded on its first shard and kept for the rest.

    A process-level cache on purpose: loading weights per shard would cost more than embedding.
    """
    return load_embedder(EmbedConfig.model_validate_json(config_json))


def embed_shard(hashes: list[str], texts: list[str], config: EmbedConfig, fingerprint: str,
                part: Path) -> str:
    """Embed one shard on this worker and write it to `part`; returns the part's path.

    Raises:
        ModelError: the worker's model is not the driver's (another file at the same path).
    """
    embedder = _worker_embedder(json.dumps(config.model_dump(mode="json"), sort_keys=True))
    if embedder.fingerprint != fingerprint:
        raise ModelError(f"worker model {config.model!r} has fingerprint "
                         f"{embedder.fingerprint}, the driver's has {fingerprint}: workers "
                         "must load the same weights")
    table = vectors_table(fingerprint, hashes, embed_texts(texts, embedder, config.batch_size))
    part.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, part)
    return str(part)


def read_parts(parts: list[str]) -> pa.Table:
    """All shards' vectors as one table, in shard order."""
    tables = [pq.read_table(p) for p in parts]
    return pa.concat_tables(tables) if tables else vectors_table("", [], _empty())


def _empty():
    import numpy as np

    return np.zeros((0, 1), dtype=np.float32)
