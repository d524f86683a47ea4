"""Rich rendering for the CLI: progress bars, the run summary, problem lines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from flows.summary import IngestSummary
from tasks.progress import reporting

MAX_PROBLEM_LINES = 20


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[None]:
    """Show a rich bar per stage that reports progress (see `tasks.progress`)."""
    if not enabled:
        yield
        return
    progress = Progress(TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), transient=False)
    bars: dict[str, Any] = {}

    def listener(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = progress.add_task(stage, total=total)
        progress.update(bars[stage], completed=done, total=total)

    with progress, reporting(listener):
        yield


def print_problems(console: Console, problems: list[dict[str, Any]], total: int) -> None:
    """One line per rejected input row: file, row, reason, detail."""
    for p in problems[:MAX_PROBLEM_LINES]:
        where = f"{p['source']}:{p['row']}" if p["row"] else p["source"]
        console.print(f"[yellow]warning:[/yellow] {where}: {p['reason']}: {p['detail']} "
                      "— quarantined", highlight=False, soft_wrap=True)
    if total > MAX_PROBLEM_LINES:
        console.print(f"... and {total - MAX_PROBLEM_LINES} more; see "
                      "`embedpipe sql \"SELECT * FROM quarantine\"`")


def summary_table(s: IngestSummary) -> Table:
    table = Table(title=f"ingest {s.source}: {s.status}"
                  + (f", version {s.version_id}" if s.version_id else ""), show_header=False)
    rows = [
        ("input documents", s.input_documents),
        ("kept", s.kept),
        ("exact duplicates", s.exact_duplicates),
        ("near duplicates", s.near_duplicates),
        ("quarantined", f"{s.quarantined} {s.quarantined_by_reason or ''}"),
        ("documents added/changed/deleted/unchanged",
         f"{s.documents_added}/{s.documents_changed}/{s.documents_deleted}/"
         f"{s.documents_unchanged}"),
        ("chunks", s.chunks),
        ("tokens (new chunks)", s.tokens),
        ("vectors embedded", s.vectors_embedded),
        ("vectors reused", s.vectors_reused),
        ("index", ", ".join(f"{k}={v}" for k, v in s.index.items()) or "-"),
        ("seconds per stage", ", ".join(f"{k} {v:.1f}" for k, v in s.stage_seconds.items())),
        ("quality gate", s.gate or "-"),
        ("version", s.version_id if s.version_id is not None else "-"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table
