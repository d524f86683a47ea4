"""Config precedence: file < environment < flags; bad values are named."""

from __future__ import annotations

import pytest

from flows.config import ConfigError, load_config


def test_precedence_file_env_flags(tmp_path):
    toml = tmp_path / "embedpipe.toml"
    toml.write_text('[embed]\nbatch_size = 8\n[chunk]\nmax_tokens = 128\n'
                    f'[warehouse]\npath = "{tmp_path / "from-file"}"\n')
    env = {"EMBEDPIPE_EMBED__BATCH_SIZE": "16", "EMBEDPIPE_WAREHOUSE": str(tmp_path / "env")}
    cfg = load_config(toml, {"embed.batch_size": 32}, environ=env)
    assert cfg.embed.batch_size == 32          # flag beats env beats file
    assert cfg.chunk.max_tokens == 128         # only in the file
    assert cfg.warehouse.path == tmp_path / "env"
    assert load_config(toml, {}, environ=env).embed.batch_size == 16


def test_defaults_without_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(environ={})
    assert cfg.warehouse.path == tmp_path / ".embedpipe" / "warehouse"
    assert (cfg.embed.model, cfg.chunk.max_tokens) == ("all-MiniLM-L6-v2", 256)


@pytest.mark.parametrize(("overrides", "environ", "message"), [
    ({"embed.batch_size": 0}, {}, "embed.batch_size"),
    ({"embed.colour": "red"}, {}, "embed.colour"),
    ({}, {"EMBEDPIPE_CHUNK__MAX_TOKENS": "lots"}, "chunk.max_tokens"),
    ({"nosection": 1}, {}, "needs a section"),
])
def test_invalid_values_are_named(overrides, environ, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides, environ=environ)


def test_config_is_frozen():
    cfg = load_config(environ={})
    with pytest.raises(ValueError):
        cfg.embed.batch_size = 3  # type: ignore[misc]
