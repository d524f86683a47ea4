"""The ingest flow end to end with the real model, on a small corpus, inside Prefect."""

from __future__ import annotations

import numpy as np
import pytest

from flows.config import load_config
from flows.search import search
from tests.conftest import TOPIC_DOCS
from warehouse.store import open as open_warehouse

pytestmark = pytest.mark.slow


@pytest.fixture()
def config(tmp_path):
    return load_config(overrides={"warehouse.path": tmp_path / "wh"}, environ={})


def test_ingest_topic_corpus(prefect_harness, topic_corpus, config, real_embedder):
    from flows.ingest import ingest_corpus

    summary = ingest_corpus(str(topic_corpus), config)
    # 13 input rows: 10 kept, 1 exact duplicate, 1 empty, 1 broken JSON line.
    assert (summary.input_documents, summary.kept, summary.exact_duplicates,
            summary.quarantined) == (13, 10, 1, 2)
    assert summary.quarantined_by_reason == {"bad_record": 1, "empty": 1}
    assert summary.accounted
    assert summary.status == "published" and summary.version_id == 1
    assert summary.vectors_embedded == summary.chunks == 10

    wh = open_warehouse(config.warehouse.path)
    version = wh.version()
    assert (version.version_id, version.status, version.n_documents) == (1, "active", 10)
    keys, vectors = wh.vectors(version)
    assert vectors.shape == (10, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    con = wh.connect()
    ids = sorted(r[0] for r in con.execute("SELECT doc_id FROM documents").fetchall())
    assert ids == sorted(d[0] for d in TOPIC_DOCS)
    quarantine = con.execute("SELECT source, \"row\", reason, twin_doc_id FROM quarantine "
                             "ORDER BY \"row\"").fetchall()
    assert quarantine == [("corpus.jsonl", 11, "exact_duplicate", "espresso"),
                          ("corpus.jsonl", 12, "empty", None),
                          ("corpus.jsonl", 13, "bad_record", None)]

    hits = search(wh, "Why do sea levels rise and fall twice a day?", k=3,
                  embedder=real_embedder)
    assert hits[0].doc_id == "tides"
    assert [h.rank for h in hits] == [1, 2, 3] and hits[0].score > hits[1].score

    again = ingest_corpus(str(topic_corpus), config)
    assert again.status == "unchanged" and again.version_id == 1
    assert len(wh.versions()) == 1
