"""Read a corpus source into raw documents: the one I/O edge before cleaning.

Input: a path — a directory (recursive: .txt .md .rst .html .htm), a JSONL file (BEIR
`_id/title/text` or `id/text[/title]`, field names configurable), a Parquet file or a CSV file.
Output: `LoadResult(documents, problems)` batches: `documents` follows `schema.RAW_DOCUMENTS`,
`problems` follows `schema.QUARANTINE` — every record that could not be read is there, naming
file and line. Nothing is dropped silently: a bad record becomes a problem row and the rest of
the file is read. `iter_source` yields bounded batches (memory does not grow with the source);
`load_source` is all of them at once.

Hostile bytes are normal input: invalid UTF-8 quarantines its own record (with its true line)
and never the neighbours; a lone surrogate in JSON (valid JSON, not encodable text) is caught
here rather than crashing a later stage; symlinks that leave the source directory, dangling
links and special files (FIFOs, devices) are reported, never followed or opened.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from tasks.errors import SourceError
from tasks.prep.readers import read_csv, read_directory, read_jsonl, read_parquet, unsafe_file
from tasks.prep.records import TEXT_SUFFIXES, SourceConfig, SourceFormat, bad_text
from tasks.prep.schema import QUARANTINE, RAW_DOCUMENTS

__all__ = ["LoadResult", "SourceConfig", "check_source", "iter_source", "load_source",
           "read_query_log", "source_digest"]


@dataclass(frozen=True)
class LoadResult:
    documents: pa.Table
    problems: pa.Table

    @property
    def num_records(self) -> int:
        return self.documents.num_rows + self.problems.num_rows


def detect_format(path: Path) -> SourceFormat:
    """The source format of `path` from its kind and suffix."""
    if path.is_dir():
        return "directory"
    suffix = path.suffix.lower()
    for fmt, suffixes in (("jsonl", {".jsonl", ".ndjson", ".json"}), ("parquet", {".parquet"}),
                          ("csv", {".csv"})):
        if suffix in suffixes:
            return fmt  # type: ignore[return-value]
    raise SourceError(
        f"{path}: cannot tell the source format from suffix {suffix!r}; "
        "expected a directory or one of .jsonl .parquet .csv (or set source.format)"
    )


def check_source(path: Path, config: SourceConfig) -> SourceFormat:
    """The format of an existing, readable source; raises `SourceError` otherwise."""
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    fmt = detect_format(path) if config.format == "auto" else config.format
    if fmt == "directory" and not path.is_dir():
        raise SourceError(f"{path}: not a directory (source.format is 'directory')")
    if fmt != "directory" and not path.is_file():
        raise SourceError(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise SourceError(f"{path}: permission denied")
    return fmt


def iter_source(path: Path, config: SourceConfig) -> Iterator[LoadResult]:
    """Every record of `path`, as batches of at most `config.batch_rows` records.

    Raises:
        SourceError: the source does not exist, is unreadable as a whole, or of unknown format.
    """
    fmt = check_source(path, config)
    readers = {"directory": read_directory, "jsonl": read_jsonl, "parquet": read_parquet,
               "csv": read_csv}
    docs: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for record in readers[fmt](path, config):
        (problems if "reason" in record else docs).append(record)
        if len(docs) + len(problems) >= config.batch_rows:
            yield _batch(docs, problems)
            docs, problems = [], []
    if docs or problems:
        yield _batch(docs, problems)


def source_digest(path: Path, config: SourceConfig) -> str:
    """sha256 of what `iter_source` would read: a file's bytes, or a directory's text files
    (relative path and bytes of each, in reading order; an unsafe entry by its path alone).

    Raises:
        SourceError: as `iter_source`.
    """
    digest = hashlib.sha256()
    if check_source(path, config) != "directory":
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    base = path.resolve()
    for entry in sorted(path.rglob("*")):
        if entry.suffix.lower() not in TEXT_SUFFIXES or unsafe_file(entry, base) == "directory":
            continue
        digest.update(entry.relative_to(path).as_posix().encode() + b"\x00")
        if unsafe_file(entry, base) is None:
            with contextlib.suppress(OSError), entry.open("rb") as handle:
                digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def load_source(path: Path, config: SourceConfig) -> LoadResult:
    """Read every record of `path` into raw documents and problem rows (all in memory)."""
    batches = list(iter_source(path, config))
    if not batches:
        return _batch([], [])
    return LoadResult(pa.concat_tables([b.documents for b in batches]),
                      pa.concat_tables([b.problems for b in batches]))


def _batch(docs: list[dict[str, Any]], problems: list[dict[str, Any]]) -> LoadResult:
    return LoadResult(pa.Table.from_pylist(docs, schema=RAW_DOCUMENTS),
                      pa.Table.from_pylist(problems, schema=QUARANTINE))


def read_query_log(path: Path) -> list[str]:
    """A query log: one query per line, or JSONL with a `query` or `text` field.

    Raises:
        SourceError: a missing file, a JSON line without a query, or no query at all.
    """
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    queries = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except (json.JSONDecodeError, RecursionError) as exc:
                    raise SourceError(f"{path}:{line_no}: not valid JSON ({exc})") from exc
                text = record.get("query") or record.get("text")
                if not isinstance(text, str):
                    raise SourceError(f"{path}:{line_no}: no 'query' or 'text' string field")
                line = text
            if bad_text(line) is None:
                queries.append(line)
    if not queries:
        raise SourceError(f"{path}: no queries")
    return queries
