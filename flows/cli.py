"""The `embedpipe` command line: parse, call one library function, print.

Heavy libraries (Prefect, torch) are imported inside the commands that need them: `search`,
`versions`, `sql`, `diff` answer without Prefect and without its temporary API server.
Domain errors become one line on stderr and exit code 2; nothing else is caught.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flows import cli_admin, cli_monitor, cli_server  # noqa: F401 - register their commands
from flows.cli_common import (
    CatalogOpt,
    ConfigOpt,
    JsonOpt,
    WarehouseOpt,
    app,
    err,
    make_config,
    open_warehouse,
    out,
    quiet_prefect,
)


def main() -> None:
    """Console entry point: run the app, turning domain errors into one-line messages.

    Usage errors are click's (exit 2 with usage); anything else is a bug and keeps its traceback.
    """
    from tasks.errors import EmbedpipeError
    from warehouse.errors import WarehouseError

    try:
        app()
    except (EmbedpipeError, WarehouseError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


def _ingest_flags(warehouse, catalog, model, chunk_tokens, overlap_tokens, batch_size, id_field,
                  text_field, wait=None) -> dict:
    return {"warehouse.path": warehouse, "warehouse.catalog": catalog, "embed.model": model,
            "chunk.max_tokens": chunk_tokens, "chunk.overlap_tokens": overlap_tokens,
            "embed.batch_size": batch_size, "source.id_field": id_field,
            "source.text_field": text_field, "warehouse.lock_wait_seconds": wait}


ModelOpt = Annotated[str | None, typer.Option(help="embedding model: path, hub name or 'hash'")]
ChunkOpt = Annotated[int | None, typer.Option(help="max tokens per chunk (special included)")]
OverlapOpt = Annotated[int | None, typer.Option(help="tokens shared by neighbouring chunks")]
BatchOpt = Annotated[int | None, typer.Option(help="embedding batch size")]
IdOpt = Annotated[str | None, typer.Option(help="id field of JSONL/CSV/Parquet records")]
TextOpt = Annotated[str | None, typer.Option(help="text field of JSONL/CSV/Parquet records")]
SourceArg = Annotated[Path, typer.Argument(help="directory, .jsonl, .parquet or .csv")]


@app.command()
def ingest(
    source: SourceArg,
    warehouse: WarehouseOpt = None,
    catalog: CatalogOpt = None,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    chunk_tokens: ChunkOpt = None,
    overlap_tokens: OverlapOpt = None,
    batch_size: BatchOpt = None,
    id_field: IdOpt = None,
    text_field: TextOpt = None,
    wait: Annotated[float | None, typer.Option(help="seconds to wait for another writer")] = None,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show Prefect logs")] = False,
) -> None:
    """Clean, chunk, embed and index SOURCE into a new version of the warehouse."""
    from tasks.errors import SourceError

    cfg = make_config(config, **_ingest_flags(warehouse, catalog, model, chunk_tokens,
                                              overlap_tokens, batch_size, id_field, text_field,
                                              wait))
    if not source.exists():
        raise SourceError(f"{source}: no such file or directory")
    quiet_prefect(verbose)
    from flows.ingest import ingest_flow_for
    from flows.render import print_problems, progress_bars, summary_table

    with progress_bars(enabled=not as_json):
        summary = ingest_flow_for(cfg)(str(source), cfg)
    print_problems(err, summary.problems, summary.quarantined)
    if as_json:
        print(summary.model_dump_json())
    else:
        out.print(summary_table(summary))


@app.command()
def plan(
    source: SourceArg,
    warehouse: WarehouseOpt = None,
    catalog: CatalogOpt = None,
    config: ConfigOpt = None,
    model: ModelOpt = None,
    chunk_tokens: ChunkOpt = None,
    overlap_tokens: OverlapOpt = None,
    id_field: IdOpt = None,
    text_field: TextOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Dry run: what `ingest SOURCE` would change, embed and reuse, and how long it would take."""
    from flows.plan import plan_source
    from tasks.errors import SourceError

    cfg = make_config(config, **_ingest_flags(warehouse, catalog, model, chunk_tokens,
                                              overlap_tokens, None, id_field, text_field))
    if not source.exists():
        raise SourceError(f"{source}: no such file or directory")
    report = plan_source(source, cfg)
    if as_json:
        print(report.model_dump_json())
        return
    table = Table(title=f"plan for {source}" + (" (no-op: identical to the active version)"
                                                 if report.noop else ""), show_header=False)
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
    out.print(table)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="how many documents")] = 10,
    version: Annotated[int | None, typer.Option(help="search this version, not the active")] = None,
    warehouse: WarehouseOpt = None,
    catalog: CatalogOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the active (or given) version for QUERY."""
    from flows.search import search as run_search

    hits = run_search(open_warehouse(warehouse, catalog, config), query, k=k, version_id=version)
    if as_json:
        for hit in hits:
            print(json.dumps(hit.as_dict(), ensure_ascii=False))
        return
    table = Table("rank", "score", "doc id", "title / snippet", title=f"“{query}”")
    for hit in hits:
        title = hit.title if hit.title and hit.title != hit.doc_id else ""
        table.add_row(str(hit.rank), f"{hit.score:.3f}", hit.doc_id,
                      (f"[bold]{title}[/bold] " if title else "") + hit.snippet[:160])
    out.print(table)


@app.command()
def evaluate(
    version: Annotated[int | None, typer.Option(help="version (default: active)")] = None,
    beir: Annotated[Path | None, typer.Option(help="BEIR directory (queries + qrels)")] = None,
    split: Annotated[str | None, typer.Option(help="qrels split of the BEIR set")] = None,
    sts: Annotated[Path | None, typer.Option(help="STS-format pairs file")] = None,
    warehouse: WarehouseOpt = None,
    catalog: CatalogOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show Prefect logs")] = False,
) -> None:
    """Score a version (health, and retrieval/STS on the given sets) into quality_metrics."""
    cfg = make_config(config, **{"warehouse.path": warehouse, "warehouse.catalog": catalog,
                                 "evaluate.beir": beir, "evaluate.beir_split": split,
                                 "evaluate.sts": sts})
    quiet_prefect(verbose)
    from flows.evaluate import evaluate_version

    rows = evaluate_version(cfg, version)
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("evaluator", "metric", "value", "better", title="quality")
    for r in rows:
        better = {True: "higher", False: "lower", None: ""}[r["greater_is_better"]]
        table.add_row(r["evaluator"], r["metric"] + (" *" if r["is_primary"] else ""),
                      f"{r['value']:.4f}", better)
    out.print(table)


@app.command("demo-corpus")
def demo_corpus(
    out_file: Annotated[Path, typer.Argument(help="JSONL file to write")],
    limit: Annotated[int, typer.Option(help="at most this many documents")] = 3000,
) -> None:
    """Write the standard library's docstrings as a BEIR-style JSONL corpus."""
    from flows.demo import write_demo_corpus

    n = write_demo_corpus(out_file, limit)
    out.print(f"wrote {n} documents to {out_file}")


if __name__ == "__main__":
    main()
