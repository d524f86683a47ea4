"""The one typed configuration: `embedpipe.toml`, then `EMBEDPIPE_*` env vars, then CLI flags.

Each stage owns its section (defined next to its code in `tasks/`); this module only composes
them and applies the precedence. The result is frozen: nothing mutates a config after loading.

Env vars: `EMBEDPIPE_WAREHOUSE` (warehouse.path), `EMBEDPIPE_CATALOG` (warehouse.catalog),
`EMBEDPIPE_CONFIG` (the TOML file), and `EMBEDPIPE_<SECTION>__<KEY>` for any key, e.g.
`EMBEDPIPE_EMBED__BATCH_SIZE=32`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks.chunk import ChunkConfig
from tasks.clean import CleanConfig
from tasks.drift import DriftConfig
from tasks.embed import EmbedConfig
from tasks.errors import EmbedpipeError
from tasks.finetune import RetrainConfig
from tasks.gate import GateConfig
from tasks.index import IndexConfig
from tasks.load import SourceConfig
from tasks.quality import EvaluateConfig

DEFAULT_WAREHOUSE = Path(".embedpipe") / "warehouse"
CONFIG_FILE = Path("embedpipe.toml")
_ENV_SHORTCUTS = {"EMBEDPIPE_WAREHOUSE": "warehouse.path", "EMBEDPIPE_CATALOG": "warehouse.catalog"}


class ConfigError(EmbedpipeError):
    """A configuration file, variable or flag with an invalid value."""


class WarehouseConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Relative paths are resolved against the working directory when the config is loaded.
    path: Path = DEFAULT_WAREHOUSE
    # None/"sqlite": SQLite catalog in the warehouse directory. "postgresql://…": shared catalog.
    catalog: str | None = None
    # A second writer fails at once (0) or waits this long for the lock.
    lock_wait_seconds: float = Field(0.0, ge=0)


class EmbedpipeConfig(BaseModel):
    """Everything a flow needs, one section per stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: SourceConfig = SourceConfig()
    clean: CleanConfig = CleanConfig()
    chunk: ChunkConfig = ChunkConfig()
    embed: EmbedConfig = EmbedConfig()
    index: IndexConfig = IndexConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    gate: GateConfig = GateConfig()
    drift: DriftConfig = DriftConfig()
    retrain: RetrainConfig = RetrainConfig()
    warehouse: WarehouseConfig = WarehouseConfig()


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    section, _, key = dotted.partition(".")
    if not key:
        raise ConfigError(f"config key {dotted!r} needs a section, e.g. 'embed.batch_size'")
    tree.setdefault(section, {})[key] = value


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for section, values in top.items():
        if isinstance(values, dict):
            out.setdefault(section, {}).update(values)
        else:
            out[section] = values
    return out


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Config values from `EMBEDPIPE_*` variables (strings; pydantic converts them)."""
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if name in _ENV_SHORTCUTS:
            _set_dotted(tree, _ENV_SHORTCUTS[name], value)
        elif name.startswith("EMBEDPIPE_") and "__" in name:
            section, _, key = name.removeprefix("EMBEDPIPE_").lower().partition("__")
            _set_dotted(tree, f"{section}.{key}", value)
    return tree


def load_config(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> EmbedpipeConfig:
    """The effective config: file, then environment, then `overrides` ("section.key": value).

    Raises:
        ConfigError: unreadable file, unknown key or invalid value (the message names it).
    """
    environ = os.environ if environ is None else environ
    path = config_file or (Path(environ["EMBEDPIPE_CONFIG"]) if "EMBEDPIPE_CONFIG" in environ
                           else CONFIG_FILE)
    tree: dict[str, Any] = {}
    if path.exists():
        try:
            tree = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: not a readable TOML file ({exc})") from exc
    elif config_file is not None:
        raise ConfigError(f"{config_file}: config file not found")
    tree = _merge(tree, env_overrides(environ))
    flags: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(flags, dotted, value)
    tree = _merge(tree, flags)
    try:
        config = EmbedpipeConfig.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid configuration ({problems})") from exc
    warehouse = config.warehouse.model_copy(update={"path": config.warehouse.path.absolute()})
    return config.model_copy(update={"warehouse": warehouse})
