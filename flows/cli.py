"""The `embedpipe` command line: parse, call one library function, print.

Heavy libraries (Prefect, torch) are imported inside the commands that need them: `search`,
`versions`, `sql` answer without Prefect and without its temporary API server.
Domain errors become one line on stderr and exit code 2; nothing else is caught.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from flows.config import EmbedpipeConfig, load_config

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Corpus in; versioned, evaluated, searchable embeddings out.")
out = Console()
err = Console(stderr=True)

WarehouseOpt = Annotated[Path | None, typer.Option(
    "--warehouse", "-w", help="warehouse directory [env EMBEDPIPE_WAREHOUSE; "
    "default .embedpipe/warehouse]")]
CatalogOpt = Annotated[str | None, typer.Option(
    "--catalog", help="'sqlite' (default) or postgresql://… [env EMBEDPIPE_CATALOG]")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="TOML config file [env EMBEDPIPE_CONFIG; default ./embedpipe.toml]")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable JSON output")]


def _config(config: Path | None, **flags: Any) -> EmbedpipeConfig:
    return load_config(config, flags)


def _warehouse(cfg: EmbedpipeConfig):  # -> warehouse.store.Warehouse
    from warehouse.store import Warehouse

    return Warehouse(cfg.warehouse.path, cfg.warehouse.catalog)


def main() -> None:
    """Console entry point: run the app, turning domain errors into one-line messages."""
    from tasks.errors import EmbedpipeError
    from warehouse.errors import WarehouseError

    try:
        app(standalone_mode=False)
    except (EmbedpipeError, WarehouseError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here with standalone_mode off
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="directory, .jsonl, .parquet or .csv")],
    warehouse: WarehouseOpt = None,
    catalog: CatalogOpt = None,
    config: ConfigOpt = None,
    model: Annotated[str | None, typer.Option(help="embedding model path or name")] = None,
    chunk_tokens: Annotated[int | None, typer.Option(help="max tokens per chunk")] = None,
    overlap_tokens: Annotated[int | None, typer.Option(help="tokens shared by chunks")] = None,
    batch_size: Annotated[int | None, typer.Option(help="embedding batch size")] = None,
    id_field: Annotated[str | None, typer.Option(help="JSONL/CSV/Parquet id field")] = None,
    text_field: Annotated[str | None, typer.Option(help="JSONL/CSV/Parquet text field")] = None,
    wait: Annotated[float | None, typer.Option(help="seconds to wait for another writer")] = None,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show Prefect logs")] = False,
) -> None:
    """Clean, chunk, embed and index SOURCE into a new version of the warehouse."""
    from flows.render import print_problems, summary_table

    cfg = _config(config, **{
        "warehouse.path": warehouse, "warehouse.catalog": catalog, "embed.model": model,
        "chunk.max_tokens": chunk_tokens, "chunk.overlap_tokens": overlap_tokens,
        "embed.batch_size": batch_size, "source.id_field": id_field,
        "source.text_field": text_field, "warehouse.lock_wait_seconds": wait})
    if not source.exists():
        from tasks.errors import SourceError

        raise SourceError(f"{source}: no such file or directory")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # Offline machines: the temporary API server must not try to phone home.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.ingest import ingest_corpus
    from flows.render import progress_bars

    with progress_bars(enabled=not as_json):
        summary = ingest_corpus(str(source), cfg)
    if as_json:
        print(summary.model_dump_json())
        return
    print_problems(err, summary.problems, summary.quarantined)
    out.print(summary_table(summary))


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

    cfg = _config(config, **{"warehouse.path": warehouse, "warehouse.catalog": catalog})
    hits = run_search(_warehouse(cfg), query, k=k, version_id=version)
    if as_json:
        for hit in hits:
            print(json.dumps(hit.as_dict(), ensure_ascii=False))
        return
    table = Table("rank", "score", "doc id", "title", "snippet", title=f"“{query}”")
    for hit in hits:
        table.add_row(str(hit.rank), f"{hit.score:.3f}", hit.doc_id, hit.title or "",
                      hit.snippet[:160])
    out.print(table)


@app.command()
def versions(
    warehouse: WarehouseOpt = None,
    catalog: CatalogOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the warehouse's versions with status, counts, model and index recall."""
    cfg = _config(config, **{"warehouse.path": warehouse, "warehouse.catalog": catalog})
    rows = [v.as_dict() for v in _warehouse(cfg).versions()]
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table("version", "status", "parent", "docs", "chunks", "embedded", "reused",
                  "model", "recall@10", "ef", "created", "message")
    for r in rows:
        idx = r["index_meta"] or {}
        table.add_row(str(r["version_id"]) + (" 📌" if r["pinned"] else ""), r["status"],
                      str(r["parent_id"] or ""), str(r["n_documents"]), str(r["n_chunks"]),
                      str(r["n_embedded"]), str(r["n_reused"]),
                      f"{r['model_name']} ({r['model_fingerprint'][:8]})",
                      str(idx.get("recall", "")), str(idx.get("ef", "")),
                      r["created_at"][:19], r["message"] or "")
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
