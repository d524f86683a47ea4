"""Every SQL statement of the warehouse, by name.

Values are bound with `?`. The only things formatted into SQL text are snapshot ids and
dimensions (ints from the versions table, passed through `int()`) and table names from the fixed
set in `schema.py`; user strings never are.
"""

from __future__ import annotations

from typing import Any

import duckdb

from warehouse.schema import TABLES

LAKE_TABLES = "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake'"
ALL_VERSIONS = "SELECT * FROM lake.versions ORDER BY version_id"
MAX_VERSION = """
    SELECT coalesce(max(version_id), 0), coalesce(max(max_chunk_key), 0) FROM lake.versions"""
CURRENT_SNAPSHOT = "SELECT id FROM lake.current_snapshot()"
HEAD_DOCUMENTS = "SELECT doc_id, content_hash, n_tokens, n_unknown FROM lake.documents"
# `ids` and `hashes` are Arrow tables registered on the connection for the statement.
COUNT_HEAD_CHUNKS_OF = "SELECT count(*) FROM lake.chunks WHERE doc_id IN (SELECT doc_id FROM ids)"
KNOWN_HASHES = """
    SELECT DISTINCT e.text_hash FROM lake.embeddings e
    WHERE e.model_fingerprint = ? AND e.text_hash IN (SELECT text_hash FROM hashes)"""
DELETE_DOCUMENTS = "DELETE FROM lake.documents WHERE doc_id IN (SELECT doc_id FROM ids)"
DELETE_CHUNKS = "DELETE FROM lake.chunks WHERE doc_id IN (SELECT doc_id FROM ids)"
INSERT_DOCUMENTS = "INSERT INTO lake.documents BY NAME SELECT * FROM new_documents"
INSERT_CHUNKS = "INSERT INTO lake.chunks BY NAME SELECT * FROM new_chunks"
INSERT_EMBEDDINGS = """
    INSERT INTO lake.embeddings BY NAME
    SELECT n.model_fingerprint, n.text_hash, n.vector, n.dtype, n.codes FROM new_vectors n
    WHERE NOT EXISTS (SELECT 1 FROM lake.embeddings e
                      WHERE e.model_fingerprint = n.model_fingerprint
                        AND e.text_hash = n.text_hash)"""
INSERT_QUARANTINE = """
    INSERT INTO lake.quarantine BY NAME SELECT ? AS version_id, * FROM new_quarantine"""
CHUNKS_WITHOUT_VECTOR = """
    SELECT count(*) FROM lake.chunks c WHERE NOT EXISTS (
        SELECT 1 FROM lake.embeddings e
        WHERE e.model_fingerprint = ? AND e.text_hash = c.text_hash)"""
HEAD_COUNTS = "SELECT (SELECT count(*) FROM lake.documents), (SELECT count(*) FROM lake.chunks)"
INSERT_VERSION = "INSERT INTO lake.versions BY NAME SELECT * FROM new_version"
SET_STATUS = "UPDATE lake.versions SET status = ? WHERE version_id = ?"
SET_LAKE_SNAPSHOT = "UPDATE lake.versions SET lake_snapshot = ? WHERE version_id = ?"
LAST_COMMITTED_SNAPSHOT = "FROM lake.last_committed_snapshot()"  # this connection's last
RETIRE_ACTIVE = "UPDATE lake.versions SET status = 'retired' WHERE status = 'active'"
SET_INDEX_META = "UPDATE lake.versions SET index_meta = ? WHERE version_id = ?"
SET_SUMMARY = "UPDATE lake.versions SET summary = ? WHERE version_id = ?"
SET_GATE = "UPDATE lake.versions SET gate = ? WHERE version_id = ?"
INSERT_METRICS = "INSERT INTO lake.quality_metrics BY NAME SELECT * FROM new_metrics"
# Metrics are replaced one (evaluator, metric) at a time: re-evaluating a version never erases a
# metric that only an earlier evaluation could compute (e.g. overlap with a then-active version).
DELETE_METRICS = """
    DELETE FROM lake.quality_metrics WHERE version_id = ? AND (evaluator, metric) IN (
        SELECT (evaluator, metric) FROM new_metrics)"""
VERSION_METRICS = """
    SELECT evaluator, metric, value, greater_is_better, is_primary, created_at
    FROM lake.quality_metrics WHERE version_id = ? ORDER BY evaluator, metric"""
INSERT_DRIFT = "INSERT INTO lake.drift_metrics BY NAME SELECT * FROM new_drift"
INSERT_RUN = "INSERT INTO lake.runs BY NAME SELECT * FROM new_run"
INSERT_QUERIES = "INSERT INTO lake.queries BY NAME SELECT * FROM new_queries"
COUNT_QUERIES = "SELECT count(*) FROM lake.queries"
# Keep the newest ? rows (ties at the cut by query_id, so exactly ? remain).
TRIM_QUERIES = """
    DELETE FROM lake.queries WHERE query_id NOT IN (
        SELECT query_id FROM lake.queries ORDER BY logged_at DESC, query_id DESC LIMIT ?)"""
RECENT_QUERIES = """
    SELECT logged_at, version_id, origin, mode, k, top_score, latency_ms, text_hash, text
    FROM lake.queries WHERE ? IS NULL OR version_id = ?
    ORDER BY logged_at DESC, query_id DESC LIMIT ?"""
LOGGED_TEXTS = """
    SELECT text FROM (SELECT text, max(logged_at) AS last FROM lake.queries GROUP BY text
                      ORDER BY last DESC LIMIT ?) ORDER BY last"""
INSERT_PROJECTION = "INSERT INTO lake.projections BY NAME SELECT * FROM new_projection"
DELETE_PROJECTION = """
    DELETE FROM lake.projections WHERE version_id = ? AND check_id IS NOT DISTINCT FROM ?"""
PROJECTION = """
    SELECT chunk_key, doc_id, title, snippet, x, y, cluster, method FROM lake.projections
    WHERE version_id = ? AND check_id IS NOT DISTINCT FROM ? ORDER BY chunk_key"""
DRIFT_ALARMS = """
    SELECT check_id, any_value(alarm) AS alarm, max(checked_at) AS checked_at
    FROM lake.drift_metrics WHERE version_id = ? AND kind = ?
    GROUP BY check_id ORDER BY checked_at DESC LIMIT ?"""
LAST_DRIFT_CHECK = """
    SELECT check_id, any_value(version_id) AS version_id, any_value(kind) AS kind,
           any_value(source) AS source, max(checked_at) AS checked_at,
           bool_or(alarm) AS alarm, bool_or(drifted) AS drifted
    FROM lake.drift_metrics GROUP BY check_id ORDER BY max(checked_at) DESC LIMIT 1"""
RECENT_RUNS = """
    SELECT run_id, flow, started_at, finished_at, status, message, version_id, source,
           flow_run_id, summary
    FROM lake.runs WHERE flow = ? ORDER BY finished_at DESC LIMIT ?"""
INSERT_QUERY_REFERENCE = "INSERT INTO lake.query_references BY NAME SELECT * FROM new_reference"
LATEST_QUERY_REFERENCE = """
    SELECT set_id, source, text FROM lake.query_references WHERE set_id = (
        SELECT set_id FROM lake.query_references ORDER BY created_at DESC LIMIT 1)"""
DRIFT_CHECKS_SINCE = """
    SELECT check_id, any_value(kind) AS kind, any_value(source) AS source,
           max(checked_at) AS checked_at, bool_or(alarm) AS alarm, bool_or(drifted) AS drifted
    FROM lake.drift_metrics WHERE checked_at >= ? GROUP BY check_id ORDER BY checked_at"""
VECTOR_SCALE = "SELECT scale FROM lake.vector_scales WHERE model_fingerprint = ? LIMIT 1"
INSERT_SCALE = "INSERT INTO lake.vector_scales VALUES (?, ?)"
SET_PINNED = "UPDATE lake.versions SET pinned = ? WHERE version_id = ?"


# `needed` is a temp table (fp, text_hash) filled by `needed_hashes` for every kept version.
COUNT_UNNEEDED_VECTORS = """
    SELECT count(*) FROM lake.embeddings e WHERE NOT EXISTS (
        SELECT 1 FROM needed n WHERE n.fp = e.model_fingerprint AND n.text_hash = e.text_hash)"""
DELETE_UNNEEDED_VECTORS = """
    DELETE FROM lake.embeddings WHERE NOT EXISTS (
        SELECT 1 FROM needed n
        WHERE n.fp = embeddings.model_fingerprint AND n.text_hash = embeddings.text_hash)"""


def needed_hashes(snapshot: int) -> str:
    """Insert into `needed` the chunk texts of one version; bind its model fingerprint."""
    return (f"INSERT INTO needed SELECT DISTINCT ?, text_hash FROM lake.chunks {_at(snapshot)}")


# Vectors are read from the current `embeddings` table, not at a version's snapshot: rows are
# only ever appended (gc removes rows no kept version uses), and the current schema is the
# newest (a warehouse of an older embedpipe gains `dtype`/`codes` with its next writer; until
# then `coded=False` reads it).


def _codes(coded: bool) -> str:
    return "e.dtype, e.codes" if coded else "NULL::VARCHAR AS dtype, NULL::BLOB AS codes"


EMBEDDING_COLUMNS = """
    SELECT column_name FROM information_schema.columns
    WHERE table_catalog = 'lake' AND table_name = 'embeddings'"""


def _at(snapshot: int) -> str:
    return f"AT (VERSION => {int(snapshot)})"


def versioned_view(table: str, snapshot: int, version_id: int) -> str:
    """A temp view named `table` showing it as of one version."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; valid: {sorted(TABLES)}")
    if table == "quarantine":
        return (f"CREATE TEMP VIEW quarantine AS SELECT * EXCLUDE (version_id) FROM "
                f"lake.quarantine WHERE version_id = {int(version_id)}")
    return f"CREATE TEMP VIEW {table} AS SELECT * FROM lake.{table} {_at(snapshot)}"


def current_view(table: str) -> str:
    """A temp view named `table` showing its current state (not versioned)."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; valid: {sorted(TABLES)}")
    return f"CREATE TEMP VIEW {table} AS SELECT * FROM lake.{table}"


def embeddings_view(snapshot: int, fingerprint: str, dimension: int) -> str:
    fp = fingerprint.replace("'", "''")  # a hex digest from our own versions table
    return f"""
        CREATE TEMP VIEW embeddings AS
        SELECT c.chunk_key, c.chunk_id, c.doc_id, e.model_fingerprint,
               e.vector::FLOAT[{int(dimension)}] AS vector
        FROM lake.chunks c {_at(snapshot)}
        JOIN lake.embeddings e {_at(snapshot)}
          ON e.text_hash = c.text_hash AND e.model_fingerprint = '{fp}'"""


def version_vectors(snapshot: int, coded: bool = True, of_keys: bool = False) -> str:
    """(chunk_key, vector) of a version; bind the model fingerprint, and with `of_keys` the
    list of chunk keys wanted."""
    only = "WHERE list_contains(?, c.chunk_key)" if of_keys else ""
    return f"""
        SELECT c.chunk_key, e.vector, {_codes(coded)}
        FROM lake.chunks c {_at(snapshot)}
        JOIN lake.embeddings e
          ON e.text_hash = c.text_hash AND e.model_fingerprint = ?
        {only}
        ORDER BY c.chunk_key"""


def distinct_vectors(snapshot: int, coded: bool = True) -> str:
    """(text_hash, vector) of each distinct chunk text of a version; bind the fingerprint."""
    return f"""
        SELECT e.text_hash, e.vector, {_codes(coded)} FROM lake.embeddings e
        WHERE e.model_fingerprint = ?
          AND e.text_hash IN (SELECT text_hash FROM lake.chunks {_at(snapshot)})
        ORDER BY e.text_hash"""


def version_chunks(snapshot: int) -> str:
    """Every chunk of a version with its document's title, by chunk key."""
    return f"""
        SELECT c.chunk_key, c.chunk_id, c.doc_id, c.seq, c.text_hash, c.text, c.n_tokens,
               d.title
        FROM lake.chunks c {_at(snapshot)}
        JOIN lake.documents d {_at(snapshot)} USING (doc_id)
        ORDER BY c.chunk_key"""


def version_documents(snapshot: int) -> str:
    """Documents of a version as the cleaner made them."""
    return (f"SELECT doc_id, title, text, content_hash, source, \"row\" "
            f"FROM lake.documents {_at(snapshot)} ORDER BY doc_id")


def reference_chunks(snapshot: int, coded: bool = True) -> str:
    """A seeded sample of one chunk per document, with its vector.

    Bind: seed, model fingerprint, seed, size. `hash` is deterministic, so the same version and
    seed give the same sample, without reading the whole table into Python.
    """
    return f"""
        WITH one AS (
            SELECT c.doc_id, c.text, c.text_hash FROM lake.chunks c {_at(snapshot)}
            QUALIFY row_number() OVER (PARTITION BY c.doc_id
                                       ORDER BY hash(c.chunk_key, ?::BIGINT)) = 1)
        SELECT one.text, e.vector, {_codes(coded)} FROM one
        JOIN lake.embeddings e
          ON e.text_hash = one.text_hash AND e.model_fingerprint = ?
        ORDER BY hash(one.doc_id, ?::BIGINT) LIMIT ?"""


def chunk_spread(snapshot: int) -> str:
    """Share of documents with at least `?` chunks, at a version."""
    return f"""
        SELECT coalesce(avg(CASE WHEN n >= ? THEN 1.0 ELSE 0.0 END), 0) FROM (
            SELECT doc_id, count(*) AS n FROM lake.chunks {_at(snapshot)} GROUP BY doc_id)"""


def text_sample(snapshot: int) -> str:
    """A deterministic sample of `?` document texts (the first 2,000 characters each)."""
    return f"""
        SELECT left(text, 2000) AS text FROM lake.documents {_at(snapshot)}
        ORDER BY hash(doc_id) LIMIT ?"""


def chunks_by_keys(snapshot: int) -> str:
    """Chunk and document fields for a list of chunk keys; bind the key list."""
    return f"""
        SELECT c.chunk_key, c.chunk_id, c.doc_id, c.seq, c.text, c.char_start, c.char_end,
               d.title, d.source
        FROM lake.chunks c {_at(snapshot)}
        JOIN lake.documents d {_at(snapshot)} USING (doc_id)
        WHERE list_contains(?, c.chunk_key)"""


def chunk_map(snapshot: int) -> str:
    return (f"SELECT chunk_key, chunk_id, doc_id, text_hash FROM lake.chunks {_at(snapshot)} "
            "ORDER BY chunk_key")


def documents_state(snapshot: int) -> str:
    return f"SELECT doc_id, content_hash FROM lake.documents {_at(snapshot)}"


def chunks_state(snapshot: int) -> str:
    return f"SELECT chunk_id, text_hash FROM lake.chunks {_at(snapshot)}"


def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None
                ) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
