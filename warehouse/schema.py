"""Lake tables: DDL for the DuckLake catalog. Columns mirror
`tasks/prep/schema.py` (checked by a test).

`documents` and `chunks` hold the latest published state; each version is a DuckLake snapshot of
them, read back with `AT (VERSION => snapshot)`. `embeddings` is append-only and keyed by
(model_fingerprint, text_hash): the reuse cache from which every version's vectors are joined.
"""

import pyarrow as pa

# Tables writers append Arrow rows to: the columns are named once, here, and the DDL is derived.
METRICS_ROWS = pa.schema([
    ("version_id", pa.int64()), ("evaluator", pa.string()), ("metric", pa.string()),
    ("value", pa.float64()), ("greater_is_better", pa.bool_()), ("is_primary", pa.bool_()),
    ("created_at", pa.timestamp("us")),
])
DRIFT_ROWS = pa.schema([
    ("check_id", pa.string()), ("version_id", pa.int64()), ("checked_at", pa.timestamp("us")),
    ("kind", pa.string()), ("source", pa.string()), ("n_reference", pa.int64()),
    ("n_current", pa.int64()), ("metric", pa.string()), ("value", pa.float64()),
    ("alarm", pa.bool_()), ("drifted", pa.bool_()),
    ("threshold", pa.float64()),  # the value past which this statistic alarms (NULL: none)
    ("rule", pa.string()),  # the decision rule of the check, e.g. "mmd_and_auc, 2 of 3"
])
# One row per flow run, published or not (an unchanged ingest publishes no version).
RUNS_ROWS = pa.schema([
    ("run_id", pa.string()), ("flow", pa.string()), ("started_at", pa.timestamp("us")),
    ("finished_at", pa.timestamp("us")), ("status", pa.string()), ("message", pa.string()),
    ("version_id", pa.int64()), ("source", pa.string()), ("flow_run_id", pa.string()),
    ("summary", pa.string()),
])
# The reference of query drift: a sample of an earlier query log (the newest set_id is in use).
QUERY_REFERENCE_ROWS = pa.schema([
    ("set_id", pa.string()), ("created_at", pa.timestamp("us")), ("source", pa.string()),
    ("text", pa.string()),
])
# The query log (`warehouse/query_log.py`): one row per logged search, oldest dropped first.
QUERY_ROWS = pa.schema([
    ("query_id", pa.string()), ("text_hash", pa.string()), ("text", pa.string()),
    ("logged_at", pa.timestamp("us")), ("version_id", pa.int64()), ("mode", pa.string()),
    ("k", pa.int64()), ("top_score", pa.float64()), ("latency_ms", pa.float64()),
    ("origin", pa.string()),  # cli | dashboard | library
])
# 2-D map of a version: a sample of its chunks (check_id NULL), and each drift check's sample
# placed into the same plane (check_id set).
PROJECTION_ROWS = pa.schema([
    ("version_id", pa.int64()), ("check_id", pa.string()), ("chunk_key", pa.int64()),
    ("doc_id", pa.string()), ("title", pa.string()), ("snippet", pa.string()),
    ("x", pa.float64()), ("y", pa.float64()), ("cluster", pa.int64()), ("method", pa.string()),
])

_DUCKDB_TYPES = {pa.int64(): "BIGINT", pa.string(): "VARCHAR", pa.float64(): "DOUBLE",
                 pa.bool_(): "BOOLEAN", pa.timestamp("us"): "TIMESTAMP", pa.int32(): "INTEGER"}


def ddl(schema: pa.Schema) -> str:
    """The column list of a CREATE TABLE for an Arrow schema (quoted names, DuckDB types)."""
    return ", ".join(f'"{f.name}" {_DUCKDB_TYPES[f.type]}' for f in schema)


TABLES: dict[str, str] = {
    "documents": """
        doc_id VARCHAR, title VARCHAR, text VARCHAR, content_hash VARCHAR, source VARCHAR,
        "row" BIGINT, n_tokens BIGINT, n_unknown BIGINT""",
    "chunks": """
        chunk_key BIGINT, chunk_id VARCHAR, doc_id VARCHAR, seq INTEGER, text VARCHAR,
        text_hash VARCHAR, char_start BIGINT, char_end BIGINT, n_tokens INTEGER""",
    # `vector` holds float32 vectors; float16/int8 storage (store.vector_dtype) puts them in
    # `codes` instead, int8 with the per-dimension scale of its model in `vector_scales`.
    "embeddings": """
        model_fingerprint VARCHAR, text_hash VARCHAR, vector FLOAT[], dtype VARCHAR,
        codes BLOB""",
    "vector_scales": """
        model_fingerprint VARCHAR, scale FLOAT[]""",
    "quarantine": """
        version_id BIGINT, source VARCHAR, "row" BIGINT, doc_id VARCHAR, reason VARCHAR,
        detail VARCHAR, twin_doc_id VARCHAR""",
    "versions": """
        version_id BIGINT, parent_id BIGINT, status VARCHAR, pinned BOOLEAN,
        model_name VARCHAR, model_location VARCHAR, model_fingerprint VARCHAR, dimension INTEGER,
        chunker_config VARCHAR, corpus_fingerprint VARCHAR, lake_snapshot BIGINT,
        n_documents BIGINT, n_chunks BIGINT, n_embedded BIGINT, n_reused BIGINT,
        n_quarantined BIGINT, max_chunk_key BIGINT, created_at TIMESTAMP, message VARCHAR,
        summary VARCHAR, index_meta VARCHAR, gate VARCHAR, model_backend VARCHAR,
        source_fingerprint VARCHAR, runtime VARCHAR""",
    "quality_metrics": ddl(METRICS_ROWS),
    "drift_metrics": ddl(DRIFT_ROWS),
    "runs": ddl(RUNS_ROWS),
    "projections": ddl(PROJECTION_ROWS),
    "query_references": ddl(QUERY_REFERENCE_ROWS),
    "queries": ddl(QUERY_ROWS),
}

VERSION_STATUSES = ("candidate", "active", "rejected", "retired", "expired")

# Views a `sql` session gets, resolved at one version's snapshot.
VERSIONED_TABLES = ("documents", "chunks", "quarantine")
UNVERSIONED_VIEWS = ("versions", "quality_metrics", "drift_metrics", "runs", "projections",
                     "queries")
