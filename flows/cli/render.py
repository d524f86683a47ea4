"""Rich rendering for the CLI: progress bars, the run summary, problem lines."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from tasks import reporting

if TYPE_CHECKING:
    from flows.plan import PlanReport
    from flows.summary import IngestSummary

MAX_PROBLEM_LINES = 20
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain(value: Any) -> Text:
    """`value` for a terminal table: never read as Rich markup, control characters shown as ?.

    Corpus text, ids and SQL results are data, not formatting: `[red]` or an escape sequence in
    a document must print as itself, not recolour (or rewrite) the user's terminal.
    """
    return Text(_CONTROL.sub("?", "" if value is None else str(value)))


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[None]:
    """Show a rich bar per stage that reports progress (see `tasks/__init__.py`)."""
    if not enabled:
        yield
        return
    progress = Progress(SpinnerColumn(), TextColumn("{task.description:>10}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                        transient=False)
    bars: dict[str, Any] = {}

    def listener(stage: str, done: int, total: int) -> None:
        # A stage that reports (0, 1) and later (1, 1) has no measurable steps (loading the
        # model): it shows a spinner and the time spent until it is done.
        # A negative total: not known yet (reading a source counts records as it goes).
        indefinite = (total == 1 and done == 0) or total < 0
        if stage not in bars:
            bars[stage] = progress.add_task(stage, total=None if indefinite else total)
        progress.update(bars[stage], completed=done, total=None if indefinite else total)

    with progress, reporting(listener):
        yield


def print_problems(console: Console, problems: list[dict[str, Any]], total: int) -> None:
    """One line per rejected input row: file, row, reason, detail."""
    for p in problems[:MAX_PROBLEM_LINES]:
        where = f"{p['source']}:{p['row']}" if p["row"] else p["source"]
        console.print(Text.assemble(("warning:", "yellow"), " ", plain(
            f"{where}: {p['reason']}: {p['detail']} — quarantined")), highlight=False,
            soft_wrap=True)
    if total > MAX_PROBLEM_LINES:
        console.print(f"... and {total - MAX_PROBLEM_LINES} more; see "
                      "`embedpipe sql \"SELECT * FROM quarantine\"`")


def summary_table(s: IngestSummary) -> Table:
    from flows.summary import table_rows

    table = Table(title=plain(f"ingest {s.source}: {s.status}"
                              + (f", version {s.version_id}" if s.version_id else "")),
                  show_header=False)
    for name, value in table_rows(s):
        table.add_row(name, plain(value))
    return table


def plan_table(report: PlanReport) -> Table:
    table = Table(title=f"plan for {report.source}" + (" (no-op: identical to the active "
                                                        "version)" if report.noop else ""),
                  show_header=False)
    for name, value in [
        ("active version", report.active_version or "-"),
        ("documents new/changed/deleted/unchanged",
         "/".join(str(report.documents[k]) for k in ("added", "changed", "deleted",
                                                       "unchanged"))),
        ("chunks in the new version", report.chunks_total),
        ("chunks to embed", report.chunks_to_embed),
        ("chunks reused", report.chunks_reused),
        ("tokens to embed", report.tokens_to_embed),
        ("estimated embedding time", f"{report.estimated_embed_seconds:.0f} s at "
         f"{report.tokens_per_second:.0f} tokens/s"
         + (" (measured)" if report.throughput_measured else " (default estimate)")),
        ("inputs that would be quarantined", report.quarantined),
    ]:
        table.add_row(name, str(value))
    return table
