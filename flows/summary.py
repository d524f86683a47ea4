"""The run summary of an ingest: counts that add up, stage times, the version published."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, Field

from tasks.schema import DUPLICATE_REASONS


class IngestSummary(BaseModel):
    source: str
    status: str  # "published" | "rejected" (by the quality gate) | "unchanged"
    gate: str = ""  # the gate's reason
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
    problems: list[dict[str, Any]] = Field(default_factory=list)  # the first few, for the CLI

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


class StageTimer:
    """Wall time per stage, in seconds."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(self.seconds.get(stage, 0.0)
                                        + time.perf_counter() - started, 3)
