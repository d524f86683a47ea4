"""A version embedded with each exported backend is searchable, evaluable and monitorable, and
is read back with the backend it was made with (its fingerprint names the backend)."""

from __future__ import annotations

import pytest

from flows.config import load_config
from tests.conftest import TOPIC_DOCS, write_jsonl
from tests.flows.test_monitor_retrain import cooking_notes
from warehouse.store import open as open_warehouse

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8", "openvino"])
def test_a_version_of_each_backend_works_end_to_end(prefect_harness, tmp_path, backend,
                                                    real_embedder):
    from flows.evaluate import evaluate_version
    from flows.ingest import ingest_corpus
    from flows.monitor import monitor_drift
    from flows.search import search

    config = load_config(overrides={"warehouse.path": tmp_path / "wh", "embed.backend": backend,
                                    "drift.permutations": 100, "drift.reference_size": 20,
                                    "drift.current_size": 20}, environ={})
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"_id": i, "title": t, "text": x}
                                                for i, t, x in TOPIC_DOCS] * 1)
    summary = ingest_corpus(str(corpus), config)
    assert summary.status == "published"
    wh = open_warehouse(config.warehouse.path)
    version = wh.version()
    assert version.model_backend == backend
    assert version.model_fingerprint != real_embedder.fingerprint  # never mixed with torch
    hits = search(wh, "Why do sea levels rise and fall twice a day?", k=3)
    assert hits[0].doc_id == "tides"
    rows = evaluate_version(config)
    assert any(r["metric"] == "ann_recall@10" for r in rows)
    report = monitor_drift(config, str(write_jsonl(tmp_path / "d.jsonl", cooking_notes(30))))
    assert report.n_current == 20 and "mmd_p_value" in report.statistics
