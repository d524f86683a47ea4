"""Clean raw documents: normalise text, then drop empties, too-short texts and duplicates.

Input: a `schema.RAW_DOCUMENTS` table. Output: `CleanResult(documents, quarantine)` where
`documents` follows `schema.CLEANED` (token counts are added by tokenize),
and `quarantine` holds one row per rejected input with its reason; duplicates name the kept twin.
Every input row lands in exactly one of the two.

Order matters for duplicates: the first occurrence in input order is kept, so re-running on the
same input keeps the same documents.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import ftfy
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from tasks.prep.dedup import Deduplicator
from tasks.prep.schema import CLEANED, QUARANTINE

# C0/C1 controls, zero-width space, BOM, and the bidi embedding/override/isolate controls
# (U+202A-E, U+2066-9): they change only how text is displayed and can disguise it.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff\u202a-\u202e"
                      r"\u2066-\u2069]")
# Markup detection for records whose format does not say (JSONL, CSV, Parquet): a closing tag
# of a common HTML element. Plain prose that merely mentions "<p>" has no closing tag.
_HTML_CLOSING = re.compile(r"</(?:html|head|body|div|p|span|a|li|ul|ol|table|tr|td|th|h[1-6]|"
                           r"script|style|section|article|header|footer|nav|pre|code|b|i|em|"
                           r"strong|blockquote|iframe|form|title|noscript|template)\s*>",
                           re.IGNORECASE)
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_BLOCK_ELEMENTS = ("p, div, br, li, dt, dd, h1, h2, h3, h4, h5, h6, tr, pre, blockquote, "
                   "section, article, header, footer, table, ul, ol, hr")


class CleanConfig(BaseModel):
    """Cleaning rules. Thresholds are on the cleaned text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_chars: int = Field(20, ge=0, description="shorter cleaned texts are quarantined")
    near_duplicates: bool = True
    # Jaccard similarity of word 5-shingles at which two documents count as the same text
    # with small edits (boilerplate changes, a fixed typo). 0.9 keeps revisions that add a sentence.
    near_duplicate_threshold: float = Field(0.9, gt=0.0, le=1.0)
    shingle_words: int = Field(5, ge=1)
    minhash_permutations: int = Field(128, ge=16)


@dataclass(frozen=True)
class CleanResult:
    documents: pa.Table
    quarantine: pa.Table


def html_to_text(html: str) -> str:
    """Visible text of an HTML page, block elements on their own lines.

    >>> html_to_text("<p>Caf&eacute; <b>au</b> lait</p><script>x()</script><p>Two</p>")
    'Café au lait\\nTwo'
    """
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    for node in tree.css("script, style, noscript, template, head"):
        node.decompose()
    # Inline elements join their neighbours; block elements end a line.
    for node in tree.css(_BLOCK_ELEMENTS):
        node.insert_after("\n")
    body = tree.body or tree.root
    if body is None:
        return ""
    return body.text(separator="", strip=False).strip()


def looks_like_html(text: str) -> bool:
    """Does `text` hold HTML markup (a closing tag of a common element)?

    >>> looks_like_html("<div><p>Hi</p></div>"), looks_like_html("use <p> for a paragraph")
    (True, False)
    """
    return _HTML_CLOSING.search(text) is not None


def normalize_text(text: str, markup: str = "text") -> str:
    """Readable, canonical text: markup removed, mojibake repaired, NFC, whitespace tidied.

    `markup`: "text", "html", or "auto" (HTML when `looks_like_html`). Idempotent: repairing
    mojibake can reveal more of it once control characters are gone (and decoding HTML can
    reveal markup), so the steps repeat until the text stops changing.

    >>> normalize_text("  Ã©t\\u00e9 &amp; caf\\u0065\\u0301\\x07  \\n\\n\\n\\nnext  ")
    'été & café\\n\\nnext'
    """
    for _ in range(_MAX_PASSES):
        cleaned = _normalize_once(text, markup)
        if cleaned == text:
            break
        text, markup = cleaned, "auto" if markup == "html" else markup
    return text


_MAX_PASSES = 5


def _normalize_once(text: str, markup: str) -> str:
    if markup == "html" or (markup == "auto" and looks_like_html(text)):
        text = html_to_text(text)
    text = ftfy.fix_text(text, normalization="NFC")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _MANY_NEWLINES.sub("\n\n", text)
    return unicodedata.normalize("NFC", text.strip())


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _full_text(title: str | None, body: str) -> str:
    """The text that is chunked and embedded: the title heads the body (as MTEB embeds BEIR)."""
    if not title or body.startswith(title):
        return body
    return f"{title}\n\n{body}" if body else ""


def new_deduplicator(config: CleanConfig) -> Deduplicator:
    """The duplicate memory of one run (pass the same one to every shard of it)."""
    return Deduplicator(threshold=config.near_duplicate_threshold,
                        shingle_words=config.shingle_words,
                        permutations=config.minhash_permutations,
                        bands=config.minhash_permutations // 4, near=config.near_duplicates)


class SeenIds:
    """Document ids kept so far in a run, with where each came from (for the message)."""

    def __init__(self) -> None:
        self.where: dict[str, tuple[str, int]] = {}


def clean_documents(raw: pa.Table, config: CleanConfig, dedup: Deduplicator | None = None,
                    seen: SeenIds | None = None) -> CleanResult:
    """Normalise every document and route each input row to `documents` or `quarantine`.

    Call it once per shard of a source with the same `dedup` and `seen`: duplicates (of ids and
    of texts) are then found across shards, the first occurrence in input order kept.

    >>> import pyarrow as pa
    >>> raw = pa.table({"doc_id": ["a", "b", "c"], "title": [None, None, None],
    ...     "text": ["The same text here.", "The  same text here.", ""],
    ...     "source": ["f"] * 3, "row": [1, 2, 3], "markup": ["text"] * 3})
    >>> r = clean_documents(raw, CleanConfig(min_chars=5))
    >>> r.documents["doc_id"].to_pylist(), r.quarantine["reason"].to_pylist()
    (['a'], ['exact_duplicate', 'empty'])
    """
    dedup = dedup or new_deduplicator(config)
    seen = seen or SeenIds()
    candidates: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for record in raw.to_pylist():
        doc_id, source, row = record["doc_id"], record["source"], record["row"]
        title = normalize_text(record["title"]) if record["title"] else None
        body = normalize_text(record["text"] or "", record["markup"] or "text")
        problem: tuple[str, str, str | None] | None = None
        if not body:
            problem = ("empty", "no text left after cleaning", None)
        elif len(body) < config.min_chars:
            problem = ("too_short", f"{len(body)} characters after cleaning, "
                                    f"clean.min_chars is {config.min_chars}", None)
        elif doc_id in seen.where:
            problem = _duplicate_id(doc_id, seen)
        if problem:
            rejected.append(_rejection(record, *problem))
            continue
        text = _full_text(title, body)
        candidates.append({"doc_id": doc_id, "title": title, "text": text,
                           "content_hash": content_hash(text), "source": source, "row": row})
    verdicts = dedup.shard([c["doc_id"] for c in candidates], [c["text"] for c in candidates],
                           [c["content_hash"] for c in candidates])
    kept = []
    for candidate, verdict in zip(candidates, verdicts, strict=True):
        # Only a kept record claims its id: an empty or duplicate first record does not shadow
        # a good second one with the same id.
        if verdict.kind == "kept" and candidate["doc_id"] in seen.where:
            rejected.append(_rejection(candidate, *_duplicate_id(candidate["doc_id"], seen)))
            dedup.forget(candidate["content_hash"])
        elif verdict.kind == "kept":
            kept.append(candidate)
            seen.where[candidate["doc_id"]] = (candidate["source"], candidate["row"])
        elif verdict.kind == "exact":
            rejected.append(_rejection(candidate, "exact_duplicate",
                                       "same cleaned text as the kept document", verdict.twin))
        else:
            rejected.append(_rejection(candidate, "near_duplicate",
                                       f"Jaccard {verdict.similarity:.2f} with the kept "
                                       "document", verdict.twin))
    return CleanResult(
        pa.Table.from_pylist(kept, schema=CLEANED),
        pa.Table.from_pylist(sorted(rejected, key=lambda r: (r["source"] or "", r["row"] or 0)),
                             schema=QUARANTINE),
    )


def _duplicate_id(doc_id: str, seen: SeenIds) -> tuple[str, str, str]:
    where = "{}:{}".format(*seen.where[doc_id])
    return "duplicate_id", f"doc_id {doc_id!r} was kept earlier ({where})", doc_id


def _rejection(record: dict[str, Any], reason: str, detail: str, twin: str | None
               ) -> dict[str, Any]:
    return {"source": record["source"], "row": record["row"], "doc_id": record["doc_id"],
            "reason": reason, "detail": detail, "twin_doc_id": twin}
