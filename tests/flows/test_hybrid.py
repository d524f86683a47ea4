"""Search by meaning, by words, and both: the modes agree with what each is for."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.config import load_config
from tests.conftest import TOPIC_DOCS, write_jsonl
from warehouse.store import open as open_warehouse

pytestmark = pytest.mark.slow


def test_search_modes(prefect_harness, tmp_path, real_embedder):
    from flows.ingest import ingest_corpus
    from flows.search import search

    config = load_config(overrides={"warehouse.path": tmp_path / "wh"}, environ={})
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"_id": i, "title": t, "text": x}
                                                for i, t, x in TOPIC_DOCS])
    ingest_corpus(str(corpus), config)
    wh = open_warehouse(config.warehouse.path)
    # Words only: an exact rare term finds its document.
    assert search(wh, "c5 Sicilian", k=1, mode="bm25")[0].doc_id == "chess"
    # Meaning only: no shared word with the tides document.
    assert search(wh, "Why does the ocean go up and down twice daily?", k=1,
                  mode="vector")[0].doc_id == "tides"
    hybrid = search(wh, "magma eruption", k=3, mode="hybrid", embedder=real_embedder)
    assert hybrid[0].doc_id == "volcano" and [h.rank for h in hybrid] == [1, 2, 3]
    result = CliRunner().invoke(app, ["search", "chloroplasts glucose", "--mode", "bm25",
                                      "--json", "--warehouse", str(config.warehouse.path)])
    assert result.exit_code == 0, result.output
    assert '"doc_id": "photosynthesis"' in result.output.splitlines()[0]
