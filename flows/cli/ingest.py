"""Commands that build versions: ingest, plan, index, demo-corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.common import (
    JsonOpt,
    VerboseOpt,
    VersionOpt,
    Where,
    app,
    command,
    err,
    out,
    prefect_api,
)

ModelOpt = Annotated[str | None, typer.Option(help="embedding model: path, hub name or 'hash'")]
BackendOpt = Annotated[str | None, typer.Option(help="embedding backend (see embed.backend)")]
ChunkOpt = Annotated[int | None, typer.Option(help="max tokens per chunk (special included)")]
OverlapOpt = Annotated[int | None, typer.Option(help="tokens shared by neighbouring chunks")]
BatchOpt = Annotated[int | None, typer.Option(help="embedding batch size")]
IdOpt = Annotated[str | None, typer.Option(help="id field of JSONL/CSV/Parquet records")]
TextOpt = Annotated[str | None, typer.Option(help="text field of JSONL/CSV/Parquet records")]
SourceArg = Annotated[Path, typer.Argument(help="directory, .jsonl, .parquet or .csv")]


@command()
def ingest(
    source: SourceArg,
    model: ModelOpt = None,
    backend: BackendOpt = None,
    chunk_tokens: ChunkOpt = None,
    overlap_tokens: OverlapOpt = None,
    batch_size: BatchOpt = None,
    id_field: IdOpt = None,
    text_field: TextOpt = None,
    wait: Annotated[float | None, typer.Option(help="seconds to wait for another writer")] = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
    *, where: Where,
) -> None:
    """Clean, chunk, embed and index SOURCE into a new version of the warehouse."""
    from tasks.prep.load import check_source
    from warehouse.lock import check_unlocked

    cfg = where.config(**{
        "embed.model": model, "embed.backend": backend, "chunk.max_tokens": chunk_tokens,
        "chunk.overlap_tokens": overlap_tokens, "embed.batch_size": batch_size,
        "source.id_field": id_field, "source.text_field": text_field,
        "warehouse.lock_wait_seconds": wait})
    check_source(source, cfg.source)
    check_unlocked(cfg.warehouse.open(), cfg.warehouse.lock_wait_seconds, create=True)
    from flows.cli.render import print_problems, progress_bars, summary_table

    with progress_bars(enabled=not as_json), prefect_api(verbose):
        from flows.ingest import ingest_flow_for

        summary = ingest_flow_for(cfg)(str(source), cfg)
    print_problems(err, summary.problems, summary.quarantined)
    if as_json:
        print(summary.model_dump_json())
    else:
        out.print(summary_table(summary))


@command()
def plan(
    source: SourceArg,
    model: ModelOpt = None,
    chunk_tokens: ChunkOpt = None,
    overlap_tokens: OverlapOpt = None,
    id_field: IdOpt = None,
    text_field: TextOpt = None,
    as_json: JsonOpt = False,
    *, where: Where,
) -> None:
    """Dry run: what `ingest SOURCE` would change, embed and reuse, and how long it would take."""
    from flows.cli.render import plan_table
    from flows.plan import plan_source
    from tasks.prep.load import check_source

    cfg = where.config(**{"embed.model": model, "chunk.max_tokens": chunk_tokens,
                          "chunk.overlap_tokens": overlap_tokens, "source.id_field": id_field,
                          "source.text_field": text_field})
    check_source(source, cfg.source)
    report = plan_source(source, cfg)
    if as_json:
        print(report.model_dump_json())
    else:
        out.print(plan_table(report))


@command()
def index(version: VersionOpt = None, as_json: JsonOpt = False,
          retune: Annotated[bool, typer.Option(
              "--retune", help="raise ef (no rebuild) until recall on the logged queries "
              "reaches the target")] = False,
          *, where: Where) -> None:
    """Rebuild the index files of a version (e.g. after a crash, or from an older embedpipe),
    or with --retune check its recall on logged queries and raise its ef if short."""
    from tasks.embed.embedding import version_embedder
    from tasks.index.storage import build_version_index
    from warehouse.writer import open_writer

    cfg = where.config()
    wh = cfg.warehouse.open()
    target = wh.readable(version)
    if retune:
        result = retune_index(wh, target, cfg)
        if as_json:
            print(json.dumps(result.as_dict()))
        else:
            out.print(describe_retune(result))
        return
    embedder = version_embedder(target)  # embeds the query-like probes ef is tuned on
    with open_writer(wh, cfg.warehouse.lock_wait_seconds, create=False) as writer:
        _, report = build_version_index(wh, target, cfg.index, embedder=embedder)
        writer.record_index(target.version_id, report.as_dict())
    if as_json:
        print(json.dumps(report.as_dict()))
    else:
        out.print(f"index of version {target.version_id} rebuilt: {report.count} chunks "
                  f"({report.distinct} distinct texts), ef {report.ef}, recall@{report.recall_k} "
                  f"{report.recall:.4f} on {report.queries} queries")


def retune_index(wh: Any, target: Any, cfg: Any) -> Any:
    """`index --retune`: measure, raise ef if short, record it on the version and as a run."""
    from datetime import UTC, datetime

    from tasks.embed.embedding import version_embedder
    from tasks.index.storage import retune
    from warehouse.writer import open_writer

    started = datetime.now(UTC).replace(tzinfo=None)
    result = retune(wh, target, version_embedder(target), cfg.index)
    with open_writer(wh, cfg.warehouse.lock_wait_seconds, create=False) as writer:
        writer.record_index(target.version_id, result.report)
        writer.record_run({"run_id": f"retune-{started.isoformat()}", "flow": "retune",
                           "started_at": started,
                           "finished_at": datetime.now(UTC).replace(tzinfo=None),
                           "status": "completed", "message": describe_retune(result),
                           "version_id": target.version_id, "source": "query log",
                           "flow_run_id": None, "summary": json.dumps(result.as_dict())})
    return result


def describe_retune(result: Any) -> str:
    """One line: what the logged queries showed and what changed."""
    if result.recall_before is None:
        return (f"version {result.version_id}: {result.queries} logged queries, too few to "
                f"measure recall; ef {result.ef_before} kept")
    if result.changed:
        return (f"version {result.version_id}: recall@10 on {result.queries} logged queries "
                f"{result.recall_before:.4f} < target {result.target}: ef {result.ef_before} -> "
                f"{result.ef_after}, recall {result.recall_after:.4f} (index files unchanged)")
    return (f"version {result.version_id}: recall on {result.queries} logged queries "
            f"{result.recall_before:.4f}, target {result.target}: ef {result.ef_before} kept")


@app.command("demo-corpus")
def demo_corpus(
    out_file: Annotated[Path, typer.Argument(help="JSONL file to write")],
    limit: Annotated[int, typer.Option(help="at most this many documents")] = 3000,
) -> None:
    """Write the standard library's docstrings as a BEIR-style JSONL corpus."""
    from flows.demo import write_demo_corpus

    n = write_demo_corpus(out_file, limit)
    out.print(f"wrote {n} documents to {out_file}")
