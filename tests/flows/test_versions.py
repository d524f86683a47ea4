"""Versions through the real ingest flow: reuse of vectors, time travel, diff, rollback, models.

Uses the deterministic hash model where only plumbing is under test (fast, and its fingerprint
differs from the real model's), and the real model where a model change is the point.
"""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.config import load_config
from tests.conftest import write_jsonl
from warehouse.store import open as open_warehouse

pytestmark = pytest.mark.slow
VOCAB = [f"{a}{b}" for a in ("ka", "lo", "mi", "ne", "su", "ta", "vo", "zu")
         for b in ("ber", "dal", "fen", "gor", "hil", "jun", "kas", "lim", "mor", "nix")]


def text(seed: int, words: int = 30) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(words)) + "."


def corpus_a() -> dict[str, str]:
    return {f"doc{i:02d}": text(i) for i in range(20)}


def write(path, docs: dict[str, str]):
    return write_jsonl(path, [{"_id": k, "title": k, "text": v} for k, v in docs.items()])


@pytest.fixture()
def cfg(tmp_path):
    return load_config(overrides={"warehouse.path": tmp_path / "wh", "embed.model": "hash"},
                       environ={})


def cli(cfg, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--warehouse", str(cfg.warehouse.path)])
    assert result.exit_code == 0, result.output
    return result.output


def test_edit_delete_add_reembeds_only_what_changed(prefect_harness, tmp_path, cfg):
    from flows.ingest import ingest_corpus

    a = corpus_a()
    v1 = ingest_corpus(str(write(tmp_path / "a.jsonl", a)), cfg)
    assert (v1.version_id, v1.vectors_embedded, v1.chunks) == (1, 20, 20)

    b = dict(a)
    for doc_id in ("doc01", "doc02", "doc03"):
        b[doc_id] = text(100 + int(doc_id[3:]))  # edited
    del b["doc18"], b["doc19"]  # deleted
    for i in range(4):
        b[f"new{i}"] = text(200 + i)  # added
    v2 = ingest_corpus(str(write(tmp_path / "b.jsonl", b)), cfg)
    # exactly the 7 edited/new documents' chunks (one each) were embedded
    assert (v2.version_id, v2.vectors_embedded, v2.vectors_reused) == (2, 7, 15)
    assert (v2.documents_added, v2.documents_changed, v2.documents_deleted,
            v2.documents_unchanged) == (4, 3, 2, 15)

    wh = open_warehouse(cfg.warehouse.path)
    assert wh.version(1).n_documents == 20 and wh.version(2).n_documents == 22
    con = wh.connect(2)
    assert con.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 22
    assert con.execute("SELECT count(*) FROM lake.embeddings").fetchone()[0] == 27  # 20 + 7

    # v1 still holds the deleted documents; v2 does not
    old = [json.loads(line) for line in cli(cfg, "search", a["doc19"], "--version", "1", "-k",
                                            "1", "--json").splitlines()]
    assert old[0]["doc_id"] == "doc19" and old[0]["version_id"] == 1
    new = json.loads(cli(cfg, "search", a["doc19"], "-k", "1", "--json").splitlines()[0])
    assert new["doc_id"] != "doc19" and new["version_id"] == 2

    diff = json.loads(cli(cfg, "diff", "1", "2", "--json"))
    assert diff["documents"] == {"added": ["new0", "new1", "new2", "new3"],
                                 "changed": ["doc01", "doc02", "doc03"],
                                 "deleted": ["doc18", "doc19"]}

    cli(cfg, "rollback", "1")
    assert wh.version().version_id == 1
    back = json.loads(cli(cfg, "search", a["doc19"], "-k", "1", "--json").splitlines()[0])
    assert (back["doc_id"], back["version_id"]) == ("doc19", 1)
    versions = json.loads(cli(cfg, "versions", "--json"))
    assert [(v["version_id"], v["status"]) for v in versions] == [(1, "active"), (2, "retired")]

    sql = cli(cfg, "sql", "SELECT count(*) - count(DISTINCT chunk_id) AS dupes FROM chunks",
              "--version", "2", "--format", "csv")
    assert sql.split() == ["dupes", "0"]


def test_identical_reingest_embeds_nothing(prefect_harness, tmp_path, cfg):
    from flows.ingest import ingest_corpus

    path = write(tmp_path / "a.jsonl", corpus_a())
    first = ingest_corpus(str(path), cfg)
    again = ingest_corpus(str(path), cfg)
    assert (again.status, again.version_id, again.vectors_embedded) == ("unchanged", 1, 0)
    # The same bytes with the same settings: known unchanged without reading the source, and
    # the run still accounts for every input row, as the first run counted them.
    assert "read" in first.stage_seconds and "read" not in again.stage_seconds
    counts = ("input_documents", "kept", "exact_duplicates", "quarantined", "problems")
    assert [getattr(again, c) for c in counts] == [getattr(first, c) for c in counts]
    # Other bytes for the same documents (keys reordered) are read, and found unchanged.
    path.write_text("".join(json.dumps(dict(reversed(json.loads(line).items()))) + "\n"
                            for line in path.read_text().splitlines()))
    reread = ingest_corpus(str(path), cfg)
    assert (reread.status, reread.version_id) == ("unchanged", 1) and "read" in reread.stage_seconds
    plan = json.loads(cli(cfg, "plan", str(path), "--model", "hash", "--json"))
    assert plan["noop"] and plan["chunks_to_embed"] == 0 and plan["chunks_reused"] == 20
    # Other cleaning settings are read again too (they could change what is kept).
    stricter = cfg.model_copy(update={"clean": cfg.clean.model_copy(update={"min_chars": 21})})
    assert "read" in ingest_corpus(str(path), stricter).stage_seconds


def test_edit_inside_a_long_document_reembeds_only_changed_chunks(prefect_harness, tmp_path,
                                                                   cfg):
    from flows.ingest import ingest_corpus

    cfg = cfg.model_copy(update={"chunk": cfg.chunk.model_copy(update={"overlap_tokens": 0,
                                                                       "max_tokens": 64})})
    sentences = [text(300 + i, 12) for i in range(40)]
    long_doc = {"long": " ".join(sentences)}
    first = ingest_corpus(str(write(tmp_path / "a.jsonl", long_doc)), cfg)
    sentences[-1] = text(999, 12)  # edit the last sentence only
    second = ingest_corpus(str(write(tmp_path / "b.jsonl", {"long": " ".join(sentences)})), cfg)
    assert first.chunks > 4
    assert second.documents_changed == 1
    assert 1 <= second.vectors_embedded < first.chunks / 2  # only the tail chunk(s)


def test_a_model_change_reembeds_everything(prefect_harness, tmp_path, cfg):
    from flows.ingest import ingest_corpus

    path = write(tmp_path / "a.jsonl", corpus_a())
    ingest_corpus(str(path), cfg)
    real = cfg.model_copy(update={"embed": cfg.embed.model_copy(update={"model":
                                                                        "all-MiniLM-L6-v2"})})
    changed = ingest_corpus(str(path), real)
    assert (changed.status, changed.vectors_embedded, changed.vectors_reused) == \
        ("published", 20, 0)
    wh = open_warehouse(cfg.warehouse.path)
    v1, v2 = wh.version(1), wh.version(2)
    assert v1.model_fingerprint != v2.model_fingerprint and v2.dimension == 384
    assert wh.vectors(v1)[1].shape == (20, 64) and wh.vectors(v2)[1].shape == (20, 384)
