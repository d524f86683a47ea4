"""The run summary of an ingest: counts that add up, stage times, the version published."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, Field

from tasks.index import IndexReport
from tasks.prep import Corpus
from tasks.schema import DUPLICATE_REASONS
from warehouse.plan import IngestPlan
from warehouse.store import Version

MAX_PROBLEMS = 20  # problem rows carried in the summary, for the CLI's warning lines


class IngestSummary(BaseModel):
    source: str
    status: str  # "published" | "rejected" (by the quality gate) | "unchanged"
    gate: str = ""  # the gate's reason
    gate_headline: str = ""  # the same in a few words, e.g. "ndcg@10 -0.012 beyond 0.005"
    version_id: int | None
    input_documents: int
    kept: int
    exact_duplicates: int
    near_duplicates: int
    quarantined: int  # everything rejected that is not a duplicate
    quarantined_by_reason: dict[str, int]
    documents_added: int = 0
    documents_changed: int = 0
    documents_deleted: int = 0
    documents_unchanged: int = 0
    chunks: int = 0
    tokens: int = 0
    tokens_embedded: int = 0  # tokens of the chunk texts embedded (not reused): the throughput base
    vectors_embedded: int = 0
    vectors_reused: int = 0
    index: dict[str, Any] = Field(default_factory=dict)
    stage_seconds: dict[str, float] = Field(default_factory=dict)
    stage_peak_rss_mb: dict[str, int] = Field(default_factory=dict)  # process peak after each
    problems: list[dict[str, Any]] = Field(default_factory=list)  # the first few, for the CLI
    flow_run_id: str | None = None  # the Prefect flow run that made it (for links to its page)

    @property
    def accounted(self) -> bool:
        """Every input row is kept, a duplicate, or quarantined."""
        return self.input_documents == (self.kept + self.exact_duplicates + self.near_duplicates
                                        + self.quarantined)


def rejection_counts(quarantine: pa.Table) -> tuple[int, int, dict[str, int]]:
    """(exact duplicates, near duplicates, other rejections by reason)."""
    reasons = Counter(quarantine["reason"].to_pylist())
    exact, near = (reasons.pop(reason, 0) for reason in DUPLICATE_REASONS)
    return exact, near, dict(sorted(reasons.items()))


def table_rows(summary: IngestSummary) -> list[tuple[str, Any]]:
    """The summary as (what, value) rows: the CLI's table and the run artifact show these."""
    s = summary
    return [
        ("input documents", s.input_documents), ("kept", s.kept),
        ("exact duplicates", s.exact_duplicates), ("near duplicates", s.near_duplicates),
        ("quarantined", f"{s.quarantined} {s.quarantined_by_reason or ''}"),
        ("documents added/changed/deleted/unchanged",
         f"{s.documents_added}/{s.documents_changed}/{s.documents_deleted}/"
         f"{s.documents_unchanged}"),
        ("chunks", s.chunks), ("tokens (new chunks)", s.tokens),
        ("vectors embedded", s.vectors_embedded), ("vectors reused", s.vectors_reused),
        ("index", ", ".join(f"{k}={v}" for k, v in s.index.items()) or "-"),
        ("seconds per stage", ", ".join(f"{k} {v:.1f}" for k, v in s.stage_seconds.items())),
        ("quality gate", s.gate or "-"),
        ("version", s.version_id if s.version_id is not None else "-"),
    ]


def summarize_corpus(corpus: Corpus, plan: IngestPlan, seconds: dict[str, float]
                     ) -> IngestSummary:
    """What reading and planning found: the summary of a run that published nothing (yet)."""
    exact, near, others = rejection_counts(corpus.quarantine)
    counts = plan.diff.counts()
    problems = corpus.quarantine.filter(pc.invert(pc.is_in(
        corpus.quarantine["reason"], pa.array(DUPLICATE_REASONS)))).slice(0, MAX_PROBLEMS)
    return IngestSummary(
        source=corpus.source, status="unchanged", version_id=plan.active_version,
        input_documents=corpus.n_input, kept=corpus.documents.num_rows, exact_duplicates=exact,
        near_duplicates=near, quarantined=sum(others.values()), quarantined_by_reason=others,
        documents_added=counts["added"], documents_changed=counts["changed"],
        documents_deleted=counts["deleted"], documents_unchanged=counts["unchanged"],
        problems=problems.to_pylist(), stage_seconds=dict(seconds))


# What a version's stored summary says of its corpus: the same for a re-run over its source.
_CORPUS_COUNTS = ("input_documents", "kept", "exact_duplicates", "near_duplicates", "quarantined",
                  "quarantined_by_reason", "problems")


def summarize_unchanged(active: Version, source: str, seconds: dict[str, float]
                        ) -> IngestSummary | None:
    """The summary of a re-run over the very source (bytes and settings) `active` was read from,
    its counts as recorded then; None when that version's summary lacks them."""
    past = active.summary
    if not all(key in past for key in _CORPUS_COUNTS):
        return None
    return IngestSummary(source=source, status="unchanged", version_id=active.version_id,
                         documents_unchanged=past["kept"], stage_seconds=dict(seconds),
                         **{key: past[key] for key in _CORPUS_COUNTS})


def summarize_publication(summary: IngestSummary, plan: IngestPlan, chunks: pa.Table,
                          vectors: pa.Table, version: Version) -> IngestSummary:
    """`summary` with what the run embedded, reused and published."""
    embedded = pc.is_in(chunks["text_hash"], vectors["text_hash"])
    return summary.model_copy(update={
        "status": "published", "version_id": version.version_id, "chunks": version.n_chunks,
        "tokens": int(pc.sum(chunks["n_tokens"]).as_py() or 0),
        "vectors_embedded": vectors.num_rows,
        "tokens_embedded": int(pc.sum(chunks.filter(embedded)["n_tokens"]).as_py() or 0),
        "vectors_reused": chunks.num_rows - vectors.num_rows + plan.reused_chunks,
        "flow_run_id": _flow_run_id()})


def summarize_index(summary: IngestSummary, index: IndexReport, seconds: dict[str, float]
                    ) -> IngestSummary:
    """`summary` with the version's index and the seconds per stage so far."""
    return summary.model_copy(update={
        "index": {"ef": index.ef, "recall": index.recall, "heldout_recall": index.heldout_recall,
                  "m": index.m, "ef_construction": index.ef_construction,
                  "distinct": index.distinct},
        "stage_seconds": dict(seconds)})


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None
