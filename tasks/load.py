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
import csv
import hashlib
import json
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import SourceError
from tasks.schema import QUARANTINE, RAW_DOCUMENTS

TEXT_SUFFIXES = {".txt": "auto", ".md": "auto", ".rst": "auto", ".html": "html", ".htm": "html"}
SourceFormat = Literal["auto", "directory", "jsonl", "parquet", "csv"]
# Records carry their markup as "auto": the cleaner strips HTML when the text looks like HTML.
RECORD_MARKUP = "auto"
# csv's default field limit is 128 KiB; a long document is not a bad record.
csv.field_size_limit(2**31 - 1)


class SourceConfig(BaseModel):
    """How records of a source map onto documents.

    `id_field` None means: `_id` if present (BEIR), else `id`, else a stable id `<file>:<row>`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: SourceFormat = "auto"
    id_field: str | None = None
    text_field: str = "text"
    title_field: str = "title"
    # Records per batch read from the source: bounds memory on large sources.
    batch_rows: int = Field(10_000, ge=1)


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
    readers = {"directory": _read_directory, "jsonl": _read_jsonl, "parquet": _read_parquet,
               "csv": _read_csv}
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
        if entry.suffix.lower() not in TEXT_SUFFIXES or _unsafe_file(entry, base) == "directory":
            continue
        digest.update(entry.relative_to(path).as_posix().encode() + b"\x00")
        if _unsafe_file(entry, base) is None:
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


def _problem(source: str, row: int, reason: str, detail: str, doc_id: str | None = None) -> dict:
    return {"source": source, "row": row, "doc_id": doc_id, "reason": reason, "detail": detail,
            "twin_doc_id": None}


def bad_text(value: str) -> str | None:
    """Why `value` is not storable text (a lone surrogate or an undecodable byte), else None.

    >>> bad_text("fine"), bad_text("a\\ud800b")
    (None, 'lone surrogate U+D800 at character 1')
    """
    try:
        value.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        char = value[exc.start]
        if 0xDC80 <= ord(char) <= 0xDCFF:  # surrogateescape: the byte that did not decode
            return f"invalid UTF-8 byte 0x{ord(char) - 0xDC00:02x} at character {exc.start}"
        return f"lone surrogate U+{ord(char):04X} at character {exc.start}"


def _read_directory(root: Path, config: SourceConfig) -> Iterator[dict[str, Any]]:
    base = root.resolve()
    for path in sorted(root.rglob("*")):
        markup = TEXT_SUFFIXES.get(path.suffix.lower())
        if markup is None:
            continue
        rel = path.relative_to(root).as_posix()
        why = _unsafe_file(path, base)
        if why == "directory":
            continue
        if why:
            yield _problem(rel, 0, "unreadable", why, rel)
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            yield _problem(rel, 0, "unreadable",
                           f"not UTF-8 text ({exc.reason} at byte {exc.start})", rel)
            continue
        except OSError as exc:
            yield _problem(rel, 0, "unreadable", f"cannot read file ({exc.strerror})", rel)
            continue
        if (why := bad_text(text)) is not None:  # UTF-8-encoded surrogates decode, then fail
            yield _problem(rel, 0, "bad_encoding", why, rel)
            continue
        yield {"doc_id": rel, "title": path.stem, "text": text, "source": rel, "row": 0,
               "markup": markup}


def _unsafe_file(path: Path, base: Path) -> str | None:
    """Why `path` must not be read as a document ("directory": skip quietly), else None."""
    if path.is_symlink():
        if not path.exists():
            return "dangling symlink (its target does not exist)"
        if not path.resolve().is_relative_to(base):
            return "symlink to a file outside the source directory (not followed)"
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot stat file ({exc.strerror})"
    if stat.S_ISDIR(mode):
        return "directory"
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, socket or device is never opened)"
    return None


def _scalar_id(raw_id: Any) -> str | None:
    """A document id from a record field: strings and numbers; None when absent or empty."""
    if raw_id is None or raw_id == "" or isinstance(raw_id, bool):
        return None
    if isinstance(raw_id, float) and not math.isfinite(raw_id):
        return None
    if isinstance(raw_id, str | int | float):
        return str(raw_id)
    raise TypeError(type(raw_id).__name__)


def _record_to_document(record: Any, source: str, row: int, config: SourceConfig,
                        id_field: str | None) -> dict[str, Any]:
    if not isinstance(record, dict):
        return _problem(source, row, "bad_record",
                        f"expected a JSON object, got {type(record).__name__}")
    try:
        doc_id = _scalar_id(record.get(id_field) if id_field else None) or f"{source}:{row}"
    except TypeError as exc:
        return _problem(source, row, "bad_record",
                        f"id field {id_field!r} is a {exc}, not a string or number")
    text = record.get(config.text_field)
    if not isinstance(text, str):
        what = "missing" if text is None else f"a {type(text).__name__}, not a string"
        return _problem(source, row, "missing_text", f"field {config.text_field!r} is {what}",
                        _printable(doc_id))
    title = record.get(config.title_field)
    title = str(title) if isinstance(title, str | int | float) and title != "" else None
    for field_name, value in (("id", doc_id), (config.text_field, text),
                              (config.title_field, title)):
        if value is not None and (why := bad_text(value)) is not None:
            return _problem(source, row, "bad_encoding", f"field {field_name!r}: {why}",
                            _printable(doc_id))
    return {"doc_id": doc_id, "title": title, "text": text, "source": source, "row": row,
            "markup": RECORD_MARKUP}


def _printable(value: str) -> str:
    """`value` safe to store: undecodable characters replaced (for ids in problem rows)."""
    return value.encode("utf-8", "replace").decode("utf-8")


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
                yield _problem(source, line_no, "bad_encoding",
                               f"not UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            except json.JSONDecodeError as exc:
                yield _problem(source, line_no, "bad_record", f"not valid JSON ({exc.msg})")
                continue
            except RecursionError:
                yield _problem(source, line_no, "bad_record", "JSON nested too deeply")
                continue
            if id_field is None and isinstance(record, dict):
                id_field = _pick_id_field(set(record), config)
            yield _record_to_document(record, source, line_no, config, id_field)


def _read_parquet(path: Path, config: SourceConfig) -> Iterator[dict[str, Any]]:
    source = path.name
    try:
        parquet = pq.ParquetFile(path)
        id_field = _pick_id_field(set(parquet.schema_arrow.names), config)
        row_no = 0
        for batch in parquet.iter_batches(batch_size=config.batch_rows):
            for record in _batch_records(batch):
                row_no += 1
                if isinstance(record, str):
                    yield _problem(source, row_no, "bad_encoding", record)
                else:
                    yield _record_to_document(record, source, row_no, config, id_field)
    except (OSError, pa.ArrowException) as exc:
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from exc


def _batch_records(batch: pa.RecordBatch) -> list[dict[str, Any] | str]:
    """Rows of a batch as dicts; a row holding invalid UTF-8 becomes a string saying so.

    Arrow does not validate strings on read: one bad value would fail the whole batch's
    conversion, so only a batch that fails is converted again value by value.
    """
    try:
        return batch.to_pylist()
    except UnicodeDecodeError:
        pass
    columns: dict[str, list[Any]] = {}
    bad: dict[int, str] = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            values = []
            for i, raw in enumerate(column.view(pa.binary()).to_pylist()):
                try:
                    values.append(None if raw is None else raw.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    bad.setdefault(i, f"field {name!r}: invalid UTF-8 byte 0x{raw[exc.start]:02x}"
                                      f" at byte {exc.start}")
                    values.append(None)
            columns[name] = values
        else:
            columns[name] = column.to_pylist()
    return [bad[i] if i in bad else {k: v[i] for k, v in columns.items()}
            for i in range(batch.num_rows)]


def _read_csv(path: Path, config: SourceConfig) -> Iterator[dict[str, Any]]:
    """CSV records; `row` is the line the record starts on (the header is line 1).

    Decoded with surrogateescape: a byte that is not UTF-8 stays in its own field as a marker
    and quarantines only its record, instead of failing the decoder's whole 8 KB block.
    """
    source = path.name
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise SourceError(f"{path}: cannot read the CSV header ({exc})") from exc
        if not header:
            return
        id_field = _pick_id_field(set(header), config)
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                yield _problem(source, start, "bad_record", f"unparsable CSV row ({exc})")
                continue
            if not fields or fields == [""]:
                continue  # a blank line is no record
            if len(fields) > len(header):
                yield _problem(source, start, "bad_record",
                               f"{len(fields)} fields, header has {len(header)}")
                continue
            # Fewer fields than the header: the missing ones are absent (as csv.DictReader).
            yield _record_to_document(dict(zip(header, fields, strict=False)), source, start,
                                      config, id_field)


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
