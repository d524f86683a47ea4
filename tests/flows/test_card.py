"""Every version has a card: lineage, counts, metrics with deltas, gate, drift since, and
limitations derived from its own data."""

from __future__ import annotations

import json
from importlib import metadata

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.config import load_config
from tests.conftest import write_jsonl
from tests.flows.test_versions import text
from warehouse.store import open as open_warehouse

pytestmark = pytest.mark.slow


def test_cards_of_two_versions(prefect_harness, tmp_path):
    from flows.ingest import ingest_corpus

    config = load_config(overrides={"warehouse.path": tmp_path / "wh", "embed.model": "hash"},
                         environ={})
    docs = [{"_id": f"d{i}", "title": f"Doc {i}", "text": text(i)} for i in range(30)]
    docs.append({"_id": "jp", "text": "日本語の文書です。" * 30})  # another writing system
    docs += [{"_id": f"long{j}", "text": " ".join(text(900 + 50 * j + i) for i in range(40))}
             for j in range(2)]
    docs.append({"_id": "bad", "text": ""})  # quarantined
    ingest_corpus(str(write_jsonl(tmp_path / "a.jsonl", docs)), config)
    ingest_corpus(str(write_jsonl(tmp_path / "b.jsonl", docs[:20] + docs[30:])), config)
    result = CliRunner().invoke(app, ["card", "2", "--json", "--warehouse",
                                      str(config.warehouse.path)])
    assert result.exit_code == 0, result.output
    markdown = json.loads(result.output)["markdown"]
    assert markdown.startswith("# Version 2 (active)")
    assert "| parent | 1 |" in markdown and "| backend | hash |" in markdown
    assert "| documents | 23 |" in markdown
    assert "| health | vectors |" in markdown and "bias:weat" in markdown
    assert "## Gate\n\npassed" in markdown
    assert "cjk" in markdown  # the Japanese document, named as a limitation
    assert "cut into 4 or more chunks" in markdown  # the long document
    assert "not measured: retrieval (nDCG@10): no labelled query set" in markdown
    # The runtime that made the vectors (#21): the installed versions, on the card and in
    # `versions --json`, so two versions whose vectors differ can tell why.
    assert f"torch {metadata.version('torch')}" in markdown
    assert f"transformers {metadata.version('transformers')}" in markdown
    listed = CliRunner().invoke(app, ["versions", "--json", "--warehouse",
                                      str(config.warehouse.path)])
    runtime = json.loads(listed.output)[-1]["runtime"]
    for package in ("torch", "onnxruntime", "openvino", "transformers", "sentence-transformers"):
        assert runtime[package] == metadata.version(package), package
    stored = (config.warehouse.path / "cards" / "2.md").read_text()
    assert stored == markdown  # the file the run wrote is what the command prints
    wh = open_warehouse(config.warehouse.path)
    assert wh.version(1).status == "retired"
