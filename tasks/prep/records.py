"""One source record as one raw document, or a problem row naming file, row and reason.

Input: a parsed record (a JSON object, a Parquet/CSV row as a dict) and the `SourceConfig`.
Output: a `schema.RAW_DOCUMENTS` row, or a `schema.QUARANTINE` row (`problem`).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TEXT_SUFFIXES = {".txt": "auto", ".md": "auto", ".rst": "auto", ".html": "html", ".htm": "html"}


SourceFormat = Literal["auto", "directory", "jsonl", "parquet", "csv"]


# Records carry their markup as "auto": the cleaner strips HTML when the text looks like HTML.
RECORD_MARKUP = "auto"


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


def problem(source: str, row: int, reason: str, detail: str, doc_id: str | None = None) -> dict:
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


def _scalar_id(raw_id: Any) -> str | None:
    """A document id from a record field: strings and numbers; None when absent or empty."""
    if raw_id is None or raw_id == "" or isinstance(raw_id, bool):
        return None
    if isinstance(raw_id, float) and not math.isfinite(raw_id):
        return None
    if isinstance(raw_id, str | int | float):
        return str(raw_id)
    raise TypeError(type(raw_id).__name__)


def record_to_document(record: Any, source: str, row: int, config: SourceConfig,
                        id_field: str | None) -> dict[str, Any]:
    if not isinstance(record, dict):
        return problem(source, row, "bad_record",
                        f"expected a JSON object, got {type(record).__name__}")
    try:
        doc_id = _scalar_id(record.get(id_field) if id_field else None) or f"{source}:{row}"
    except TypeError as exc:
        return problem(source, row, "bad_record",
                        f"id field {id_field!r} is a {exc}, not a string or number")
    text = record.get(config.text_field)
    if not isinstance(text, str):
        what = "missing" if text is None else f"a {type(text).__name__}, not a string"
        return problem(source, row, "missing_text", f"field {config.text_field!r} is {what}",
                        _printable(doc_id))
    title = record.get(config.title_field)
    title = str(title) if isinstance(title, str | int | float) and title != "" else None
    for field_name, value in (("id", doc_id), (config.text_field, text),
                              (config.title_field, title)):
        if value is not None and (why := bad_text(value)) is not None:
            return problem(source, row, "bad_encoding", f"field {field_name!r}: {why}",
                            _printable(doc_id))
    return {"doc_id": doc_id, "title": title, "text": text, "source": source, "row": row,
            "markup": RECORD_MARKUP}


def _printable(value: str) -> str:
    """`value` safe to store: undecodable characters replaced (for ids in problem rows)."""
    return value.encode("utf-8", "replace").decode("utf-8")


def pick_id_field(keys: set[str], config: SourceConfig) -> str | None:
    if config.id_field is not None:
        return config.id_field
    return next((name for name in ("_id", "id") if name in keys), None)
