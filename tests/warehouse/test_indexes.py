"""Index files: written whole, and refused when they belong to another version."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from warehouse import indexes
from warehouse.errors import IndexMismatch
from warehouse.store import Version, Warehouse


def version(version_id: int = 3, snapshot: int = 7, count: int = 2) -> Version:
    return Version.from_row({"version_id": version_id, "status": "candidate",
                             "model_fingerprint": "fp", "lake_snapshot": snapshot,
                             "n_chunks": count, "dimension": 4})


def test_saved_index_refuses_another_version(tmp_path):
    wh = Warehouse(tmp_path)
    rows = pa.table({"label": [0, 1], "chunk_key": [10, 11]})
    directory = indexes.save(wh, version(), lambda d: (d / "index.bin").write_bytes(b"x"), rows,
                             {"backend": "hnswlib", "ef": 32})
    assert directory == wh.index_dir(3) and not directory.with_name("3.tmp").exists()
    found, meta = indexes.checked(wh, version())
    assert found == directory and meta["ef"] == 32
    assert indexes.read_rows(directory)["chunk_key"].to_pylist() == [10, 11]
    with pytest.raises(IndexMismatch, match="lake_snapshot: index has 7, version has 8"):
        indexes.checked(wh, version(snapshot=8))
    with pytest.raises(IndexMismatch, match="has no index .*embedpipe index --version 4"):
        indexes.checked(wh, version(version_id=4))
    meta_path = directory / indexes.META
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "format": 1}))
    with pytest.raises(IndexMismatch, match="format: index has 1"):
        indexes.checked(wh, version())
