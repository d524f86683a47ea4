"""The retrain flow: fine-tune (or just re-embed), build a candidate version, let the gate decide.

The candidate's corpus is the active version's documents with the new batch (if any) on top:
changed documents are replaced, nothing is deleted. `finetune`: a copy of the active model is
trained on pairs mined from that corpus (no labels), saved as `models/<fingerprint>/` inside
the warehouse, and the corpus is re-embedded with it. `reembed`: the active model re-embeds it.
Either way the candidate is evaluated and promoted only if the gate passes; with
`gate.require_improvement` it must also beat the active version on a labelled primary metric.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from pydantic import BaseModel

from flows.config import EmbedpipeConfig, resolve
from flows.ingest import ingest_documents
from flows.outcome import finish
from tasks.steps import report
from tasks.steps import retrain as steps
from warehouse.lock import writer_lock


class RetrainReport(BaseModel):
    strategy: str
    base_version: int
    model_location: str
    training: dict[str, Any]
    candidate_version: int | None
    status: str  # published (promoted) | rejected | unchanged
    gate: str
    documents: int = 0  # in the candidate


@flow(name="retrain")
def retrain(config: EmbedpipeConfig | None = None, source: str | None = None,
            overrides: dict[str, Any] | None = None) -> RetrainReport:
    """Retrain on the active corpus plus the batch at `source` (if given).

    `config` None (served runs): read now; `overrides` ("section.key": value) on top.
    """
    config = resolve(config, overrides)
    warehouse = config.warehouse.open()
    started = report.now()
    with writer_lock(warehouse.path, config.warehouse.lock_wait_seconds):
        active = warehouse.readable()
        corpus = steps.retrain_corpus(warehouse, active, Path(source) if source else None,
                                      config.source, config.clean)
        model, training = active.model_location, dict[str, Any]()
        if config.retrain.strategy == "finetune":
            model, training = steps.train_model(warehouse, active, corpus, config.retrain,
                                                config.chunk)
        finetuned = config.retrain.strategy == "finetune"
        candidate = config.model_copy(update={
            "embed": config.embed.model_copy(update={"model": model}),
            "gate": config.gate.model_copy(update={"require_improvement": finetuned})})
        summary = ingest_documents(corpus, candidate, warehouse,
                                   f"retrain ({config.retrain.strategy}) of version "
                                   f"{active.version_id}")
        outcome = RetrainReport(
            strategy=config.retrain.strategy, base_version=active.version_id,
            model_location=model, training=training,
            candidate_version=summary.version_id if summary.status != "unchanged" else None,
            status=summary.status, gate=summary.gate, documents=summary.kept)
        name, message = retrain_outcome(outcome, summary.gate_headline)
        report.record_run(warehouse, "retrain", started, outcome.status, message,
                          outcome.candidate_version, source, outcome.model_dump())
    report.log(message)
    return finish(outcome, name, message)


def retrain_outcome(outcome: RetrainReport, headline: str) -> tuple[str, str]:
    """The end state of a retrain: `Published`, `Rejected` (with the gate's reason) or
    `Unchanged`."""
    what = f"retrain ({outcome.strategy}) of v{outcome.base_version}"
    if outcome.status == "published":
        return "Published", f"{what}: published v{outcome.candidate_version}"
    if outcome.status == "rejected":
        return "Rejected", f"{what}: rejected v{outcome.candidate_version}: {headline}"
    return "Unchanged", f"{what}: unchanged"
