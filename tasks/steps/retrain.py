"""Steps of the retrain flow: the whole corpus (active documents + batch), then fine-tuning."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from prefect import task
from prefect.cache_policies import NONE

from tasks.embed.base import EmbedConfig
from tasks.embed.embedding import load_embedder, version_embedder
from tasks.errors import OverBudget, WouldLoseDocuments
from tasks.prep import chain, chunk, clean, load
from tasks.prep.schema import QUARANTINE
from tasks.quality.mined import evaluate_mined, mine
from tasks.quality.scoring import EvaluateConfig, evaluate_general, metric_rows
from tasks.steps import log
from tasks.steps.report import now
from tasks.steps.timing import timed
from tasks.train import finetune
from tasks.train.pairs import add_hard_negatives, count_kinds, training_pairs
from warehouse.store import Version, Warehouse
from warehouse.writer import open_writer


@task(name="retrain-corpus", cache_policy=NONE)
@timed("read")
def retrain_corpus(warehouse: Warehouse, active: Version, source: Path | None,
                   source_config: load.SourceConfig, clean_config: clean.CleanConfig
                   ) -> chain.Corpus:
    """The active version's documents, with the batch at `source` (if any) on top.

    Documents of the batch replace those with the same id; nothing is deleted.

    Raises:
        WouldLoseDocuments: (a guard) the result lacks documents of the active version.
    """
    base = warehouse.documents(active)
    if source is None:
        corpus = chain.Corpus(f"version {active.version_id}", base.slice(0, 0),
                             QUARANTINE.empty_table(), 0)
    else:
        corpus = chain.read_corpus(source, source_config, clean_config)
    merged = chain.union(base, corpus)
    lost = pc.invert(pc.is_in(base["doc_id"], merged.documents["doc_id"]))
    n_lost = int(pc.sum(lost.cast(pa.int64())).as_py() or 0)
    if n_lost:
        raise WouldLoseDocuments(
            f"the retrain candidate would hold {merged.documents.num_rows} documents; the "
            f"active version {active.version_id} holds {base.num_rows}: {n_lost} would be "
            "deleted. Nothing was trained.")
    return merged


def cooldown_left(warehouse: Warehouse, config: finetune.RetrainConfig) -> str | None:
    """Why a retrain must wait (the last one that trained or re-embedded finished less than
    `retrain.min_interval` ago), or None when it may run."""
    if config.min_interval <= 0:
        return None
    for run in warehouse.runs("retrain", limit=20):
        if run["status"] in ("published", "rejected"):
            since = (now() - run["finished_at"]).total_seconds()
            if since < config.min_interval:
                return (f"cooldown: the last retrain ({run['status']}) finished "
                        f"{since / 3600:.1f} h ago; retrain.min_interval is "
                        f"{config.min_interval / 3600:.1f} h")
            return None
    return None


def check_budget(warehouse: Warehouse, config: finetune.RetrainConfig) -> float:
    """The estimated training seconds (from this warehouse's last measured step time, else the
    configured default), refused when over `retrain.max_seconds`.

    Raises:
        OverBudget: naming the estimate, its parts and the limit. Nothing was trained.
    """
    measured = None
    for run in warehouse.runs("retrain", limit=20):
        measured = run["summary"].get("training", {}).get("step_seconds_at_32x256")
        if measured:
            break
    estimate = finetune.estimated_seconds(config, measured)
    if estimate > config.max_seconds:
        raise OverBudget(f"a retrain would train for about {estimate:.0f} s ({config.max_steps} "
                         f"steps at batch {config.batch_size} x {config.max_seq_length} tokens, "
                         f"{'measured' if measured else 'default'} step time), over "
                         f"retrain.max_seconds {config.max_seconds:.0f}; lower retrain.max_steps "
                         "or raise the budget")
    return estimate


@task(name="mine-evaluation-set", cache_policy=NONE)
@timed("evaluate")
def mine_evaluation_set(warehouse: Warehouse, active: Version, corpus: chain.Corpus,
                        config: EvaluateConfig, batch_size: int) -> tuple[Path, list[str]]:
    """Mine an in-domain set from the corpus, store it, and score the active model on it.

    Returns (the stored set's path, the held-out documents to keep out of training). The active
    version's score is recorded with its metrics, so the gate compares it with the candidate's
    on the same queries.
    """
    mined = mine(corpus.documents, config.mined_queries, config.mined_distractors, config.seed,
                 per_document=config.mined_per_document)
    evaluations = evaluate_mined(mined, version_embedder(active), batch_size)
    mined = mined.with_reference(active.version_id,  # what a candidate is paired with
                                 {q: v for e in evaluations for q, v in e.per_query.items()})
    path = mined.save(warehouse.path / "evalsets" / f"{mined.name}.json")
    warehouse.location.upload(f"evalsets/{mined.name}.json")
    with open_writer(warehouse, lock=False) as writer:
        writer.record_metrics(active.version_id, metric_rows(evaluations))
    log(f"mined evaluation set {mined.name}: {len(mined.queries)} sentence and "
        f"{len(mined.titles)} title queries over {len(mined.corpus)} documents; active version "
        f"{active.version_id} " + ", ".join(f"{e.evaluator.split(':')[0]} ndcg@10 "
                                            f"{e.metrics['ndcg@10']:.4f}" for e in evaluations))
    return path, mined.held_out


@task(name="score-general", cache_policy=NONE)
@timed("evaluate")
def score_general(warehouse: Warehouse, active: Version, path: Path, batch_size: int) -> None:
    """Score the active model on the general-domain guard set (recorded with its metrics, so
    the gate compares the candidate with it)."""
    evaluation = evaluate_general(path, version_embedder(active), batch_size)
    with open_writer(warehouse, lock=False) as writer:
        writer.record_metrics(active.version_id, metric_rows([evaluation]))
    log(f"general-domain guard {evaluation.evaluator}: active version {active.version_id} "
        f"spearman {evaluation.metrics['spearman']:.4f}")


@task(name="train-model", cache_policy=NONE)
@timed("train")
def train_model(warehouse: Warehouse, active: Version, corpus: chain.Corpus,
                config: finetune.RetrainConfig, chunk_config: chunk.ChunkConfig,
                held_out: list[str] | None = None) -> tuple[str, dict[str, Any]]:
    """Fine-tune the active model on pairs mined from `corpus` (never from `held_out`
    documents); returns (saved path, facts)."""
    embedder = version_embedder(active)
    chunking = chain.Chunking(chunk_config, embedder.max_seq_length)
    documents, chunks = chain.chunk_corpus(corpus.documents, embedder.tokenizer, chunking)
    pairs = training_pairs(documents, chunks, config.max_pairs, config.seed,
                           exclude=set(held_out or []), kinds=config.pairs)
    if config.hard_negatives:
        pairs = add_hard_negatives(pairs, embedder)
    kinds = count_kinds(pairs)
    staging = warehouse.models_dir() / "_training"
    shutil.rmtree(staging, ignore_errors=True)
    facts = finetune.finetune(active.model_location, pairs, config, staging)
    shutil.rmtree(staging / "_trainer", ignore_errors=True)
    fingerprint = load_embedder(EmbedConfig(model=str(staging), backend="torch")).fingerprint
    final = warehouse.models_dir() / fingerprint
    if final.exists():  # the same weights were trained before: keep that copy
        shutil.rmtree(staging)
    else:
        staging.rename(final)
    step = finetune.step_seconds_at_32x256(facts, config)
    log(f"fine-tuned {facts['steps']} steps on {facts['pairs']} pairs in {facts['seconds']} s")
    return str(final), {**facts, "fingerprint": fingerprint, "step_seconds_at_32x256": step,
                        "pairs_by_kind": kinds, "held_out_documents": len(held_out or []),
                        "recipe": finetune.recipe(config.pairs, config.hard_negatives),
                        "batch_size": config.batch_size,
                        "learning_rate": config.learning_rate}
