"""Maintenance on both catalogs: diff, pin, gc deleting files, readers beside a writer."""

from __future__ import annotations

import pytest

from tests.warehouse.test_writer import doc_ids, docs, publish
from warehouse.errors import VersionNotFound
from warehouse.maintenance import collect_garbage, diff_versions
from warehouse.store import Warehouse
from warehouse.writer import open_writer


def parquet_files(wh: Warehouse) -> set[str]:
    return {str(p) for p in (wh.path / "data").rglob("*.parquet")}


def test_diff_between_versions(tmp_path, catalog):
    wh = Warehouse(tmp_path, catalog)
    publish(wh, docs("a", "b", "c"), [])
    publish(wh, docs("b", "d", version="2"), ["b", "c"])
    result = diff_versions(wh, 1, 2)
    assert result.documents == {"added": ["d"], "changed": ["b"], "deleted": ["c"]}
    assert result.chunks == {"added": ["d#0"], "removed": ["c#0"], "changed": ["b#0"]}
    assert not result.model_changed


def test_gc_expires_unpinned_old_versions_and_their_files(tmp_path, catalog):
    wh = Warehouse(tmp_path, catalog)
    for i in range(1, 5):  # each version replaces every document: old files become garbage
        publish(wh, docs("a", "b", version=str(i)), [] if i == 1 else ["a", "b"])
    for v in wh.versions():
        wh.index_dir(v.version_id).mkdir(parents=True)
    with open_writer(wh) as writer:
        writer.set_pinned(1, True)
    before = parquet_files(wh)
    with open_writer(wh) as writer:
        assert collect_garbage(writer, keep=1) == [2, 3]
        assert collect_garbage(writer, keep=1) == []  # idempotent
    statuses = {v.version_id: v.status for v in wh.versions()}
    assert statuses == {1: "retired", 2: "expired", 3: "expired", 4: "active"}
    assert len(parquet_files(wh)) < len(before)
    assert not wh.index_dir(2).exists() and wh.index_dir(1).exists()
    # the pinned and the active versions are still readable at their own snapshots
    assert doc_ids(wh, 1) == ["a", "b"] and doc_ids(wh, 4) == ["a", "b"]
    con = wh.connect(1)
    assert con.execute("SELECT text FROM documents WHERE doc_id = 'a'").fetchone()[0] == \
        "text of a v1"


def test_reader_sees_last_commit_while_a_write_is_open(tmp_path, catalog):
    wh = Warehouse(tmp_path, catalog)
    publish(wh, docs("a"), [])
    with open_writer(wh) as writer:
        writer.con.execute("BEGIN")
        writer.con.execute("DELETE FROM lake.documents")
        assert doc_ids(wh) == ["a"]  # uncommitted delete is invisible to a reader
        writer.con.execute("ROLLBACK")
    assert doc_ids(wh) == ["a"]


def test_unknown_version(tmp_path, catalog):
    wh = Warehouse(tmp_path, catalog)
    publish(wh, docs("a"), [])
    with pytest.raises(VersionNotFound, match="version 9 is not in"), open_writer(wh) as writer:
        writer.set_pinned(9, True)


def test_gc_merges_the_small_files_of_appends_and_every_version_reads_the_same(tmp_path,
                                                                               catalog):
    """A served warehouse wrote a Parquet file per run record, drift check and map: 349 files
    after 34 minutes of the soak, and nothing merged them."""
    from datetime import datetime

    from warehouse.maintenance import gc

    wh = Warehouse(tmp_path, catalog)
    for i in range(1, 4):
        publish(wh, docs("a", "b", f"c{i}", version=str(i)), ["c" + str(i - 1)] if i > 1 else [])
    with open_writer(wh, lock=False) as writer:
        for i in range(20):  # twenty served runs, a file each
            writer.record_run({"run_id": f"r{i}", "flow": "monitor", "status": "no drift",
                               "started_at": datetime(2026, 1, 1), "message": "m",
                               "finished_at": datetime(2026, 1, 1), "version_id": 3,
                               "source": "s", "flow_run_id": None, "summary": "{}"})
    before = {v: doc_ids(wh, v) for v in (1, 2, 3)}
    files = len(parquet_files(wh))
    with open_writer(wh) as writer:
        gc(writer, keep=5)
    assert len(parquet_files(wh)) < files - 15
    assert {v: doc_ids(wh, v) for v in (1, 2, 3)} == before  # time travel intact
    con = wh.connect()
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 20
