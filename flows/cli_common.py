"""The Typer app and the options every `embedpipe` command shares."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from flows.config import EmbedpipeConfig, load_config
from warehouse.store import Warehouse

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
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


def make_config(config: Path | None, **flags: Any) -> EmbedpipeConfig:
    return load_config(config, flags)


def open_warehouse(warehouse: Path | None, catalog: str | None, config: Path | None
                   ) -> Warehouse:
    cfg = make_config(config, **{"warehouse.path": warehouse, "warehouse.catalog": catalog})
    return Warehouse(cfg.warehouse.path, cfg.warehouse.catalog)


def quiet_prefect(verbose: bool) -> None:
    """Prefect logs only on --verbose; offline, its API server must not phone home."""
    if not verbose:  # our errors end as one line from main(); Prefect need not log them too
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
