"""`embedpipe serve` and `embedpipe trigger`: the pipeline on a real Prefect server.

`serve` starts `prefect server start` on 127.0.0.1 (unless PREFECT_API_URL names one already),
then runs `python -m deployments.serve` — the deployment definitions are handed to Prefect by
module path, so nothing here imports `deployments/`. Ctrl-C stops both.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from flows.cli_common import app, err, out
from tasks.errors import EmbedpipeError

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

SHORT_NAMES = {"ingest": "ingest-corpus/ingest", "monitor": "monitor-drift/monitor",
               "retrain": "retrain/retrain", "evaluate": "evaluate-version/evaluate"}
BIN = Path(sys.executable).parent


class ServerError(EmbedpipeError):
    """The Prefect server or a deployment run could not be reached or failed."""


def api_healthy(api_url: str) -> bool:
    """Does the Prefect API at `api_url` answer its health check?"""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def stop_process_group(proc: subprocess.Popen) -> None:
    """SIGTERM a process started with start_new_session, its children too; SIGKILL after 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="port of the Prefect server started here")] = 4200,
    startup_timeout: Annotated[float, typer.Option(help="seconds to wait for the server")] = 90,
) -> None:
    """Start a Prefect server on 127.0.0.1 (or use PREFECT_API_URL) and serve the deployments."""
    # Ctrl-C and `kill` (SIGTERM) both stop the children: they run in their own sessions.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    children: list[subprocess.Popen] = []
    try:
        api_url = env.get("PREFECT_API_URL")
        if not api_url:
            api_url = f"http://127.0.0.1:{port}/api"
            children.append(subprocess.Popen(
                [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                 str(port)], env=env, start_new_session=True))
            deadline = time.monotonic() + startup_timeout
            while not api_healthy(api_url):
                if time.monotonic() > deadline or children[0].poll() is not None:
                    raise ServerError(f"Prefect server on 127.0.0.1:{port} did not become "
                                      f"healthy within {startup_timeout:.0f} s")
                time.sleep(0.5)
            out.print(f"Prefect server: {api_url.removesuffix('/api')}")
        env["PREFECT_API_URL"] = api_url
        children.append(subprocess.Popen([sys.executable, "-m", "deployments.serve"], env=env,
                                         start_new_session=True))
        out.print("serving deployments ingest, monitor, retrain, evaluate; Ctrl-C stops")
        children[-1].wait()
    except KeyboardInterrupt:
        out.print("stopping")
    finally:
        for child in reversed(children):
            stop_process_group(child)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`k=v` strings as a nested dict; values are JSON when they parse as JSON.

    >>> parse_params(["source=/data/a.jsonl", "config.embed.batch_size=32"])
    {'source': '/data/a.jsonl', 'config': {'embed': {'batch_size': 32}}}
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ServerError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        _set_dotted(params, key, value)
    return params


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out_ = dict(base)
    for key, value in top.items():
        out_[key] = _merge(out_.get(key) or {}, value) if isinstance(value, dict) else value
    return out_


def _warehouse_outcome(parameters: dict[str, Any]) -> dict[str, Any]:
    """Latest and active version, and the last drift check, of the run's warehouse."""
    from warehouse.store import Warehouse

    settings = (parameters.get("config") or {}).get("warehouse") or {}
    if not settings.get("path"):
        return {}
    wh = Warehouse(Path(settings["path"]), settings.get("catalog"))
    if not wh.exists():
        return {}
    versions = wh.versions()
    active = [v.version_id for v in versions if v.status == "active"]
    outcome: dict[str, Any] = {
        "path": str(wh.path), "active_version": active[-1] if active else None,
        "latest_version": {"version_id": versions[-1].version_id,
                           "status": versions[-1].status} if versions else None}
    con = wh.connect() if active else None
    if con is not None:
        last = con.execute("SELECT check_id, any_value(drifted) FROM drift_metrics "
                           "GROUP BY check_id ORDER BY max(checked_at) DESC LIMIT 1").fetchone()
        if last:
            outcome["last_drift_check"] = {"check_id": last[0], "drifted": bool(last[1])}
        con.close()
    return outcome


@app.command()
def trigger(
    name: Annotated[str, typer.Argument(help="ingest | monitor | retrain | evaluate | FLOW/NAME")],
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="KEY=VALUE, repeatable; dotted keys reach into config")] = None,
    wait: Annotated[bool, typer.Option(help="follow the run to its end")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
) -> None:
    """Start a deployment run through the Prefect API; with --wait exit 1 unless it completes."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    full = SHORT_NAMES.get(name, name)
    overrides = parse_params(param or [])
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(full)
        except ObjectNotFound as exc:
            raise ServerError(f"no deployment {full!r} on the Prefect server at "
                              f"{os.environ.get('PREFECT_API_URL', 'the default profile')}: "
                              f"{exc}") from exc
    parameters = _merge(dict(deployment.parameters or {}), overrides)
    # cast: run_deployment is sync here (no event loop); Prefect types it "run or coroutine".
    run = cast("FlowRun", run_deployment(name=full, parameters=parameters,
                                         timeout=None if wait else 0))
    state = run.state
    report: dict[str, Any] = {"flow_run_id": str(run.id), "flow_run": run.name,
                              "deployment": full, "state": state.type.value if state else None}
    if wait and state is not None and state.is_completed():
        # What the run did, read from the warehouse it wrote (results are not persisted).
        report["warehouse"] = _warehouse_outcome(parameters)
    if as_json:
        print(json.dumps(report, default=str))
    else:
        out.print(f"{full}: flow run {run.name} ({run.id}) {report['state']}")
        outcome = report.get("warehouse") or {}
        if outcome.get("latest_version"):
            latest = outcome["latest_version"]
            out.print(f"version {latest['version_id']} ({latest['status']}); active version "
                      f"{outcome.get('active_version')}")
    if wait and (state is None or not state.is_completed()):
        err.print(f"[red]error:[/red] flow run {run.name} ended {report['state']}")
        raise typer.Exit(1)
