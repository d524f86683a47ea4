"""Commands that read a version: search and sql. No Prefect here."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Literal

import typer
from rich.table import Table
from rich.text import Text

from flows.cli.common import JsonOpt, VersionOpt, Where, command, out
from flows.cli.render import plain


@command()
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="how many documents")] = 10,
    version: VersionOpt = None,
    mode: Annotated[Literal["vector", "bm25", "hybrid"] | None, typer.Option(
        help="vector (meaning), bm25 (words) or hybrid (both, fused); default search.mode")
    ] = None,
    as_json: JsonOpt = False,
    *, where: Where,
) -> None:
    """Search the active (or given) version for QUERY."""
    from flows.search import search as run_search
    from warehouse.query_log import QueryLog

    cfg = where.config(**{"evaluate.search_mode": mode})
    wh = cfg.warehouse.open()
    hits = run_search(wh, query, k=k, version_id=version, mode=cfg.evaluate.search_mode,
                      rrf_k=cfg.evaluate.rrf_k, log=QueryLog(wh, cfg.search, "cli"))
    if as_json:
        for hit in hits:
            print(json.dumps(hit.as_dict(), ensure_ascii=False))
        return
    table = Table("rank", "score", "doc id", "title / snippet", title=plain(f"“{query}”"))
    for hit in hits:
        title = hit.title if hit.title and hit.title != hit.doc_id else ""
        text = plain(hit.snippet[:160])
        if title:
            heading = plain(title)
            heading.stylize("bold")
            text = Text.assemble(heading, " ", text)
        table.add_row(str(hit.rank), f"{hit.score:.3f}", plain(hit.doc_id), text)
    out.print(table)


@command()
def sql(query: Annotated[str, typer.Argument(help="one SELECT over the version's views")],
        version: VersionOpt = None,
        fmt: Annotated[Literal["table", "csv", "json"], typer.Option(
            "--format", help="output format")] = "table",
        timeout: Annotated[float | None, typer.Option(
            help="stop the query after this many seconds")] = None,
        *, where: Where) -> None:
    """Run one read-only SELECT over the views of one version (no files, writes or ATTACH).

    Views: documents, chunks, embeddings, quarantine, versions, quality_metrics, drift_metrics.
    """
    with where.open().sandbox(version) as session:
        result = session.query(query, timeout=timeout)
    if fmt == "json":
        for record in result.dicts():
            print(json.dumps(record, default=str))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows(result.rows)
    else:
        table = Table(*result.columns)
        for row in result.rows:
            table.add_row(*(plain(v) for v in row))
        out.print(table)


@command()
def queries(limit: Annotated[int, typer.Option(min=1, help="how many, newest first")] = 20,
            version: Annotated[int | None, typer.Option(
                help="only searches of this version")] = None,
            as_json: JsonOpt = False, *, where: Where) -> None:
    """List recent searches from the query log (CLI and dashboard; see search.log_queries)."""
    from warehouse.query_log import recent

    rows = recent(where.open(), limit, version)
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table("when", "version", "from", "mode", "k", "top score", "ms", "query",
                  title=f"{len(rows)} most recent logged searches")
    for r in rows:
        score = "" if r["top_score"] is None else f"{r['top_score']:.3f}"
        table.add_row(str(r["logged_at"])[:19], str(r["version_id"]), r["origin"], r["mode"],
                      str(r["k"]), score, f"{r['latency_ms']:.0f}", plain(r["text"][:120]))
    out.print(table)
