"""The SQL-escape suite: user SQL reads one version's views and nothing else.

Every statement below was (or could have been) a way out of `embedpipe sql`: reading files,
writing files, re-attaching the catalog writable, running several statements, changing the
configuration, calling DuckLake maintenance. Each is refused with a one-line error, and the
warehouse's files hash the same afterwards. Found by hostile use: `ATTACH … AS rw; DELETE FROM
rw.chunks; CALL ducklake_expire_snapshots(…)` deleted the active version's data.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.warehouse.test_writer import docs, publish
from warehouse.errors import QueryRefused, WarehouseError
from warehouse.store import Warehouse

EMBEDPIPE = str(Path(sys.executable).parent / "embedpipe")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Warehouse:
    wh = Warehouse(tmp_path_factory.mktemp("sandbox") / "wh")
    publish(wh, docs("a", "b", "c"), [])
    publish(wh, docs("b", "d", version="2"), ["b", "c"])  # version 2: a, b (edited), d
    return wh


def fingerprint(wh: Warehouse) -> dict[str, str]:
    """sha256 of every file of the warehouse (SQLite's transient -shm/-wal excluded)."""
    return {str(p.relative_to(wh.path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(wh.path.rglob("*")) if p.is_file()
            and not p.name.endswith(("-shm", "-wal"))}


def escapes(wh: Warehouse) -> list[str]:
    root = wh.path.resolve()
    catalog, data = root / "catalog.sqlite", root / "data"
    attach_rw = (f"ATTACH 'ducklake:sqlite:{catalog}' AS rw (DATA_PATH '{data}/', "
                 "OVERRIDE_DATA_PATH true)")
    return [
        # reading files and the catalog
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_csv_auto('/etc/hostname')",
        f"SELECT count(*) FROM read_blob('{catalog}')",
        "SELECT * FROM glob('/etc/*')",
        f"SELECT count(*) FROM read_parquet('{data}/**/*.parquet')",
        f"SELECT * FROM '{catalog}'",
        "SELECT * FROM '/etc/passwd'",
        f"SELECT * FROM sqlite_scan('{catalog}', 'ducklake_snapshot')",
        "SELECT * FROM query('SELECT 1')",
        "SELECT * FROM query_table('documents')",
        "SELECT * FROM ducklake_snapshots('lake')",
        "SELECT * FROM documents, read_text('/etc/passwd')",
        "SELECT (SELECT content FROM read_text('/etc/passwd')) AS x",
        "WITH x AS (SELECT * FROM read_text('/etc/passwd')) SELECT * FROM x",
        "SELECT * FROM (FROM read_text('/etc/passwd'))",
        "SELECT * FROM 'http://127.0.0.1:9/x.csv'",
        # the lake behind the views: other versions, raw tables
        "SELECT * FROM lake.chunks",
        "SELECT * FROM lake.main.documents",
        "SELECT * FROM documents AT (VERSION => 1)",
        "DESCRIBE lake.chunks",
        "SUMMARIZE lake.documents",
        # writing files, attaching, several statements
        "COPY chunks TO '/tmp/embedpipe-escape.csv'",
        "COPY documents FROM '/etc/passwd'",
        "ATTACH '/tmp/embedpipe-escape.db' AS x",
        attach_rw,
        f"{attach_rw}; DELETE FROM rw.chunks; "
        "CALL ducklake_expire_snapshots('rw', older_than => now())",
        "DETACH lake",
        "SELECT 1; DROP VIEW chunks; SELECT 3",
        "SELECT 1; SELECT 2",
        "EXPORT DATABASE '/tmp/embedpipe-escape'",
        # changing state and configuration
        "DROP VIEW chunks",
        "CREATE TABLE t AS SELECT 1",
        "CREATE MACRO m() AS 1",
        "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')",
        "INSERT INTO documents (doc_id) VALUES ('x')",
        "UPDATE versions SET status = 'active'",
        "DELETE FROM chunks",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "RESET lock_configuration",
        "PRAGMA version",
        "CALL ducklake_expire_snapshots('lake', older_than => now())",
        "CHECKPOINT",
        "VACUUM",
        "BEGIN TRANSACTION",
        "PREPARE p AS SELECT 1",
        "USE lake",
        "EXPLAIN SELECT 1",
        "",
        "   ",
        "SELEC 1",
    ]


def test_every_escape_is_refused_and_nothing_changes(warehouse):
    before = fingerprint(warehouse)
    for statement in escapes(warehouse):
        with warehouse.sandbox() as session, pytest.raises(WarehouseError) as refused:
            session.query(statement)
        assert "\n" not in str(refused.value).strip(), statement
    assert fingerprint(warehouse) == before
    assert not Path("/tmp/embedpipe-escape.csv").exists()
    assert not Path("/tmp/embedpipe-escape.db").exists()


@pytest.mark.parametrize("statement", ["SELECT * FROM read_text('/etc/passwd')",
                                       "SELECT 1; DROP VIEW chunks; SELECT 3",
                                       "COPY chunks TO '/tmp/embedpipe-escape.csv'"])
def test_the_cli_refuses_with_one_line_and_exit_2(warehouse, statement):
    before = fingerprint(warehouse)
    done = subprocess.run([EMBEDPIPE, "sql", statement, "--warehouse", str(warehouse.path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "root:" not in done.stdout + done.stderr
    assert fingerprint(warehouse) == before


def test_reading_the_views_still_works(warehouse):
    with warehouse.sandbox() as session:
        assert session.query("SELECT count(*) FROM documents").rows == [(3,)]
        ids = session.query("WITH d AS (SELECT doc_id FROM documents) "
                            "SELECT list(doc_id ORDER BY doc_id) FROM d").rows[0][0]
        assert ids == ["a", "b", "d"]
        assert session.query("SELECT count(*) FROM range(5)").rows == [(5,)]
        assert session.query("DESCRIBE chunks").rows[0][0] == "chunk_key"
        joined = session.query("SELECT count(*) FROM embeddings JOIN chunks USING (chunk_id)")
        assert joined.rows == [(3,)]
    with warehouse.sandbox(version=1) as session:  # another version: pick it, don't time-travel
        assert session.query("SELECT count(*) FROM documents").rows == [(3,)]
        text = session.query("SELECT text FROM documents WHERE doc_id = 'b'").rows[0][0]
        assert text == "text of b v1"


def test_a_runaway_query_is_stopped(warehouse):
    with warehouse.sandbox() as session, pytest.raises(WarehouseError, match="stopped after"):
        session.query("SELECT count(*) FROM range(100000000000) a, range(10) b", timeout=0.5)


def test_refusals_name_what_was_refused(warehouse):
    with warehouse.sandbox() as session:
        for statement, reason in [
            ("SELECT * FROM read_text('/etc/passwd')", "table function read_text()"),
            ("SELECT 1; SELECT 2", "one statement at a time"),
            ("COPY chunks TO 'x'", "only SELECT is allowed here, not COPY"),
            ("SELECT * FROM lake.chunks", "table 'lake.chunks' is not readable here"),
        ]:
            with pytest.raises(QueryRefused, match=reason.replace("(", r"\(").replace(
                    ")", r"\)")):
                session.query(statement)
