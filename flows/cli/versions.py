"""Version commands: versions, diff, promote, rollback, pin, unpin, gc, compare. No Prefect."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from flows.cli.common import JsonOpt, Where, command, out
from flows.cli.render import plain

VersionArg = Annotated[int, typer.Argument(help="version id")]
WaitOpt = Annotated[float, typer.Option(help="seconds to wait for another writer")]
ForceOpt = Annotated[bool, typer.Option(help="make even a gate-rejected version active")]


@command()
def versions(as_json: JsonOpt = False, *, where: Where) -> None:
    """List the warehouse's versions with status, counts, model and index recall."""
    rows = [v.as_dict() for v in where.open().versions()]
    if as_json:
        print(json.dumps(rows, default=str))
        return
    table = Table("id", "status", "parent", "docs", "chunks", "embedded", "reused", "model",
                  "recall@10", "created", "message")
    for r in rows:
        idx = r["index_meta"] or {}
        table.add_row(f"{r['version_id']}{' (pinned)' if r['pinned'] else ''}", r["status"],
                      str(r["parent_id"] or ""), str(r["n_documents"]), str(r["n_chunks"]),
                      str(r["n_embedded"]), str(r["n_reused"]),
                      plain(f"{r['model_name']} {r['model_fingerprint'][:8]}"),
                      str(idx.get("recall", "")), r["created_at"][:19], plain(r["message"]))
    out.print(table)


@command()
def diff(a: VersionArg, b: VersionArg, as_json: JsonOpt = False, *, where: Where) -> None:
    """Documents and chunks added, removed or changed from version A to version B."""
    from warehouse.maintenance import diff_versions

    result = diff_versions(where.open(), a, b).as_dict()
    if as_json:
        print(json.dumps(result))
        return
    table = Table("what", "count", "ids (first 10)", title=f"version {a} → {b}")
    for kind in ("documents", "chunks"):
        for change, ids in result[kind].items():
            table.add_row(f"{kind} {change}", str(len(ids)), plain(", ".join(ids[:10])))
    out.print(table)
    if result["model_changed"]:
        out.print("the two versions use different models: every vector differs")


def _make_active(version: int, where: Where, wait: float, verb: str, force: bool) -> None:
    from warehouse.maintenance import make_active
    from warehouse.writer import open_writer

    with open_writer(where.open(), wait, create=False) as writer:
        make_active(writer, version, force)
    out.print(f"{verb} version {version}: it is now active" + (" (forced)" if force else ""))


@command()
def promote(version: VersionArg, wait: WaitOpt = 0.0, force: ForceOpt = False, *,
            where: Where) -> None:
    """Make VERSION the active version (instant: moves a pointer, copies no data)."""
    _make_active(version, where, wait, "promoted", force)


@command()
def rollback(version: VersionArg, wait: WaitOpt = 0.0, force: ForceOpt = False, *,
             where: Where) -> None:
    """Go back to VERSION: search answers from it and its own index again."""
    _make_active(version, where, wait, "rolled back to", force)


def _set_pin(version: int, pinned: bool, where: Where) -> None:
    from warehouse.writer import open_writer

    with open_writer(where.open(), create=False) as writer:
        writer.set_pinned(version, pinned)
    out.print(f"version {version} {'pinned: gc keeps it' if pinned else 'unpinned'}")


@command()
def pin(version: VersionArg, *, where: Where) -> None:
    """Protect VERSION from `gc`."""
    _set_pin(version, True, where)


@command()
def unpin(version: VersionArg, *, where: Where) -> None:
    """Let `gc` expire VERSION again."""
    _set_pin(version, False, where)


@command()
def gc(keep: Annotated[int, typer.Option(min=0, help="newest versions to keep")] = 5,
       keep_rejected: Annotated[bool, typer.Option(
           help="keep gate-rejected versions among the newest KEEP (default: expire them)")
       ] = False,
       wait: WaitOpt = 0.0, as_json: JsonOpt = False, *, where: Where) -> None:
    """Expire unpinned, non-active versions beyond the newest KEEP, and rejected ones.

    Deletes their files, and the stored vectors and fine-tuned models no kept version uses.
    """
    from flows.maintenance import collect

    report = collect(where.config(), keep, expire_rejected=not keep_rejected, wait=wait)
    if as_json:
        print(json.dumps(report))
        return
    out.print(f"expired versions: {', '.join(map(str, report['expired'])) or 'none'}")
    out.print(f"removed {report['vectors_removed']} stored vectors, "
              f"{len(report['models_removed'])} fine-tuned models and "
              f"{len(report['exports_removed'])} exported copies; freed "
              f"{report['bytes_freed'] / 1e6:.1f} MB")


@command()
def card(version: Annotated[int | None, typer.Argument(help="version (default: active)")] = None,
         as_json: JsonOpt = False, *, where: Where) -> None:
    """Print the card of VERSION (Markdown): lineage, contents, quality, gate, limitations.

    Quality with deltas against the parent and the active version; drift checks since.
    """
    from tasks.quality.card import card as render_card

    wh = where.open()
    target = wh.version(version)
    markdown = render_card(wh, target)
    if as_json:
        print(json.dumps({"version_id": target.version_id, "markdown": markdown}))
    else:
        print(markdown, end="")


@command()
def compare(a: VersionArg, b: VersionArg, as_json: JsonOpt = False, *, where: Where) -> None:
    """Metrics of versions A and B side by side, with B - A."""
    from warehouse.maintenance import compare_metrics

    rows = compare_metrics(where.open(), a, b)
    if as_json:
        print(json.dumps({"a": a, "b": b, "metrics": rows}))
        return
    table = Table("evaluator", "metric", f"v{a}", f"v{b}", "delta", title=f"compare {a} and {b}")
    for r in rows:
        delta = "" if r["delta"] is None else f"{r['delta']:+.4f}"
        if r["better"] is not None:
            delta = f"[{'green' if r['better'] else 'red'}]{delta}[/]"
        table.add_row(plain(r["evaluator"]), plain(r["metric"]), _fmt(r["a"]), _fmt(r["b"]),
                      delta)
    out.print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
