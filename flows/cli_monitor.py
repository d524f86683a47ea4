"""Drift and retrain commands: both run Prefect flows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from flows.cli_common import (
    CatalogOpt,
    ConfigOpt,
    JsonOpt,
    WarehouseOpt,
    app,
    make_config,
    out,
    quiet_prefect,
)
from tasks.errors import SourceError

VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="show Prefect logs")]


@app.command()
def drift(
    source: Annotated[Path | None, typer.Argument(help="a new corpus batch")] = None,
    queries: Annotated[Path | None, typer.Option(
        help="a query log: one query per line, or JSONL with query/text")] = None,
    retrain_on_drift: Annotated[bool, typer.Option(
        help="run the retrain flow directly when drift is detected")] = False,
    warehouse: WarehouseOpt = None,
    catalog: CatalogOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Compare SOURCE (or --queries FILE) with the active version; exit 1 when drifted."""
    if (source is None) == (queries is None):
        raise SourceError("give either SOURCE (a corpus batch) or --queries FILE, not both")
    path = source or queries
    assert path is not None
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    cfg = make_config(config, **{"warehouse.path": warehouse, "warehouse.catalog": catalog})
    quiet_prefect(verbose)
    from flows.monitor import monitor_drift

    report = monitor_drift(cfg, str(path), "queries" if queries else "corpus", retrain_on_drift)
    if as_json:
        print(report.model_dump_json())
    else:
        table = Table("statistic", "value", title=f"drift check {report.check_id}: "
                      + ("DRIFT" if report.drifted else "no drift")
                      + f" ({report.n_current} vs {report.n_reference} samples)")
        for name, value in report.statistics.items():
            table.add_row(name, f"{value:.4g}")
        out.print(table)
        if report.retrain:
            out.print(f"retrain: {report.retrain['status']} "
                      f"(candidate {report.retrain['candidate_version']}; "
                      f"{report.retrain['gate']})")
    raise typer.Exit(1 if report.drifted else 0)


@app.command()
def retrain(
    source: Annotated[Path | None, typer.Argument(
        help="corpus to retrain on (default: the active version's documents)")] = None,
    strategy: Annotated[Literal["finetune", "reembed"] | None, typer.Option(
        help="finetune the model, or only re-embed")] = None,
    max_steps: Annotated[int | None, typer.Option(help="training steps at most")] = None,
    warehouse: WarehouseOpt = None,
    catalog: CatalogOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Fine-tune (or re-embed), evaluate, and promote only if the gate passes."""
    if source is not None and not source.exists():
        raise SourceError(f"{source}: no such file or directory")
    cfg = make_config(config, **{"warehouse.path": warehouse, "warehouse.catalog": catalog,
                                 "retrain.strategy": strategy, "retrain.max_steps": max_steps})
    quiet_prefect(verbose)
    from flows.retrain import retrain as retrain_flow

    report = retrain_flow(cfg, str(source) if source else None)
    if as_json:
        print(json.dumps(report.model_dump()))
        return
    out.print(f"retrain ({report.strategy}) of version {report.base_version}: {report.status}, "
              f"candidate {report.candidate_version}; gate: {report.gate}")
