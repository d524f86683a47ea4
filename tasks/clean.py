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

from tasks.schema import CLEANED, QUARANTINE

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
_WORD = re.compile(r"\w+")
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


def clean_documents(raw: pa.Table, config: CleanConfig) -> CleanResult:
    """Normalise every document and route each input row to `documents` or `quarantine`.

    >>> import pyarrow as pa
    >>> raw = pa.table({"doc_id": ["a", "b", "c"], "title": [None, None, None],
    ...     "text": ["The same text here.", "The  same text here.", ""],
    ...     "source": ["f"] * 3, "row": [1, 2, 3], "markup": ["text"] * 3})
    >>> r = clean_documents(raw, CleanConfig(min_chars=5))
    >>> r.documents["doc_id"].to_pylist(), r.quarantine["reason"].to_pylist()
    (['a'], ['exact_duplicate', 'empty'])
    """
    kept: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    kept_ids: dict[str, tuple[str, int]] = {}  # doc_id -> (source, row) of the kept record
    by_hash: dict[str, str] = {}
    for record in raw.to_pylist():
        doc_id, source, row = record["doc_id"], record["source"], record["row"]

        def reject(reason: str, detail: str, twin: str | None = None,
                   _d: str = doc_id, _s: str = source, _r: int = row) -> None:
            rejected.append({"source": _s, "row": _r, "doc_id": _d, "reason": reason,
                             "detail": detail, "twin_doc_id": twin})

        title = normalize_text(record["title"]) if record["title"] else None
        body = normalize_text(record["text"] or "", record["markup"] or "text")
        if not body:
            reject("empty", "no text left after cleaning")
            continue
        if len(body) < config.min_chars:
            reject("too_short", f"{len(body)} characters after cleaning, "
                                f"clean.min_chars is {config.min_chars}")
            continue
        # Only a kept record claims its id: an empty first record does not shadow a good second.
        if doc_id in kept_ids:
            where = "{}:{}".format(*kept_ids[doc_id])
            reject("duplicate_id", f"doc_id {doc_id!r} was kept earlier ({where})", doc_id)
            continue
        text = _full_text(title, body)
        digest = content_hash(text)
        if digest in by_hash:
            reject("exact_duplicate", "same cleaned text as the kept document", by_hash[digest])
            continue
        by_hash[digest] = doc_id
        kept_ids[doc_id] = (source, row)
        kept.append({"doc_id": doc_id, "title": title, "text": text, "content_hash": digest,
                     "source": source, "row": row})
    if config.near_duplicates and len(kept) > 1:
        kept, near = _drop_near_duplicates(kept, config)
        rejected.extend(near)
    return CleanResult(
        pa.Table.from_pylist(kept, schema=CLEANED),
        pa.Table.from_pylist(rejected, schema=QUARANTINE),
    )


def _shingles(text: str, size: int) -> set[bytes]:
    words = _WORD.findall(text.lower())
    if len(words) <= size:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + size]).encode() for i in range(len(words) - size + 1)}


def _drop_near_duplicates(
    docs: list[dict[str, Any]], config: CleanConfig
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """MinHash-LSH over word shingles; candidates are confirmed on the estimated Jaccard."""
    from datasketch import MinHash, MinHashLSH

    shingle_sets = [_shingles(d["text"], config.shingle_words) for d in docs]
    hashes = MinHash.bulk(shingle_sets, num_perm=config.minhash_permutations, seed=1)
    # The LSH only proposes candidates; each is confirmed on its estimated Jaccard below. So it
    # is tuned for recall: a lower threshold and false negatives weighted 4x false positives.
    lsh = MinHashLSH(threshold=max(0.5, config.near_duplicate_threshold - 0.2),
                     num_perm=config.minhash_permutations, weights=(0.2, 0.8))
    kept, rejected = [], []
    for i, (doc, mh) in enumerate(zip(docs, hashes, strict=True)):
        twins = [j for j in lsh.query(mh)
                 if hashes[j].jaccard(mh) >= config.near_duplicate_threshold]
        if twins:
            twin = docs[min(twins)]
            rejected.append({"source": doc["source"], "row": doc["row"], "doc_id": doc["doc_id"],
                             "reason": "near_duplicate",
                             "detail": f"Jaccard {hashes[min(twins)].jaccard(mh):.2f} with the "
                                       "kept document",
                             "twin_doc_id": twin["doc_id"]})
            continue
        lsh.insert(i, mh)
        kept.append(doc)
    return kept, rejected
