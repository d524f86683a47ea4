"""Commands that score and watch versions: evaluate, drift, retrain. All run Prefect flows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from flows.cli.common import JsonOpt, VerboseOpt, VersionOpt, Where, command, out, prefect_api
from flows.cli.render import plain
from tasks.errors import SourceError
from warehouse.query_log import QUERY_LOG


@command()
def evaluate(
    version: VersionOpt = None,
    beir: Annotated[Path | None, typer.Option(help="BEIR directory (queries + qrels)")] = None,
    split: Annotated[str | None, typer.Option(help="qrels split of the BEIR set")] = None,
    sts: Annotated[Path | None, typer.Option(help="STS-format pairs file")] = None,
    labels: Annotated[Path | None, typer.Option(
        help="(text, label) file: a linear probe and a clustering (JSONL, CSV/TSV, or STS "
             "sentences by genre)")] = None,
    mode: Annotated[list[str] | None, typer.Option(
        "--mode", help="search modes to score on the BEIR set (vector, bm25, hybrid); "
                       "repeatable")] = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
    *, where: Where,
) -> None:
    """Score a version (health, and retrieval/STS on the given sets) into quality_metrics."""
    from warehouse.lock import check_unlocked

    cfg = where.config(**{"evaluate.beir": beir, "evaluate.beir_split": split,
                          "evaluate.sts": sts, "evaluate.modes": mode or None,
                          "evaluate.labels": labels})
    check_unlocked(cfg.warehouse.open(), cfg.warehouse.lock_wait_seconds, create=False)
    with prefect_api(verbose):
        from flows.evaluate import evaluate_version

        rows = evaluate_version(cfg, version)
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("evaluator", "metric", "value", "better", title="quality")
    for r in rows:
        better = {True: "higher", False: "lower", None: ""}[r["greater_is_better"]]
        table.add_row(plain(r["evaluator"]), plain(r["metric"] + (" *" if r["is_primary"]
                                                                  else "")),
                      f"{r['value']:.4f}", better)
    out.print(table)


@command()
def drift(
    source: Annotated[Path | None, typer.Argument(help="a new corpus batch")] = None,
    queries: Annotated[Path | None, typer.Option(
        help="a query log: one query per line, or JSONL with query/text; 'log': the "
             "warehouse's own log of searches")] = None,
    reference_queries: Annotated[Path | None, typer.Option(
        help="the query log to compare --queries with from now on (default: the first "
             "query log checked)")] = None,
    retrain_on_drift: Annotated[bool, typer.Option(
        help="run the retrain flow directly when drift is detected")] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
    *, where: Where,
) -> None:
    """Compare SOURCE (or --queries FILE|log) with the active version; exit 1 when drifted."""
    if (source is None) == (queries is None):
        raise SourceError("give either SOURCE (a corpus batch) or --queries FILE, not both")
    path = source or queries
    assert path is not None
    for given in (path, reference_queries):
        if given is not None and not given.exists() and given != Path(QUERY_LOG):
            raise SourceError(f"{given}: no such file or directory")
    cfg = where.config()
    open_check(cfg)
    with prefect_api(verbose):
        from flows.monitor import monitor_drift

        report = monitor_drift(cfg, str(path), "queries" if queries else "corpus",
                               retrain_on_drift,
                               reference_queries=str(reference_queries)
                               if reference_queries else None)
    if as_json:
        print(report.model_dump_json())
    elif report.note:
        out.print(plain(report.note))
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


def open_check(cfg) -> None:
    """Fail before starting Prefect when the warehouse has no readable active version."""
    cfg.warehouse.open().readable()


@command()
def retrain(
    source: Annotated[Path | None, typer.Argument(
        help="a new batch: the candidate holds the active documents plus these")] = None,
    strategy: Annotated[Literal["finetune", "reembed"] | None, typer.Option(
        help="finetune the model, or only re-embed")] = None,
    max_steps: Annotated[int | None, typer.Option(help="training steps at most")] = None,
    ignore_cooldown: Annotated[bool, typer.Option(
        help="run even within retrain.min_interval of the last retrain")] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
    *, where: Where,
) -> None:
    """Fine-tune (or re-embed) on the whole corpus, evaluate, promote only through the gate."""
    from tasks.prep.load import check_source
    from warehouse.lock import check_unlocked

    cfg = where.config(**{"retrain.strategy": strategy, "retrain.max_steps": max_steps,
                          "retrain.min_interval": 0 if ignore_cooldown else None})
    if source is not None:
        check_source(source, cfg.source)
    open_check(cfg)
    check_unlocked(cfg.warehouse.open(), cfg.warehouse.lock_wait_seconds, create=False)
    with prefect_api(verbose):
        from flows.retrain import retrain as retrain_flow

        report = retrain_flow(cfg, str(source) if source else None)
    if as_json:
        print(json.dumps(report.model_dump()))
        return
    out.print(plain(f"retrain ({report.strategy}) of version {report.base_version}: "
                    f"{report.status}, candidate {report.candidate_version} "
                    f"({report.documents} documents); gate: {report.gate}"))
