"""`embedpipe backends`: the embedding backends measured on this machine, and the one `auto`
picks (tasks/embed/selection.py). No Prefect."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from flows.cli.common import JsonOpt, Where, command, out
from flows.cli.render import plain, progress_bars

RefreshOpt = Annotated[bool, typer.Option(help="measure again (else the cached table)")]


@command()
def backends(as_json: JsonOpt = False, refresh: RefreshOpt = False, *, where: Where) -> None:
    """Measure every backend on this machine once (cached per machine and model): tokens/s,
    x torch fp32, cosine to torch fp32, batch invariance; `auto` picks the fastest faithful."""
    from tasks.embed.backends.exports import export_root
    from tasks.embed.backends.loader import load
    from tasks.embed.selection import select

    config = where.config().embed
    with progress_bars(not as_json):
        selection = select(config, load, export_root(config.export_dir), refresh=refresh)
    recorded = where.open().recorded_backend()
    if as_json:
        print(json.dumps({**selection.as_dict(), "warehouse_backend": recorded}))
        return
    table = Table("backend", "tokens/s", "x torch", "cosine min", "batch invariance", "chosen",
                  "note", title=plain(f"{selection.machine['cpu']} "
                                      f"({', '.join(selection.machine['flags'])})"))
    for m in selection.measurements:
        table.add_row(m.backend, f"{m.tokens_per_second:,.0f}", f"{m.speedup:.2f}",
                      f"{m.cosine_min:.5f}", f"{m.invariance_min:.6f}",
                      "auto" if m.backend == selection.chosen else "", plain(m.note))
    out.print(table)
    if recorded:
        out.print(plain(f"this warehouse keeps backend {recorded} (its first ingest's); "
                        "--backend on ingest changes it (a new version that re-embeds)"))
