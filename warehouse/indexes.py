"""Index files of a version: `indexes/<version_id>/`, written whole or not at all.

Layout: the ANN backend's own files (e.g. `index.bin`), `meta.json` (what ties the files to
their version: version id, lake snapshot, model fingerprint, chunk count, plus the build report)
and `chunks.parquet` (one row per chunk: its distinct-text label, key, ids, title and snippet,
sorted by label) so that a search answers from these files alone, without the catalog.

Files are written to a staging directory and renamed into place, so a crash never leaves a
half-written index where a reader would load it; loading checks the meta against the version
and refuses an index built for anything else. For a warehouse on object storage the directory is
in this machine's cache: `save` uploads it (meta.json last), and `checked` downloads it again
only when the stored meta.json differs from the cached one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.errors import IndexMismatch
from warehouse.store import Version, Warehouse

META = "meta.json"
ROWS = "chunks.parquet"
FORMAT = 2  # bumped when the layout changes; older indexes are rebuilt, not misread


def identity(version: Version) -> dict[str, Any]:
    """What an index must match to serve `version`."""
    return {"format": FORMAT, "version_id": version.version_id,
            "lake_snapshot": version.lake_snapshot,
            "model_fingerprint": version.model_fingerprint, "count": version.n_chunks}


def save(warehouse: Warehouse, version: Version, write_ann: Callable[[Path], None],
         rows: pa.Table, report: dict[str, Any]) -> Path:
    """Write the index of `version` atomically; returns its directory.

    Args:
        write_ann: writes the backend's files into the directory it is given.
        rows: one row per chunk (label, chunk_key, chunk_id, doc_id, title, snippet...).
        report: the build report, kept in meta.json.
    """
    final = warehouse.index_dir(version.version_id)
    staging = final.with_name(final.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write_ann(staging)
    pq.write_table(rows, staging / ROWS)
    meta = {**identity(version), "dimension": version.dimension, "report": report,
            "backend": report.get("backend"), "ef": report.get("ef")}
    (staging / META).write_text(json.dumps(meta, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    warehouse.location.upload(_name(version.version_id), last=META)
    return final


def update_meta(warehouse: Warehouse, version: Version, changes: dict[str, Any]) -> None:
    """Change query-time settings in the meta.json of `version`'s index (e.g. a retuned ef),
    atomically (written beside it, then renamed over it); the index files are not touched."""
    directory, meta = checked(warehouse, version)
    staging = directory / (META + ".tmp")
    staging.write_text(json.dumps({**meta, **changes}, indent=2))
    staging.replace(directory / META)
    warehouse.location.upload(_name(version.version_id), last=META)


def _name(version_id: int) -> str:
    """The index folder's name under the warehouse (local and remote alike)."""
    return f"indexes/{version_id}"


def checked(warehouse: Warehouse, version: Version) -> tuple[Path, dict[str, Any]]:
    """(directory, meta) of the index of `version`, after checking it belongs to it.

    Raises:
        IndexMismatch: no index, an index of another version/model/snapshot, or an older layout.
    """
    directory = warehouse.location.fetch(_name(version.version_id), META)
    rebuild = f"rebuild it with `embedpipe index --version {version.version_id}`"
    meta_path = directory / META
    if not meta_path.exists():
        raise IndexMismatch(f"version {version.version_id} has no index at {directory}; "
                            + rebuild)
    meta = json.loads(meta_path.read_text())
    wrong = {key: (meta.get(key), value) for key, value in identity(version).items()
             if meta.get(key) != value}
    if wrong:
        detail = ", ".join(f"{k}: index has {a!r}, version has {b!r}"
                           for k, (a, b) in wrong.items())
        raise IndexMismatch(f"{directory}: the index does not belong to version "
                            f"{version.version_id} ({detail}); {rebuild}")
    return directory, meta


def read_rows(directory: Path, columns: list[str] | None = None) -> pa.Table:
    """The per-chunk rows saved beside an index (memory-mapped Parquet read)."""
    return pq.read_table(directory / ROWS, columns=columns, memory_map=True)
