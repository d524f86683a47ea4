"""Embedding shards on Dask workers: each worker loads the model once and writes Parquet parts.

Input: shards of (text_hash, text) and the embed config; output: one Parquet file per shard,
(model_fingerprint, text_hash, vector), in the warehouse's `staging/<run>/` folder, which the
driver reads: a shared directory, or the warehouse's prefix on object storage, where workers
write with their own S3 credentials (the same AWS_* environment). The driver publishes all parts
as one version.
"""

from __future__ import annotations

import json
from functools import cache

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.embed.base import EmbedConfig, Embedder
from tasks.embed.embedding import embed_texts, load_embedder, vectors_table
from tasks.errors import ModelError
from warehouse.location import Location


@cache
def _worker_embedder(config_json: str) -> Embedder:
    """The model of this worker process, loaded on its first shard and kept for the rest.

    A process-level cache on purpose: loading weights per shard would cost more than embedding.
    """
    return load_embedder(EmbedConfig.model_validate_json(config_json))


def embed_shard(hashes: list[str], texts: list[str], config: EmbedConfig, fingerprint: str,
                location: Location, part: str) -> str:
    """Embed one shard on this worker and write it to `part` (a name under `location`);
    returns `part`.

    Raises:
        ModelError: the worker's model is not the driver's (another file at the same path).
    """
    embedder = _worker_embedder(json.dumps(config.model_dump(mode="json"), sort_keys=True))
    if embedder.fingerprint != fingerprint:
        raise ModelError(f"worker model {config.model!r} has fingerprint "
                         f"{embedder.fingerprint}, the driver's has {fingerprint}: workers "
                         "must load the same weights")
    table = vectors_table(fingerprint, hashes, embed_texts(texts, embedder, config.batch_size))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    location.write_bytes(part, sink.getvalue().to_pybytes())
    return part


def read_parts(location: Location, parts: list[str]) -> pa.Table:
    """All shards' vectors as one table, in shard order.

    Raises:
        ModelError: a part a worker reported is not there (staging is not shared storage).
    """
    tables = []
    for part in parts:
        data = location.read_bytes(part)
        if data is None:
            raise ModelError(f"embedded shard {location.join(part)} is missing: Dask workers "
                             "must write where the driver reads (shared storage or s3://)")
        tables.append(pq.read_table(pa.BufferReader(data)))
    return pa.concat_tables(tables) if tables else vectors_table("", [], _empty())


def _empty():
    import numpy as np

    return np.zeros((0, 1), dtype=np.float32)
