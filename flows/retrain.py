"""The retrain flow: fine-tune (or just re-embed), build a candidate version, let the gate decide.

`finetune`: a copy of the active model is trained on pairs mined from the corpus (no labels),
saved as `models/<fingerprint>/` inside the warehouse, and the corpus is re-embedded with it.
`reembed`: the active model re-embeds the corpus. Either way the candidate is evaluated and
promoted only if the gate passes; with `gate.require_improvement` it must also beat the active
version on a labelled primary metric. The outcome is recorded on the candidate's version row.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NONE
from pydantic import BaseModel

from flows.config import EmbedpipeConfig
from flows.ingest import ingest_locked
from tasks import chunk, clean, finetune, load, tokenize
from tasks.embed import EmbedConfig, load_embedder
from warehouse.lock import writer_lock
from warehouse.store import Version, Warehouse


class RetrainReport(BaseModel):
    strategy: str
    base_version: int
    model_location: str
    training: dict[str, Any]
    candidate_version: int | None
    status: str  # published (promoted) | rejected | unchanged
    gate: str


@task(name="export-corpus", cache_policy=NONE)
def export_active_corpus(warehouse: Warehouse, version: Version, target: Path) -> Path:
    """The active version's documents as JSONL: the corpus a retrain re-embeds by default."""
    con = warehouse.connect(version.version_id)
    rows = con.execute("SELECT doc_id, title, text FROM documents ORDER BY doc_id").fetchall()
    con.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as handle:
        for doc_id, title, text in rows:
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    return target


@task(name="train-model", cache_policy=NONE)
def train_model(warehouse: Warehouse, version: Version, corpus: Path, config: EmbedpipeConfig
                ) -> tuple[str, dict[str, Any]]:
    """Fine-tune the active model on pairs from `corpus`; returns (saved model path, facts)."""
    embedder = load_embedder(EmbedConfig(model=version.model_location))
    docs = clean.clean_documents(load.load_source(corpus, config.source).documents,
                                 config.clean).documents
    chunks = chunk.chunk_documents(tokenize.tokenize_documents(docs, embedder.tokenizer),
                                   embedder.tokenizer, embedder.max_seq_length, config.chunk)
    pairs = finetune.mine_pairs(docs, chunks, config.retrain.max_pairs, config.retrain.seed)
    staging = warehouse.models_dir() / "_training"
    shutil.rmtree(staging, ignore_errors=True)
    facts = finetune.finetune(version.model_location, pairs, config.retrain, staging)
    shutil.rmtree(staging / "_trainer", ignore_errors=True)
    fingerprint = load_embedder(EmbedConfig(model=str(staging))).fingerprint
    final = warehouse.models_dir() / fingerprint
    if final.exists():  # the same weights were trained before: keep that copy
        shutil.rmtree(staging)
    else:
        staging.rename(final)
    return str(final), {**facts, "fingerprint": fingerprint}


@flow(name="retrain")
def retrain(config: EmbedpipeConfig, source: str | None = None) -> RetrainReport:
    """Retrain on `source` (default: the active version's own documents)."""
    warehouse = Warehouse(config.warehouse.path, config.warehouse.catalog)
    with writer_lock(warehouse.path, config.warehouse.lock_wait_seconds):
        active = warehouse.version()
        corpus = Path(source) if source else export_active_corpus(
            warehouse, active, warehouse.path / "tmp" / f"retrain-v{active.version_id}.jsonl")
        model, training = active.model_location, dict[str, Any]()
        if config.retrain.strategy == "finetune":
            model, training = train_model(warehouse, active, corpus, config)
        candidate = config.model_copy(update={
            "embed": config.embed.model_copy(update={"model": model}),
            "gate": config.gate.model_copy(update={"require_improvement": True})
            if config.retrain.strategy == "finetune" else config.gate})
        summary = ingest_locked(str(corpus), candidate, warehouse,
                                message=f"retrain ({config.retrain.strategy}) of version "
                                        f"{active.version_id}")
    return RetrainReport(strategy=config.retrain.strategy, base_version=active.version_id,
                         model_location=model, training=training,
                         candidate_version=summary.version_id if summary.status != "unchanged"
                         else None, status=summary.status, gate=summary.gate)
