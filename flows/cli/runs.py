"""A deployment run from the command line: its parameters in, its outcome out (for `trigger`).

`parse_params` and `run_parameters` turn `--param` pairs into a run's validated parameters;
`follow` waits for the run's end (one line when the server is lost); `outcome` and
`warehouse_outcome` are what `trigger --wait --json` prints.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from flows.cli.common import ServerError, make_config
from flows.config import merge, set_dotted

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun



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
        if "." in key:
            set_dotted(params, key, value)
        else:
            params[key] = value
    return params


def run_parameters(deployment: Any, overrides: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a new run: the deployment's, with `--param`s on top, validated.

    `config.section.key=value` becomes an override the run applies to the config it loads (the
    one config merger of `flows.config`), checked here against the config's own schema; every
    other parameter is checked against the deployment's parameter schema. Nothing is created
    when anything is off.

    Raises:
        ConfigError: a config key that does not exist or a value of the wrong type.
        ServerError: a parameter the deployment does not take, or of the wrong type.
    """
    from prefect.utilities.schema_tools.validation import validate

    from flows.config import load_config

    config_part = overrides.pop("config", None) or {}
    dotted = dict(_flatten(config_part))
    load_config(overrides=dotted)  # raises ConfigError naming the bad key or value
    parameters = merge(dict(deployment.parameters or {}), overrides)
    if dotted:
        parameters["overrides"] = {**(parameters.get("overrides") or {}), **dotted}
    schema = dict(deployment.parameter_openapi_schema or {})
    known = set((schema.get("properties") or {}).keys())
    unknown = sorted(set(parameters) - known) if known else []
    if unknown:
        raise ServerError(f"deployment {deployment.name!r} takes no parameter "
                          f"{', '.join(map(repr, unknown))}; it takes {', '.join(sorted(known))}")
    errors = validate(parameters, schema, raise_on_error=False, ignore_required=False,
                      allow_none_with_default=True) if schema else []
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.path) or "parameters"
        raise ServerError(f"parameter {where!r} is invalid: {first.message}")
    return parameters


def _flatten(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name.count(".") < 1:
            items.extend(_flatten(value, name + "."))
        else:
            items.append((name, value))
    return items


def follow(run: FlowRun, api: str, lost_after: float) -> FlowRun:
    """Poll `run` every second until its state is final (a script learns the end of a short
    run at once, for one cheap API read a second).

    Raises:
        ServerError: the server did not answer for `lost_after` seconds (killed, restarting,
            unreachable): one line, instead of waiting for ever or a traceback.
    """
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    answered = time.monotonic()
    with get_client(sync_client=True) as client:
        while not (run.state and run.state.is_final()):
            time.sleep(1)
            try:
                run = client.read_flow_run(run.id)
                answered = time.monotonic()
            except (httpx.TransportError, PrefectHTTPStatusError) as exc:
                if time.monotonic() - answered > lost_after:
                    seen = run.state.name if run.state else "unknown"
                    raise ServerError(
                        f"lost the Prefect server at {api} while waiting for flow run "
                        f"{run.name} ({run.id}, last seen {seen}): no answer for "
                        f"{lost_after:.0f} s ({type(exc).__name__}); the run may still "
                        "finish: look it up once the server is back") from exc
    return run


def outcome(run: FlowRun) -> dict[str, Any]:
    """What a finished (or started) run says about itself: state, its name and message.

    A completed run whose state name says it was rejected or found drift is not `ok`: scripts
    that wait on it learn the outcome from the exit code, as with the direct commands.
    """
    state = run.state
    name = state.name if state else None
    ok = bool(state and state.is_completed() and name not in ("Rejected", "Drift"))
    return {"flow_run_id": str(run.id), "flow_run": run.name,
            "state": state.type.value if state else None, "state_name": name,
            "message": state.message if state else None, "ok": ok}


def warehouse_outcome(parameters: dict[str, Any]) -> dict[str, Any]:
    """Latest and active version, and the last drift check, of the run's warehouse."""
    from warehouse.store import Warehouse

    path = (parameters.get("overrides") or {}).get("warehouse.path")
    if not path:
        return {}
    wh = Warehouse(path, make_config(None).warehouse.catalog)
    if not wh.exists():
        return {}
    versions = wh.versions()
    active = [v.version_id for v in versions if v.status == "active"]
    result: dict[str, Any] = {
        "path": wh.where, "active_version": active[-1] if active else None,
        "latest_version": {"version_id": versions[-1].version_id,
                           "status": versions[-1].status} if versions else None}
    last = wh.last_drift_check()
    if last:
        result["last_drift_check"] = {"check_id": last["check_id"],
                                      "drifted": bool(last["drifted"])}
    return result
