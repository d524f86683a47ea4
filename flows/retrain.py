"""The retrain flow: fine-tune (or just re-embed), build a candidate version, let the gate decide.

The candidate's corpus is the active version's documents with the new batch (if any) on top:
changed documents are replaced, nothing is deleted. `finetune`: a copy of the active model is
trained on pairs mined from that corpus (no labels), saved as `models/<fingerprint>/` inside
the warehouse, and the corpus is re-embedded with it. `reembed`: the active model re-embeds it.
Either way the candidate is evaluated and promoted only if the gate passes; a fine-tuned model
must also beat the active one on a labelled primary metric. Without a labelled set, both models
are scored on a set mined from the corpus (`tasks/quality/mined.py`) and on held-out logged
searches (`tasks/quality/logged.py`), both kept out of training; a fine-tune is promoted only on
a significant gain pooled over all of them, so a label-free fine-tune needs a query log
(`retrain.log_min_searches` distinct searches): without one it ends `Skipped`.

Cost control, before any work: a cooldown (`retrain.min_interval` since the last retrain that
trained or re-embedded: the run ends `Skipped`), a query log to learn from (above) and a budget
(`retrain.max_seconds` against the estimated training time: refused with the estimate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from pydantic import BaseModel

from flows.config import EmbedpipeConfig, resolve
from flows.ingest import ingest_documents
from flows.outcome import finish
from tasks.quality.logged import LoggedSet
from tasks.quality.scoring import labelled
from tasks.steps import report
from tasks.steps import retrain as steps
from warehouse.lock import warehouse_lock


class RetrainReport(BaseModel):
    strategy: str
    base_version: int
    model_location: str
    training: dict[str, Any]
    candidate_version: int | None
    status: str  # published (promoted) | rejected | unchanged | skipped (cooldown)
    gate: str
    documents: int = 0  # in the candidate
    evaluation_set: str | None = None  # the mined set's file, when no labelled set was given
    query_log_set: str | None = None  # the held-out logged searches' file, when there was a log


@flow(name="retrain")
def retrain(config: EmbedpipeConfig | None = None, source: str | None = None,
            overrides: dict[str, Any] | None = None) -> RetrainReport:
    """Retrain on the active corpus plus the batch at `source` (if given).

    `config` None (served runs): read now; `overrides` ("section.key": value) on top.
    """
    config = resolve(config, overrides)
    warehouse = config.warehouse.open()
    started = report.now()
    finetuned = config.retrain.strategy == "finetune"
    with warehouse_lock(warehouse, max(config.warehouse.lock_wait_seconds,
                                       config.retrain.lock_wait_seconds)):
        active = warehouse.readable()
        wait = steps.cooldown_left(warehouse, config.retrain) or (
            steps.no_query_log(warehouse, config.retrain, labelled(config.evaluate))
            if finetuned else None)
        if wait:
            skipped = RetrainReport(strategy=config.retrain.strategy,
                                    base_version=active.version_id,
                                    model_location=active.model_location, training={},
                                    candidate_version=None, status="skipped", gate=wait)
            report.record_run(warehouse, "retrain", started, "skipped", wait, None, source,
                              skipped.model_dump())
            report.log(wait)
            return finish(skipped, "Skipped", wait)
        if finetuned:
            steps.check_budget(warehouse, config.retrain)
        corpus = steps.retrain_corpus(warehouse, active, Path(source) if source else None,
                                      config.source, config.clean)
        evaluate, held_out, mined = config.evaluate, list[str](), None
        if not labelled(config.evaluate):
            mined, held_out = steps.mine_evaluation_set(warehouse, active, corpus,
                                                        config.evaluate, config.embed.batch_size)
            evaluate = config.evaluate.model_copy(update={"mined": mined})
        logged, log_pairs = None, list[steps.Pair]()
        if not labelled(config.evaluate) or (finetuned and "log" in config.retrain.pairs):
            logged, log_pairs, _ = steps.query_log_set(warehouse, active, config.retrain, mined,
                                                       config.embed.batch_size, held_out)
            if not labelled(config.evaluate):  # with a labelled set, the gate decides on it
                evaluate = evaluate.model_copy(update={"logged": logged})
        if config.retrain.general_sts is not None:  # the guard: the active model scored too
            steps.score_general(warehouse, active, config.retrain.general_sts,
                                config.embed.batch_size)
            evaluate = evaluate.model_copy(update={"general": config.retrain.general_sts})
        model, training = active.model_location, dict[str, Any]()
        if finetuned:
            model, training = steps.train_model(
                warehouse, active, corpus, config.retrain, config.chunk, held_out, log_pairs,
                len(LoggedSet.load(logged).queries) if logged else 0)
        candidate = config.model_copy(update={
            "embed": config.embed.model_copy(update={"model": model}), "evaluate": evaluate,
            "gate": config.gate.model_copy(update={"require_improvement": finetuned})})
        summary = ingest_documents(corpus, candidate, warehouse,
                                   f"retrain ({config.retrain.strategy}) of version "
                                   f"{active.version_id}")
        outcome = RetrainReport(
            strategy=config.retrain.strategy, base_version=active.version_id,
            model_location=model, training=training,
            candidate_version=summary.version_id if summary.status != "unchanged" else None,
            status=summary.status, gate=summary.gate, documents=summary.kept,
            evaluation_set=str(evaluate.mined) if evaluate.mined else None,
            query_log_set=str(logged) if logged else None)
        name, message = retrain_outcome(outcome, summary.gate_headline)
        report.record_run(warehouse, "retrain", started, outcome.status, message,
                          outcome.candidate_version, source, outcome.model_dump())
        if outcome.candidate_version is not None:  # again, now with its Training section
            report.write_card(warehouse, outcome.candidate_version)
    report.log(message)
    return finish(outcome, name, message)


def retrain_outcome(outcome: RetrainReport, headline: str) -> tuple[str, str]:
    """The end state of a retrain: `Published`, `Rejected` (with the gate's reason) or
    `Unchanged`."""
    what = f"retrain ({outcome.strategy}) of v{outcome.base_version}"
    if outcome.status == "published":  # with the gain's interval when the gate measured one
        detail = headline.removeprefix("passed").removeprefix(": ")
        return "Published", f"{what}: published v{outcome.candidate_version}" + (
            f": {detail}" if detail else "")
    if outcome.status == "rejected":
        return "Rejected", f"{what}: rejected v{outcome.candidate_version}: {headline}"
    return "Unchanged", f"{what}: unchanged"
