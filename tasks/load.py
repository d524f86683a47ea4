"""Read a corpus source into raw documents: the one I/O edge before cleaning.

Input: a path — a directory (recursive: .txt .md .rst .html .htm), a JSONL file (BEIR
`_id/title/text` or `id/text[/title]`, field names configurable), a Parquet file or a CSV file.
Output: `LoadResult(documents, problems)`: `documents` follows `schema.RAW_DOCUMENTS`, `problems`
follows `schema.QUARANTINE` — every record that could not be read is there, naming file and row.
Nothing is dropped silently: a bad row becomes a problem row and the rest of the file is read.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from tasks.errors import SourceError
from tasks.schema import QUARANTINE, RAW_DOCUMENTS

TEXT_SUFFIXES = {".txt": "text", ".md": "text", ".rst": "text", ".html": "html", ".htm": "html"}
SourceFormat = Literal["auto", "directory", "jsonl", "parquet", "csv"]


class SourceConfig(BaseModel):
    """How records of a source map onto documents.

    `id_field` None means: `_id` if present (BEIR), else `id`, else a stable id `<file>:<row>`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: SourceFormat = "auto"
    id_field: str | None = None
    text_field: str = "text"
    title_field: str = "title"


@dataclass(frozen=True)
class LoadResult:
    documents: pa.Table
    problems: pa.Table


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


def load_source(path: Path, config: SourceConfig) -> LoadResult:
    """Read every record of `path` into raw documents and problem rows.

    Raises:
        SourceError: the source does not exist or its format is unknown.
    """
    if not path.exists():
        raise SourceError(f"{path}: no such file or directory")
    fmt = detect_format(path) if config.format == "auto" else config.format
    readers = {"directory": _read_directory, "jsonl": _read_jsonl, "parquet": _read_parquet,
               "csv": _read_csv}
    docs: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for record in readers[fmt](path, config):
        (problems if "reason" in record else docs).append(record)
    return LoadResult(
        pa.Table.from_pylist(docs, schema=RAW_DOCUMENTS),
        pa.Table.from_pylist(problems, schema=QUARANTINE),
    )


def _problem(source: str, row: int, reason: str, detail: str, doc_id: str | None = None) -> dict:
    return {"source": source, "row": row, "doc_id": doc_id, "reason": reason, "detail": detail,
            "twin_doc_id": None}


def _read_directory(root: Path, config: SourceConfig) -> Iterator[dict[str, Any]]:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        markup = TEXT_SUFFIXES.get(path.suffix.lower())
        if markup is None:
            continue
        rel = path.relative_to(root).as_posix()
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            yield _problem(rel, 0, "unreadable",
                           f"not UTF-8 text ({exc.reason} at byte {exc.start})", rel)
            continue
        except OSError as exc:
            yield _problem(rel, 0, "unreadable", f"cannot read file ({exc.strerror})", rel)
            continue
        yield {"doc_id": rel, "title": path.stem, "text": text, "source": rel, "row": 0,
               "markup": markup}


def _record_to_document(record: Any, source: str, row: int, config: SourceConfig,
                        id_field: str | None) -> dict[str, Any]:
    if not isinstance(record, dict):
        return _problem(source, row, "bad_record",
                        f"expected a JSON object, got {type(record).__name__}")
    raw_id = record.get(id_field) if id_field else None
    doc_id = str(raw_id) if raw_id not in (None, "") else f"{source}:{row}"
    text = record.get(config.text_field)
    if not isinstance(text, str):
        what = "missing" if text is None else f"a {type(text).__name__}, not a string"
        return _problem(source, row, "missing_text", f"field {config.text_field!r} is {what}",
                        doc_id)
    title = record.get(config.title_field)
    return {"doc_id": doc_id, "title": str(title) if title not in (None, "") else None,
            "text": text, "source": source, "row": row, "markup": "text"}


def _pick_id_field(keys: set[str], config: SourceConfig) -> str | None:
    if config.id_field is not None:
        return config.id_field
    return next((name for name in ("_id", "id") if name in keys), None)


def _read_jsonl(path: Path, config: SourceConfig) -> Iterator[dict[str, Any]]:
    source = path.name
    id_field = config.id_field
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except UnicodeDecodeError as exc:
                yield _problem(source, line_no, "unreadable", f"not UTF-8 ({exc.reason})")
                continue
            except json.JSONDecodeError as exc:
                yield _problem(source, line_no, "bad_record", f"not valid JSON ({exc.msg})")
                continue
            if id_field is None and isinstance(record, dict):
                id_field = _pick_id_field(set(record), config)
            yield _record_to_document(record, source, line_no, config, id_field)


def _read_parquet(path: Path, config: SourceConfig) -> Iterator[dict[str, Any]]:
    source = path.name
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from exc
    id_field = _pick_id_field(set(table.column_names), config)
    for row_no, record in enumerate(table.to_pylist(), start=1):
        yield _record_to_document(record, source, row_no, config, id_field)


def _read_csv(path: Path, config: SourceConfig) -> Iterator[dict[str, Any]]:
    source = path.name
    try:
        handle = path.open(newline="", encoding="utf-8")
        reader = csv.DictReader(handle)
        id_field = _pick_id_field(set(reader.fieldnames or ()), config)
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read CSV header ({exc})") from exc
    with handle:
        row_no = 1  # the header is line 1
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except (csv.Error, UnicodeDecodeError) as exc:
                yield _problem(source, reader.line_num, "bad_record", f"unparsable CSV row ({exc})")
                continue
            row_no = reader.line_num
            if None in record:  # more fields than the header names
                yield _problem(source, row_no, "bad_record",
                               f"{len(record[None]) + len(reader.fieldnames or ())} fields, "
                               f"header has {len(reader.fieldnames or ())}")
                continue
            yield _record_to_document(record, source, row_no, config, id_field)
