"""Readers of each source format, each yielding raw-document rows and problem rows in order.

Input: a path and the `SourceConfig`. Output: an iterator of dicts, a document
(`schema.RAW_DOCUMENTS`) or a problem (`schema.QUARANTINE`, it has a `reason`). A bad record is
a problem row and the rest of the file is read; unsafe files are reported, never opened.
"""

from __future__ import annotations

import csv
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.errors import SourceError
from tasks.prep.records import (
    TEXT_SUFFIXES,
    SourceConfig,
    bad_text,
    pick_id_field,
    problem,
    record_to_document,
)

# csv's default field limit is 128 KiB; a long document is not a bad record.
csv.field_size_limit(2**31 - 1)


def read_directory(root: Path, config: SourceConfig) -> Iterator[dict[str, Any]]:
    base = root.resolve()
    for path in sorted(root.rglob("*")):
        markup = TEXT_SUFFIXES.get(path.suffix.lower())
        if markup is None:
            continue
        rel = path.relative_to(root).as_posix()
        why = unsafe_file(path, base)
        if why == "directory":
            continue
        if why:
            yield problem(rel, 0, "unreadable", why, rel)
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            yield problem(rel, 0, "unreadable",
                           f"not UTF-8 text ({exc.reason} at byte {exc.start})", rel)
            continue
        except OSError as exc:
            yield problem(rel, 0, "unreadable", f"cannot read file ({exc.strerror})", rel)
            continue
        if (why := bad_text(text)) is not None:  # UTF-8-encoded surrogates decode, then fail
            yield problem(rel, 0, "bad_encoding", why, rel)
            continue
        yield {"doc_id": rel, "title": path.stem, "text": text, "source": rel, "row": 0,
               "markup": markup}


def unsafe_file(path: Path, base: Path) -> str | None:
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


def read_jsonl(path: Path, config: SourceConfig) -> Iterator[dict[str, Any]]:
    source = path.name
    id_field = config.id_field
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except UnicodeDecodeError as exc:
                yield problem(source, line_no, "bad_encoding",
                               f"not UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            except json.JSONDecodeError as exc:
                yield problem(source, line_no, "bad_record", f"not valid JSON ({exc.msg})")
                continue
            except RecursionError:
                yield problem(source, line_no, "bad_record", "JSON nested too deeply")
                continue
            if id_field is None and isinstance(record, dict):
                id_field = pick_id_field(set(record), config)
            yield record_to_document(record, source, line_no, config, id_field)


def read_parquet(path: Path, config: SourceConfig) -> Iterator[dict[str, Any]]:
    source = path.name
    try:
        parquet = pq.ParquetFile(path)
        id_field = pick_id_field(set(parquet.schema_arrow.names), config)
        row_no = 0
        for batch in parquet.iter_batches(batch_size=config.batch_rows):
            for record in _batch_records(batch):
                row_no += 1
                if isinstance(record, str):
                    yield problem(source, row_no, "bad_encoding", record)
                else:
                    yield record_to_document(record, source, row_no, config, id_field)
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


def read_csv(path: Path, config: SourceConfig) -> Iterator[dict[str, Any]]:
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
        id_field = pick_id_field(set(header), config)
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                yield problem(source, start, "bad_record", f"unparsable CSV row ({exc})")
                continue
            if not fields or fields == [""]:
                continue  # a blank line is no record
            if len(fields) > len(header):
                yield problem(source, start, "bad_record",
                               f"{len(fields)} fields, header has {len(header)}")
                continue
            # Fewer fields than the header: the missing ones are absent (as csv.DictReader).
            yield record_to_document(dict(zip(header, fields, strict=False)), source, start,
                                      config, id_field)
