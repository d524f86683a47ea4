"""The run summary of an ingest: counts that add up, stage times, the version published."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from tasks.index.build import IndexReport
from tasks.prep.chain import CorpusCounts
from tasks.quality.gate import GateDecision
from warehouse.plan import IngestPlan
from warehouse.store import Version

if TYPE_CHECKING:  # the steps import Prefect; a summary is also read where Prefect is not
    from tasks.steps.ingest import Published


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


def summarize(counts: CorpusCounts, plan: IngestPlan, seconds: dict[str, float],
              published: Published | None = None, index: IndexReport | None = None
              ) -> IngestSummary:
    """The run in numbers, from what its steps returned: what reading found (`counts`), what
    the plan changes, what was published (None: nothing changed) and the index built."""
    summary = IngestSummary(
        source=counts.source, status="unchanged", version_id=plan.active_version,
        input_documents=counts.input_documents, kept=counts.kept,
        exact_duplicates=counts.exact_duplicates, near_duplicates=counts.near_duplicates,
        quarantined=sum(counts.quarantined_by_reason.values()),
        quarantined_by_reason=counts.quarantined_by_reason, problems=counts.problems,
        stage_seconds=dict(seconds),
        **{f"documents_{kind}": n for kind, n in plan.diff.counts().items()})
    if published is None:
        return summary
    update: dict[str, Any] = {
        "status": "published", "version_id": published.version.version_id,
        "chunks": published.version.n_chunks, "tokens": published.tokens,
        "tokens_embedded": published.tokens_embedded,
        "vectors_embedded": published.vectors_embedded,
        "vectors_reused": published.vectors_reused, "flow_run_id": _flow_run_id()}
    if index is not None:
        update["index"] = {"ef": index.ef, "recall": index.recall,
                           "heldout_recall": index.heldout_recall, "m": index.m,
                           "ef_construction": index.ef_construction, "distinct": index.distinct}
    return summary.model_copy(update=update)


def decided(summary: IngestSummary, decision: GateDecision, seconds: dict[str, float]
            ) -> IngestSummary:
    """`summary` with the quality gate's verdict and the final seconds per stage."""
    return summary.model_copy(update={
        "stage_seconds": dict(seconds), "gate": decision.reason(),
        "gate_headline": decision.headline(),
        "status": "published" if decision.passed else "rejected"})


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None
