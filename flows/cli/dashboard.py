"""`embedpipe dashboard` (the read-only web app and /metrics) and `embedpipe metrics`.

Both read the warehouse through short read-only connections and never take the writer lock, so
they keep answering while an ingest writes. Starlette, uvicorn and prometheus-client are
imported inside the commands: other commands do not pay for them.
"""

from __future__ import annotations

import socket
import sys
from typing import Annotated

import typer

from flows.cli.common import Where, command, out
from tasks.errors import EmbedpipeError
from warehouse.errors import WarehouseError


class PortInUse(EmbedpipeError):
    """The dashboard's address is taken (or not ours to bind)."""


@command()
def dashboard(
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0: every interface)")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8050,
    *, where: Where,
) -> None:
    """Serve the read-only dashboard and /metrics over one warehouse; Ctrl-C stops.

    Pages: overview, versions (and each version's card), quality, drift, map, search.
    """
    import uvicorn

    from flows.dashboard import memory
    from flows.dashboard.app import create_app

    memory.limit_arenas()  # before uvicorn's threads: see flows/dashboard/memory.py
    config = where.config()
    if not config.warehouse.open().exists():
        raise WarehouseError(f"no warehouse at {config.warehouse.path}: run `embedpipe ingest "
                             "SOURCE` first (or pass --warehouse / set EMBEDPIPE_WAREHOUSE)")
    check_port(host, port)
    app = create_app(config)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    out.print(f"dashboard of {config.warehouse.path}: http://{shown}:{port}/ "
              f"(Prometheus: http://{shown}:{port}/metrics); Ctrl-C stops", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@command()
def metrics(*, where: Where) -> None:
    """Print the warehouse's metrics once, in Prometheus text format (what /metrics serves)."""
    from flows.config import resolve_secret
    from flows.dashboard.metrics import render
    from warehouse.history import PooledWarehouse

    cfg = where.config().warehouse
    warehouse = PooledWarehouse(cfg.path, resolve_secret(cfg.catalog), pool_size=1)
    if not warehouse.exists():
        raise WarehouseError(f"no warehouse at {cfg.path}: run `embedpipe ingest SOURCE` "
                             "first (or pass --warehouse / set EMBEDPIPE_WAREHOUSE)")
    sys.stdout.write(render(warehouse).decode())


def check_port(host: str, port: int) -> None:
    """Fail with one line now, rather than with uvicorn's traceback later.

    Raises:
        PortInUse: something listens on `host:port` already, or it cannot be bound.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUse(f"cannot listen on {host}:{port} ({exc.strerror}): choose another "
                            "with --port") from None
