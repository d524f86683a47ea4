"""The Typer app, the options every `embedpipe` command shares, and how commands reach Prefect."""

from __future__ import annotations

import ctypes
import functools
import inspect
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer
from rich.console import Console

from flows.config import EmbedpipeConfig, load_config
from tasks.errors import EmbedpipeError
from warehouse.store import Warehouse

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Corpus in; versioned, evaluated, searchable embeddings out.")
out = Console()
err = Console(stderr=True)

# A string, not a Path: "s3://bucket/prefix" must reach the config as written.
WarehouseOpt = Annotated[str | None, typer.Option(
    "--warehouse", "-w", help="warehouse directory or s3://bucket/prefix (env "
    "EMBEDPIPE_WAREHOUSE; default .embedpipe/warehouse)")]
CatalogOpt = Annotated[str | None, typer.Option(
    "--catalog", help="'sqlite' (default), postgresql://…, env:VAR or prefect-secret:NAME "
    "(env EMBEDPIPE_CATALOG)")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="TOML config file (env EMBEDPIPE_CONFIG; default ./embedpipe.toml)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable JSON output")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="show Prefect logs")]
VersionOpt = Annotated[int | None, typer.Option(help="version (default: the active one)")]

# How long a temporary Prefect API may take to answer (10-25 s idle, more on a busy machine).
API_STARTUP_SECONDS = float(os.environ.get("EMBEDPIPE_API_STARTUP_SECONDS", "120"))


class ServerError(EmbedpipeError):
    """The Prefect server or a deployment run could not be reached or failed."""


def make_config(config: Path | None, **flags: Any) -> EmbedpipeConfig:
    return load_config(config, flags)


@dataclass(frozen=True)
class Where:
    """The options every warehouse command shares: --warehouse, --catalog, --config."""

    warehouse: str | None = None
    catalog: str | None = None
    config_file: Path | None = None

    def config(self, **flags: Any) -> EmbedpipeConfig:
        """The effective config, with these options and `flags` ("section.key": value)."""
        return load_config(self.config_file, {"warehouse.path": self.warehouse,
                                              "warehouse.catalog": self.catalog, **flags})

    def open(self) -> Warehouse:
        return self.config().warehouse.open()


_SHARED = [inspect.Parameter("warehouse", inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=WarehouseOpt),
           inspect.Parameter("catalog", inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=CatalogOpt),
           inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=ConfigOpt)]


def command(name: str | None = None) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a command that takes the shared options; it receives them as `where: Where`.

    The command declares only its own options; --warehouse, --catalog and --config are added
    to its signature here, once for all commands.
    """
    def decorate(func: Callable[..., None]) -> Callable[..., None]:
        hints = get_type_hints(func, include_extras=True)
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in inspect.signature(func).parameters.values() if p.name != "where"]

        @functools.wraps(func)
        def wrapper(*args: Any, warehouse: str | None = None, catalog: str | None = None,
                    config: Path | None = None, **kwargs: Any) -> None:
            func(*args, where=Where(warehouse, catalog, config), **kwargs)

        params = own + _SHARED
        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        app.command(name)(wrapper)
        return func
    return decorate


def quiet_prefect(verbose: bool) -> None:
    """Prefect logs only on --verbose; offline, its API server must not phone home."""
    if not verbose:  # our errors end as one line from main(); Prefect need not log them too
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def answers_ok(url: str) -> bool:
    """Does a GET of `url` answer 200 within 2 s?"""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def api_healthy(api_url: str) -> bool:
    """Does the Prefect API at `api_url` answer its health check?"""
    return answers_ok(f"{api_url}/health")


def stop_process_group(proc: subprocess.Popen) -> None:
    """SIGTERM a process started with start_new_session, its children too; SIGKILL after 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _die_with_parent() -> None:
    """In a child before exec: the kernel kills it when its parent dies (kill -9 included)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def prefect_api(verbose: bool = False) -> Iterator[str]:
    """A Prefect API for flows this process runs: `PREFECT_API_URL` if set, else a temporary one.

    The temporary API is the same server Prefect would start on its own, but started here: it
    dies with this process even on `kill -9` (an orphaned API server holds ~230 MB), and a slow
    start is one clear error line, not a traceback.

    Raises:
        ServerError: the temporary API did not answer within EMBEDPIPE_API_STARTUP_SECONDS.
    """
    quiet_prefect(verbose)
    import prefect
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    configured = os.environ.get("PREFECT_API_URL") or get_current_settings().api.url
    if configured:  # a server named by the environment, a profile, or a test harness
        yield configured
        return
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
           "PREFECT__SERVER_FINAL": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent),
         "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "error", "--lifespan", "on"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent, start_new_session=True)
    try:
        deadline = time.monotonic() + API_STARTUP_SECONDS
        while not api_healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ServerError(
                    f"the temporary Prefect API did not start within {API_STARTUP_SECONDS:.0f} s "
                    "(is the machine busy?); start one with `embedpipe serve` and set "
                    "PREFECT_API_URL, or raise EMBEDPIPE_API_STARTUP_SECONDS")
            time.sleep(0.25)
        # Prefect read its settings at import: the URL goes in through its settings context.
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
            _flush_prefect()
    finally:
        stop_process_group(proc)


def _flush_prefect() -> None:
    """Send queued run logs and events before the temporary API stops."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)
