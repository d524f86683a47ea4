"""BM25 over chunk text (DuckDB's full-text-search extension), and fusing rankings.

Input: a version's chunk keys and texts (to build), then query texts (to search). Output: a
DuckDB file beside the version's ANN index holding the chunks and their FTS index (built once
per version, opened read-only per search), chunk keys ranked by BM25, and `reciprocal_rank_fusion`
of several document rankings. The extension loads from its PyPI package by file path; nothing
is downloaded.

Why fuse: on SciFact, BM25 alone (nDCG@10 ≈ 0.665 in the BEIR paper) and all-MiniLM-L6-v2
(≈ 0.645) make different mistakes; reciprocal rank fusion (Cormack et al., 2009) is the standard
way past both, with one constant `k` (60 in the paper) that damps the weight of top ranks.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from tasks.index.fusion import reciprocal_rank_fusion

__all__ = ["Bm25", "build", "extension", "reciprocal_rank_fusion"]

FILE = "bm25.duckdb"
_BUILD_MEMORY = "1GB"
_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False, "autoload_known_extensions": False}
_MATCH = """
    SELECT chunk_key, fts_main_chunks.match_bm25(chunk_key, ?) AS score FROM chunks
    WHERE score IS NOT NULL ORDER BY score DESC, chunk_key LIMIT ?"""


def extension() -> str:
    """The LOAD statement of the FTS extension from its package (a quoted file path)."""
    import importlib.util

    spec = importlib.util.find_spec("duckdb_extension_fts")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("duckdb-extension-fts is not installed; run `make install`")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "extensions" / f"v{duckdb.__version__}" / "fts.duckdb_extension"
    return "LOAD '" + str(path).replace("'", "''") + "'"


def build(directory: Path, keys: np.ndarray, texts: Any) -> Path:
    """Write the BM25 index of these chunks to `directory/bm25.duckdb` (Porter stemming,
    English stop words, lower-cased, accents stripped). `texts`: a list or an Arrow column.

    DuckDB builds it within `_BUILD_MEMORY`, spilling to a temporary directory beside the file
    beyond that, so a large version's index does not take the machine's memory."""
    import pyarrow as pa

    path = directory / FILE
    path.unlink(missing_ok=True)
    spill = directory / ".bm25-spill"
    con = duckdb.connect(str(path), config={**_CONFIG, "memory_limit": _BUILD_MEMORY,
                                            "temp_directory": str(spill)})
    if not isinstance(texts, pa.Array | pa.ChunkedArray):
        texts = pa.array(texts, pa.string())
    try:
        con.execute(extension())
        con.register("new_chunks", pa.table({"chunk_key": pa.array(keys, pa.int64()),
                                             "text": texts}))
        con.execute("CREATE TABLE chunks AS SELECT * FROM new_chunks")
        con.execute("PRAGMA create_fts_index('chunks', 'chunk_key', 'text', stemmer='porter', "
                    "stopwords='english', strip_accents=1, lower=1, overwrite=1)")
        con.execute("CHECKPOINT")
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return path


class Bm25:
    """A version's BM25 index, open read-only for many queries."""

    def __init__(self, directory: Path) -> None:
        self.con = duckdb.connect(str(directory / FILE), read_only=True, config=_CONFIG)
        self.con.execute(extension())

    def search(self, query: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk keys, BM25 scores) of the `n` best chunks for `query`, best first."""
        rows = self.con.execute(_MATCH, [query, n]).fetchall()
        return (np.array([r[0] for r in rows], dtype=np.int64),
                np.array([r[1] for r in rows], dtype=np.float32))

    def close(self) -> None:
        self.con.close()
