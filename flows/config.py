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
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_serializer,
)

from tasks.embed.base import EmbedConfig
from tasks.errors import EmbedpipeError
from tasks.index.build import IndexConfig
from tasks.monitor.drift import DriftConfig
from tasks.monitor.projection import MapConfig
from tasks.prep.chunk import ChunkConfig
from tasks.prep.clean import CleanConfig
from tasks.prep.load import SourceConfig
from tasks.quality.gate import GateConfig
from tasks.quality.scoring import EvaluateConfig
from tasks.train.finetune import RetrainConfig
from warehouse.codec import StoreConfig
from warehouse.lake import redact_catalog
from warehouse.query_log import SearchConfig
from warehouse.store import Warehouse

DEFAULT_WAREHOUSE = Path(".embedpipe") / "warehouse"
CONFIG_FILE = Path("embedpipe.toml")
_ENV_SHORTCUTS = {"EMBEDPIPE_WAREHOUSE": "warehouse.path", "EMBEDPIPE_CATALOG": "warehouse.catalog"}
# A warehouse on object storage stays a string: Path("s3://b/p") would fold the "//".
ObjectUrl = Annotated[str, StringConstraints(pattern=r"^s3://[^/]+")]


class ConfigError(EmbedpipeError):
    """A configuration file, variable or flag with an invalid value."""


class WarehouseConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Relative paths are resolved against the working directory when the config is loaded;
    # "s3://bucket/prefix" puts the warehouse on object storage (needs a PostgreSQL catalog).
    path: Path | ObjectUrl = DEFAULT_WAREHOUSE
    # None/"sqlite": SQLite catalog in the warehouse directory. "postgresql://…": shared catalog.
    # A password is best not written here: "env:VAR" reads the URL from variable VAR, and
    # "prefect-secret:NAME" from a Prefect Secret block, when the warehouse is opened.
    catalog: str | None = None
    # A second writer fails at once (0) or waits this long for the lock.
    lock_wait_seconds: float = Field(0.0, ge=0)

    @field_serializer("catalog", when_used="json")
    def _without_password(self, catalog: str | None) -> str | None:
        # JSON is what leaves the process (flow-run parameters, artifacts, logs): no password.
        return redact_catalog(catalog)

    def open(self) -> Warehouse:
        """The warehouse, its catalog secret (if any) resolved now.

        Raises:
            ConfigError: the named variable or Secret block does not exist.
        """
        return Warehouse(self.path, resolve_secret(self.catalog))


def resolve_secret(value: str | None) -> str | None:
    """`env:VAR` -> the variable's value; `prefect-secret:NAME` -> the Secret block's value.

    >>> resolve_secret("sqlite")
    'sqlite'
    """
    if value and value.startswith("env:"):
        name = value.removeprefix("env:")
        if name not in os.environ:
            raise ConfigError(f"warehouse.catalog names environment variable {name!r}, which "
                              "is not set")
        return os.environ[name]
    if value and value.startswith("prefect-secret:"):
        from prefect.blocks.system import Secret

        name = value.removeprefix("prefect-secret:")
        try:
            return str(Secret.load(name).get())  # type: ignore[union-attr]
        except ValueError as exc:
            raise ConfigError(f"warehouse.catalog names Prefect Secret block {name!r}: "
                              f"{exc}") from exc
    return value


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
    map: MapConfig = MapConfig()
    store: StoreConfig = StoreConfig()
    search: SearchConfig = SearchConfig()
    warehouse: WarehouseConfig = WarehouseConfig()


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `tree[a][b]… = value` for `dotted` = "a.b…" (at least two parts).

    >>> tree = {}; set_dotted(tree, "embed.batch_size", 32); tree
    {'embed': {'batch_size': 32}}
    """
    *parents, leaf = dotted.split(".")
    if not parents or not leaf:
        raise ConfigError(f"config key {dotted!r} needs a section, e.g. 'embed.batch_size'")
    for part in parents:
        child = tree.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key {dotted!r}: {part!r} is a value, not a section")
        tree = child
    tree[leaf] = value


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`, section by section (nested dicts merge; anything else replaces)."""
    out = dict(base)
    for key, value in top.items():
        out[key] = merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Config values from `EMBEDPIPE_*` variables (strings; pydantic converts them)."""
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if name in _ENV_SHORTCUTS:
            set_dotted(tree, _ENV_SHORTCUTS[name], value)
        elif name.startswith("EMBEDPIPE_") and "__" in name:
            section, _, key = name.removeprefix("EMBEDPIPE_").lower().partition("__")
            set_dotted(tree, f"{section}.{key}", value)
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
    tree = merge(tree, env_overrides(environ))
    flags: dict[str, Any] = {}
    for dotted, value in (overrides or {}).items():
        if value is not None:
            set_dotted(flags, dotted, value)
    tree = merge(tree, flags)
    try:
        config = EmbedpipeConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration ({_problems(exc)})") from exc
    if isinstance(config.warehouse.path, str):  # an s3:// URL: nothing to resolve
        return config
    warehouse = config.warehouse.model_copy(update={"path": config.warehouse.path.absolute()})
    return config.model_copy(update={"warehouse": warehouse})


def resolve(config: EmbedpipeConfig | None, overrides: Mapping[str, Any] | None = None
            ) -> EmbedpipeConfig:
    """A flow's effective config: the one passed in, or (None: a served deployment's run) the
    one loaded here and now, from this process's embedpipe.toml and environment; either way with
    `overrides` ("section.key": value) on top.

    Served deployments pass no config: settings (and secrets such as a catalog password) are
    read when the run starts, never frozen into deployment parameters.
    """
    if config is None:
        return load_config(overrides=overrides)
    if not overrides:
        return config
    tree: dict[str, Any] = {}
    for dotted, value in overrides.items():
        set_dotted(tree, dotted, value)
    try:
        return EmbedpipeConfig.model_validate(merge(config.model_dump(), tree))
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration ({_problems(exc)})") from exc
