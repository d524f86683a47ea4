"""Version commands: versions, diff, promote, rollback, pin, unpin, gc, sql. No Prefect here."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Literal

import typer
from rich.table import Table

from flows.cli_common import CatalogOpt, ConfigOpt, JsonOpt, WarehouseOpt, app, open_warehouse, out

VersionArg = Annotated[int, typer.Argument(help="version id")]
WaitOpt = Annotated[float, typer.Option(help="seconds to wait for another writer")]


@app.command()
def versions(warehouse: WarehouseOpt = None, catalog: CatalogOpt = None,
             config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """List the warehouse's versions with status, counts, model and index recall."""
    rows = [v.as_dict() for v in open_warehouse(warehouse, catalog, config).versions()]
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
                      f"{r['model_name']} {r['model_fingerprint'][:8]}",
                      str(idx.get("recall", "")), r["created_at"][:19], r["message"] or "")
    out.print(table)


@app.command()
def diff(a: VersionArg, b: VersionArg, warehouse: WarehouseOpt = None,
         catalog: CatalogOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Documents and chunks added, removed or changed from version A to version B."""
    from warehouse.maintenance import diff_versions

    result = diff_versions(open_warehouse(warehouse, catalog, config), a, b).as_dict()
    if as_json:
        print(json.dumps(result))
        return
    table = Table("what", "count", "ids (first 10)", title=f"version {a} → {b}")
    for kind in ("documents", "chunks"):
        for change, ids in result[kind].items():
            table.add_row(f"{kind} {change}", str(len(ids)), ", ".join(ids[:10]))
    out.print(table)
    if result["model_changed"]:
        out.print("the two versions use different models: every vector differs")


def _move_active(version: int, warehouse, catalog, config, wait: float, verb: str,
                 force: bool = False) -> None:
    from tasks.store import load_version_index
    from warehouse.errors import WarehouseError
    from warehouse.writer import open_writer

    wh = open_warehouse(warehouse, catalog, config)
    target = wh.version(version)
    if target.status in ("rejected", "expired") and not force:
        reason = target.gate.get("reason", "") if target.status == "rejected" else "expired"
        raise WarehouseError(f"version {version} is {target.status} ({reason}); "
                             "pass --force to promote it anyway")
    load_version_index(wh, target)  # refuse to point search at a version without its index
    with open_writer(wh, wait) as writer:
        if force and target.status == "rejected":
            writer.record_gate(version, {**target.gate, "forced": True,
                                         "forced_from_status": target.status})
        writer.promote(version)
    out.print(f"{verb} version {version}: it is now active" + (" (forced)" if force else ""))


@app.command()
def promote(version: VersionArg, warehouse: WarehouseOpt = None, catalog: CatalogOpt = None,
            config: ConfigOpt = None, wait: WaitOpt = 0.0,
            force: Annotated[bool, typer.Option(help="promote even a rejected version")] = False
            ) -> None:
    """Make VERSION the active version (instant: moves a pointer, copies no data)."""
    _move_active(version, warehouse, catalog, config, wait, "promoted", force)


@app.command()
def rollback(version: VersionArg, warehouse: WarehouseOpt = None, catalog: CatalogOpt = None,
             config: ConfigOpt = None, wait: WaitOpt = 0.0) -> None:
    """Go back to VERSION: search answers from it and its own index again."""
    _move_active(version, warehouse, catalog, config, wait, "rolled back to")


def _set_pin(version: int, pinned: bool, warehouse, catalog, config) -> None:
    from warehouse.writer import open_writer

    with open_writer(open_warehouse(warehouse, catalog, config)) as writer:
        writer.set_pinned(version, pinned)
    out.print(f"version {version} {'pinned: gc keeps it' if pinned else 'unpinned'}")


@app.command()
def pin(version: VersionArg, warehouse: WarehouseOpt = None, catalog: CatalogOpt = None,
        config: ConfigOpt = None) -> None:
    """Protect VERSION from `gc`."""
    _set_pin(version, True, warehouse, catalog, config)


@app.command()
def unpin(version: VersionArg, warehouse: WarehouseOpt = None, catalog: CatalogOpt = None,
          config: ConfigOpt = None) -> None:
    """Let `gc` expire VERSION again."""
    _set_pin(version, False, warehouse, catalog, config)


@app.command()
def gc(keep: Annotated[int, typer.Option(min=0, help="newest versions to keep")] = 5,
       warehouse: WarehouseOpt = None, catalog: CatalogOpt = None, config: ConfigOpt = None,
       wait: WaitOpt = 0.0) -> None:
    """Expire unpinned, non-active versions beyond the newest KEEP; delete their files."""
    from warehouse.maintenance import collect_garbage
    from warehouse.writer import open_writer

    with open_writer(open_warehouse(warehouse, catalog, config), wait) as writer:
        expired = collect_garbage(writer, keep)
    out.print(f"expired versions: {', '.join(map(str, expired)) or 'none'}")


@app.command()
def compare(a: VersionArg, b: VersionArg, warehouse: WarehouseOpt = None,
            catalog: CatalogOpt = None, config: ConfigOpt = None, as_json: JsonOpt = False
            ) -> None:
    """Metrics of versions A and B side by side, with B - A."""
    wh = open_warehouse(warehouse, catalog, config)
    wh.version(a), wh.version(b)
    left = {(r["evaluator"], r["metric"]): r for r in wh.metrics(a)}
    right = {(r["evaluator"], r["metric"]): r for r in wh.metrics(b)}
    rows = []
    for key in sorted(set(left) | set(right)):
        va = left[key]["value"] if key in left else None
        vb = right[key]["value"] if key in right else None
        direction = (left.get(key) or right.get(key) or {}).get("greater_is_better")
        rows.append({"evaluator": key[0], "metric": key[1], "a": va, "b": vb,
                     "delta": None if va is None or vb is None else vb - va,
                     "greater_is_better": direction})
    if as_json:
        print(json.dumps({"a": a, "b": b, "metrics": rows}))
        return
    table = Table("evaluator", "metric", f"v{a}", f"v{b}", "delta", title=f"compare {a} and {b}")
    for r in rows:
        delta = "" if r["delta"] is None else f"{r['delta']:+.4f}"
        if r["delta"] and r["greater_is_better"] is not None:
            better = (r["delta"] > 0) == r["greater_is_better"]
            delta = f"[{'green' if better else 'red'}]{delta}[/]"
        table.add_row(r["evaluator"], r["metric"], _fmt(r["a"]), _fmt(r["b"]), delta)
    out.print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@app.command()
def sql(query: Annotated[str, typer.Argument(help="a SELECT over the version's views")],
        version: Annotated[int | None, typer.Option(help="version (default: active)")] = None,
        fmt: Annotated[Literal["table", "csv", "json"], typer.Option(
            "--format", help="output format")] = "table",
        warehouse: WarehouseOpt = None, catalog: CatalogOpt = None,
        config: ConfigOpt = None) -> None:
    """Run QUERY read-only; views documents, chunks, embeddings, quarantine, versions,
    quality_metrics show one version."""
    import duckdb

    from warehouse.errors import WarehouseError

    con = open_warehouse(warehouse, catalog, config).connect(version)
    try:
        cursor = con.execute(query)
    except duckdb.Error as exc:
        raise WarehouseError(f"query failed: {exc}") from exc
    names = [d[0] for d in cursor.description or ()]
    rows = cursor.fetchall()
    if fmt == "json":
        for row in rows:
            print(json.dumps(dict(zip(names, row, strict=True)), default=str))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(names)
        writer.writerows(rows)
    else:
        table = Table(*names)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        out.print(table)
