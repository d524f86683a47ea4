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
from tasks.embed.embedding import embed_texts, load_embedder, version_embedder
from tasks.errors import OverBudget, WouldLoseDocuments
from tasks.index.storage import open_version_index
from tasks.prep import chain, chunk, clean, load
from tasks.prep.schema import QUARANTINE
from tasks.quality.logged import (
    DEPTH,
    RULES,
    evaluate_logged,
    make_logged_set,
    ranked,
    reference_pooled,
    split_log,
    version_rankings,
    views_of,
)
from tasks.quality.mined import MinedSet, evaluate_mined, mine
from tasks.quality.scoring import EvaluateConfig, evaluate_general, metric_rows
from tasks.steps import log
from tasks.steps.report import now
from tasks.steps.timing import timed
from tasks.train import finetune
from tasks.train.pairs import (
    Pair,
    add_hard_negatives,
    count_kinds,
    pseudo_relevant,
    query_log_pairs,
    training_pairs,
)
from warehouse import query_log
from warehouse.errors import IndexMismatch
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


def no_query_log(warehouse: Warehouse, config: finetune.RetrainConfig, labelled: bool
                 ) -> str | None:
    """Why a fine-tune would be pointless (None when it is not): with no labelled set, or
    with logged searches as its only pairs, it needs `retrain.log_min_searches` distinct
    logged searches to learn from and to be judged by."""
    if labelled and set(config.pairs) != {"log"}:
        return None
    searches = len(query_log.texts(warehouse, config.log_max_searches))
    if searches >= config.log_min_searches:
        return None
    return (f"no query log: {searches} distinct logged searches, fewer than "
            f"retrain.log_min_searches {config.log_min_searches}; " + (
                "retrain.pairs has only logged searches to train on" if labelled else
                "a label-free fine-tune learns from logged searches and is judged on held-out "
                "ones") + " (search this warehouse through the CLI or the dashboard"
            + ("" if labelled else ", or configure evaluate.beir") + ")")


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


@task(name="query-log-set", cache_policy=NONE)
@timed("evaluate")
def query_log_set(warehouse: Warehouse, active: Version, config: finetune.RetrainConfig,
                  mined: Path | None, batch_size: int, held_out: list[str] | None = None
                  ) -> tuple[Path | None, list[Pair], int]:
    """Split the query log into held-out and training searches and pseudo-label both (BM25
    and the active model, `tasks/train/pairs.pseudo_relevant`); store the held-out set with
    the active model's scores on it, record those and the active model's pooled score.

    Returns (the stored set's path, training pairs: each training search with the document
    hybrid search returns first and a hard negative, the number of distinct logged searches);
    (None, [], n) when fewer than `retrain.log_min_searches` were logged.
    """
    texts = query_log.texts(warehouse, config.log_max_searches)
    if len(texts) < config.log_min_searches:
        log(f"query log: {len(texts)} distinct searches, fewer than retrain.log_min_searches "
            f"{config.log_min_searches}: no query-log set")
        return None, [], len(texts)
    try:
        indexed = open_version_index(warehouse, active, with_vectors=True)
    except IndexMismatch as exc:
        log(f"query log: the active version's index does not open ({exc}): no query-log set")
        return None, [], len(texts)
    held, training = split_log(texts, config.log_held_out)
    documents = warehouse.documents(active)  # what both models are judged over (not the batch)
    doc_ids = documents["doc_id"].to_pylist()
    doc_texts = dict(zip(doc_ids, documents["text"].to_pylist(), strict=True))
    searches = {**held, **training}
    lexical = bm25_rankings(doc_ids, [doc_texts[d] for d in doc_ids], searches)
    embedder = version_embedder(active)
    qids = sorted(searches)
    run = version_rankings(indexed, embed_texts([searches[q] for q in qids], embedder,
                                                batch_size), qids)
    dense = ranked(run)
    logged = make_logged_set(held, {rule: pseudo_relevant({q: lexical[q] for q in held}, dense,
                                                          rule) for rule in RULES},
                             len(training), doc_ids)
    reference = evaluate_logged(logged, run)
    logged = logged.with_reference(active.version_id, reference)
    path = logged.save(warehouse.path / "evalsets" / f"{logged.name}.json")
    warehouse.location.upload(f"evalsets/{logged.name}.json")
    mined_set = MinedSet.load(mined) if mined is not None else None
    _, references = views_of(mined_set, logged)
    sets = {logged.name, *([mined_set.name] if mined_set is not None else [])}
    with open_writer(warehouse, lock=False) as writer:
        writer.record_metrics(active.version_id, metric_rows(
            [*reference, reference_pooled(references, sets)]))
    train_lexical = {q: lexical[q] for q in training}
    positives = pseudo_relevant(train_lexical, dense, "fused")
    pairs = query_log_pairs(training, positives, doc_texts,
                            train_lexical if config.hard_negatives else None,
                            dense if config.hard_negatives else None,
                            exclude=set(held_out or []))  # the mined set's documents
    log(f"query-log set {logged.name}: {len(held)} held-out searches (pseudo-labelled: "
        + ", ".join(f"{e.evaluator.split(':')[0]} ndcg@10 {e.metrics['ndcg@10']:.4f}"
                    for e in reference) + f" for active version {active.version_id}), "
        f"{len(pairs)} training pairs from {len(training)} searches")
    return path, pairs, len(texts)


def bm25_rankings(doc_ids: list[str], texts: list[str], queries: dict[str, str]
                  ) -> dict[str, list[str]]:
    """BM25's document ranking of each query (a temporary DuckDB FTS index over the
    documents), best first."""
    import tempfile

    import numpy as np

    from tasks.index.lexical import Bm25, build

    with tempfile.TemporaryDirectory(prefix="embedpipe-bm25-") as tmp:
        build(Path(tmp), np.arange(len(doc_ids)), texts)
        bm25 = Bm25(Path(tmp))
        try:
            return {q: [doc_ids[int(k)] for k in bm25.search(text, DEPTH)[0]]
                    for q, text in queries.items()}
        finally:
            bm25.close()


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
                held_out: list[str] | None = None, log_pairs: list[Pair] | None = None,
                held_out_searches: int = 0) -> tuple[str, dict[str, Any]]:
    """Fine-tune the active model on pairs mined from `corpus` (never from `held_out`
    documents) and on `log_pairs` (logged searches, when `retrain.pairs` has "log");
    returns (saved path, facts)."""
    embedder = version_embedder(active)
    chunking = chain.Chunking(chunk_config, embedder.max_seq_length)
    documents, chunks = chain.chunk_corpus(corpus.documents, embedder.tokenizer, chunking)
    pairs = training_pairs(documents, chunks, config.max_pairs, config.seed,
                           exclude=set(held_out or []),
                           kinds=[k for k in config.pairs if k != "log"])
    if config.hard_negatives:
        pairs = add_hard_negatives(pairs, embedder)
    if "log" in config.pairs:
        excluded = set(held_out or [])
        pairs = pairs + [p for p in log_pairs or [] if p.doc_id not in excluded]
    if any(p.negative for p in pairs):  # triples only: a pair without a negative is not trained
        pairs = [p for p in pairs if p.negative]
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
                        "held_out_searches": held_out_searches,
                        "recipe": finetune.recipe(config.pairs, config.hard_negatives),
                        "batch_size": config.batch_size,
                        "learning_rate": config.learning_rate}
