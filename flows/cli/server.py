"""`embedpipe serve` and `embedpipe trigger`: the pipeline on a real Prefect server.

`serve` starts `prefect server start` on 127.0.0.1 (unless PREFECT_API_URL names one already),
records where it listens in `~/.embedpipe/server.json` (so `trigger` and `dashboard` on this
machine find it), then runs `python -m deployments.serve` — the deployment definitions are
handed to Prefect by module path, so nothing here imports `deployments/`. Ctrl-C stops both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from flows.cli.common import (
    ConfigOpt,
    ServerError,
    WarehouseOpt,
    api_healthy,
    app,
    err,
    make_config,
    out,
    stop_process_group,
)
from flows.cli.render import plain
from flows.cli.runs import follow, outcome, parse_params, run_parameters, warehouse_outcome
from flows.config import ConfigError, set_dotted

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

SHORT_NAMES = {"ingest": "ingest-corpus/ingest", "monitor": "monitor-drift/monitor",
               "retrain": "retrain/retrain", "evaluate": "evaluate-version/evaluate",
               "gc": "gc-warehouse/gc"}
BIN = Path(sys.executable).parent
# Prefect keeps every flow run, its logs and artifacts for ever unless told otherwise: the server
# `serve` starts deletes runs (with their logs and artifacts) 30 days after they end, and events
# (every state change of every flow and task run: most of its database) after 7 days, hourly.
# Set the variables to keep more or less (the minimum Prefect accepts for runs is an hour).
PREFECT_RETENTION = {"PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED": "events,flow_runs",
                     "PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD": str(30 * 86_400),
                     "PREFECT_SERVER_EVENTS_RETENTION_PERIOD": "P7D"}  # ISO 8601


def state_file() -> Path:
    """Where `serve` records its server: EMBEDPIPE_HOME (default ~/.embedpipe)/server.json."""
    home = Path(os.environ.get("EMBEDPIPE_HOME", Path.home() / ".embedpipe"))
    return home / "server.json"


def find_api() -> str:
    """The Prefect API to talk to: PREFECT_API_URL, else the server `serve` started here.

    Raises:
        ServerError: neither answers (never falls back to a silent temporary server).
    """
    if os.environ.get("PREFECT_API_URL"):
        url = os.environ["PREFECT_API_URL"]
        if not api_healthy(url):
            raise ServerError(f"the Prefect API at PREFECT_API_URL={url} does not answer")
        return url
    try:
        recorded = json.loads(state_file().read_text())
    except (OSError, ValueError):
        recorded = {}
    url = recorded.get("api_url")
    if url and api_healthy(url):
        return str(url)
    raise ServerError("no Prefect server found: start one with `embedpipe serve` (it is found "
                      "automatically on this machine), or set PREFECT_API_URL to a server's API")


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="port of the Prefect server (API and UI)")] = 4200,
    warehouse: WarehouseOpt = None,
    config: ConfigOpt = None,
    startup_timeout: Annotated[float, typer.Option(help="seconds to wait for the server")] = 90,
) -> None:
    """Start a Prefect server on 127.0.0.1 (or use PREFECT_API_URL) and serve the deployments."""
    cfg = make_config(config, **{"warehouse.path": warehouse})
    # Ctrl-C and `kill` (SIGTERM) both stop the children: they run in their own sessions.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "EMBEDPIPE_WAREHOUSE": str(cfg.warehouse.path)}
    if config is not None:
        env["EMBEDPIPE_CONFIG"] = str(config.absolute())
    children: list[subprocess.Popen] = []
    try:
        api_url = env.get("PREFECT_API_URL")
        if not api_url:
            api_url = f"http://127.0.0.1:{port}/api"
            # The UI asks the API where these settings say: without them it calls port 4200.
            server_env = {**PREFECT_RETENTION, **env, "PREFECT_SERVER_API_HOST": "127.0.0.1",
                          "PREFECT_SERVER_API_PORT": str(port), "PREFECT_UI_API_URL": api_url}
            children.append(subprocess.Popen(
                [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                 str(port)], env=server_env, start_new_session=True))
            deadline = time.monotonic() + startup_timeout
            while not api_healthy(api_url):
                if time.monotonic() > deadline or children[0].poll() is not None:
                    raise ServerError(f"Prefect server on 127.0.0.1:{port} did not become "
                                      f"healthy within {startup_timeout:.0f} s")
                time.sleep(0.5)
            out.print(f"Prefect server and UI: {api_url.removesuffix('/api')}")
        env["PREFECT_API_URL"] = api_url
        _record(api_url)
        children.append(subprocess.Popen([sys.executable, "-m", "deployments.serve"], env=env,
                                         start_new_session=True))
        out.print(f"serving deployments ingest, monitor, retrain, evaluate, gc of warehouse "
                  f"{cfg.warehouse.path}; Ctrl-C stops")
        children[-1].wait()
    except KeyboardInterrupt:
        out.print("stopping")
    finally:
        for child in reversed(children):
            stop_process_group(child)
        _forget()


def _record(api_url: str) -> None:
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"api_url": api_url, "pid": os.getpid(),
                                "since": datetime.now(UTC).isoformat(timespec="seconds")}))


def _forget() -> None:
    try:
        if json.loads(state_file().read_text()).get("pid") == os.getpid():
            state_file().unlink()
    except (OSError, ValueError):
        pass


@app.command()
def trigger(
    name: Annotated[str | None, typer.Argument(
        help="ingest | monitor | retrain | evaluate | FLOW/NAME")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="KEY=VALUE, repeatable; config.SECTION.KEY=VALUE sets a config value")
    ] = None,
    wait: Annotated[bool, typer.Option(help="follow the run to its end")] = False,
    list_: Annotated[bool, typer.Option("--list", help="list deployments and parameters")] = False,
    warehouse: WarehouseOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    lost_after: Annotated[float, typer.Option(
        help="with --wait: seconds without an answer from the server before giving up")] = 60,
) -> None:
    """Start a deployment run through the Prefect API; --wait prints its outcome.

    With --wait the exit code is 1 when the run failed, its retrain was rejected or its monitor
    found drift (as with the direct commands), else 0.
    """
    api = find_api()
    os.environ["PREFECT_API_URL"] = api
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    if list_ or name is None:
        _list_deployments(as_json)
        return
    full = SHORT_NAMES.get(name, name)
    overrides = parse_params(param or [])
    if warehouse is not None:
        from warehouse.location import is_object_url

        set_dotted(overrides, "config.warehouse.path",
                   warehouse if is_object_url(warehouse) else str(Path(warehouse).absolute()))
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(full)
        except ObjectNotFound as exc:
            raise ServerError(f"no deployment {full!r} on the Prefect server at {api}; "
                              "`embedpipe trigger --list` shows the served ones") from exc
    try:
        parameters = run_parameters(deployment, overrides)
    except ConfigError as exc:
        raise ServerError(f"--param: {exc}") from exc
    from prefect.deployments import run_deployment

    # cast: run_deployment is sync here (no event loop); Prefect types it "run or coroutine".
    run = cast("FlowRun", run_deployment(name=full, parameters=parameters, timeout=0))
    if wait:
        run = follow(run, api, lost_after)
    report = outcome(run)
    report["deployment"] = full
    if wait and report["state"] == "COMPLETED":
        report["warehouse"] = warehouse_outcome(parameters)
    if as_json:
        print(json.dumps(report, default=str))
    else:
        out.print(plain(f"{full}: flow run {run.name} ({run.id}) {report['state']}"
                        + (f" — {report['message']}" if report.get("message") else "")))
        latest = (report.get("warehouse") or {}).get("latest_version")
        if latest:
            out.print(f"version {latest['version_id']} ({latest['status']}); active version "
                      f"{report['warehouse'].get('active_version')}")
    if wait and not report["ok"]:
        ended = report["state_name"] or report["state"]
        err.print(plain(f"error: flow run {run.name} ended {ended}"
                        + (f": {report['message']}" if report.get("message") else "")))
        raise typer.Exit(1)


def _list_deployments(as_json: bool) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployments = client.read_deployments()
        flows = {f.id: f.name for f in client.read_flows()}
    rows: list[dict[str, Any]] = []
    for d in sorted(deployments, key=lambda d: (flows.get(d.flow_id, ""), d.name)):
        schema = d.parameter_openapi_schema or {}
        rows.append({"name": f"{flows.get(d.flow_id, '?')}/{d.name}",
                     "short": next((s for s, f in SHORT_NAMES.items()
                                    if f == f"{flows.get(d.flow_id)}/{d.name}"), None),
                     "parameters": sorted(dict(schema.get("properties") or {})),
                     "defaults": {k: v for k, v in (d.parameters or {}).items() if v is not None},
                     "description": d.description})
    if as_json:
        print(json.dumps(rows, default=str))
        return
    for row in rows:
        out.print(plain(f"{row['short'] or row['name']:9} {row['name']}: {row['description']}"))
        out.print(plain(f"          parameters: {', '.join(row['parameters'])}; defaults "
                        f"{json.dumps(row['defaults'], default=str)}"))
    out.print("config values: --param config.SECTION.KEY=VALUE (e.g. config.embed.batch_size=32)")
