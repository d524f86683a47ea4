"""Deployment settings: schedules and sources per environment, from `environments.toml`.

`EMBEDPIPE_ENV` picks the table (default "default"); `EMBEDPIPE_DEPLOY_<KEY>` overrides a key;
`EMBEDPIPE_DEPLOYMENTS_FILE` points at another file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_FILE = Path(__file__).with_name("environments.toml")


class DeploymentSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ingest_source: str
    ingest_cron: str | None = "0 2 * * *"
    monitor_source: str
    monitor_kind: Literal["corpus", "queries"] = "corpus"
    monitor_cron: str | None = "0 * * * *"
    timezone: str = "UTC"
    # Served drift checks act on k alarms of the last n checks: one noisy batch retrains nothing.
    monitor_alarms_required: int = 2
    monitor_window: int = 3
    # The served gc: expire versions beyond the newest `gc_keep`, delete what they alone used.
    gc_cron: str | None = "30 3 * * *"
    gc_keep: int = 5
    # Served runs (ingest, retrain, ...) run at this niceness: on a small machine they yield
    # the CPU to the dashboard and searches, whose pages wait on it while a run embeds or
    # trains (the soak's p95 over 500 ms). 0 runs them at the server's own priority.
    nice: int = Field(default=10, ge=0, le=19)


def checked_source(name: str, value: str, base: Path) -> tuple[str, str | None]:
    """(absolute path, or why it cannot be used) of a deployment's source.

    Relative paths are resolved against `base` (where `serve` starts), once, here: a served run
    never depends on the working directory of whatever process runs it.
    """
    path = Path(value).expanduser()
    path = path if path.is_absolute() else (base / path)
    if not path.exists():
        return str(path), (f"{name}: source {path} does not exist; the deployment is "
                           "registered paused (create it, then `prefect deployment resume`, "
                           f"or set EMBEDPIPE_DEPLOY_{name.upper()}_SOURCE)")
    return str(path), None


def load_settings(environ: Mapping[str, str] | None = None) -> DeploymentSettings:
    environ = os.environ if environ is None else environ
    path = Path(environ.get("EMBEDPIPE_DEPLOYMENTS_FILE", DEFAULT_FILE))
    tables = tomllib.loads(path.read_text())
    name = environ.get("EMBEDPIPE_ENV", "default")
    if name not in tables:
        raise ValueError(f"environment {name!r} is not in {path}; valid: {sorted(tables)}")
    values = {**tables.get("default", {}), **tables[name]}
    for key in DeploymentSettings.model_fields:
        if f"EMBEDPIPE_DEPLOY_{key.upper()}" in environ:
            values[key] = environ[f"EMBEDPIPE_DEPLOY_{key.upper()}"] or None
    return DeploymentSettings.model_validate(values)
