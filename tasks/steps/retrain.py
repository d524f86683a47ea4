"""Steps of the retrain flow: the whole corpus (active documents + batch), then fine-tuning."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task
from prefect.cache_policies import NONE

from tasks import chunk, clean, finetune, load, prep
from tasks.embed import EmbedConfig, load_embedder, version_embedder
from tasks.errors import WouldLoseDocuments
from tasks.schema import QUARANTINE
from tasks.steps.timing import timed
from warehouse.store import Version, Warehouse


@task(name="retrain-corpus", cache_policy=NONE)
@timed("read")
def retrain_corpus(warehouse: Warehouse, active: Version, source: Path | None,
                   source_config: load.SourceConfig, clean_config: clean.CleanConfig
                   ) -> prep.Corpus:
    """The active version's documents, with the batch at `source` (if any) on top.

    Documents of the batch replace those with the same id; nothing is deleted.

    Raises:
        WouldLoseDocuments: (a guard) the result lacks documents of the active version.
    """
    base = warehouse.documents(active)
    if source is None:
        corpus = prep.Corpus(f"version {active.version_id}", base.slice(0, 0),
                             QUARANTINE.empty_table(), 0)
    else:
        corpus = prep.read_corpus(source, source_config, clean_config)
    merged = prep.union(base, corpus)
    lost = pc.invert(pc.is_in(base["doc_id"], merged.documents["doc_id"]))
    n_lost = int(pc.sum(lost.cast(pa.int64())).as_py() or 0)
    if n_lost:
        raise WouldLoseDocuments(
            f"the retrain candidate would hold {merged.documents.num_rows} documents; the "
            f"active version {active.version_id} holds {base.num_rows}: {n_lost} would be "
            "deleted. Nothing was trained.")
    return merged


@task(name="train-model", cache_policy=NONE)
@timed("train")
def train_model(warehouse: Warehouse, active: Version, corpus: prep.Corpus,
                config: finetune.RetrainConfig, chunk_config: chunk.ChunkConfig
                ) -> tuple[str, dict[str, Any]]:
    """Fine-tune the active model on pairs mined from `corpus`; returns (saved path, facts)."""
    embedder = version_embedder(active)
    chunking = prep.Chunking(chunk_config, embedder.max_seq_length)
    documents, chunks = prep.chunk_corpus(corpus.documents, embedder.tokenizer, chunking)
    pairs = finetune.mine_pairs(documents, chunks, config.max_pairs, config.seed)
    staging = warehouse.models_dir() / "_training"
    shutil.rmtree(staging, ignore_errors=True)
    facts = finetune.finetune(active.model_location, pairs, config, staging)
    shutil.rmtree(staging / "_trainer", ignore_errors=True)
    fingerprint = load_embedder(EmbedConfig(model=str(staging))).fingerprint
    final = warehouse.models_dir() / fingerprint
    if final.exists():  # the same weights were trained before: keep that copy
        shutil.rmtree(staging)
    else:
        staging.rename(final)
    return str(final), {**facts, "fingerprint": fingerprint}
