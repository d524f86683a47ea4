"""Read labelled evaluation sets: BEIR retrieval (queries + qrels) and STS sentence pairs.

Input: a BEIR directory (`queries.jsonl`, `qrels/<split>.tsv`) or an STS file
(tab-separated `genre, file, year, id, score, sentence1, sentence2[, extra…]`).
Output: plain Python structures; only judged queries are kept for retrieval.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tasks.errors import SourceError


@dataclass(frozen=True)
class BeirSet:
    name: str
    queries: dict[str, str]  # query id -> text (judged queries only)
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}


@dataclass(frozen=True)
class StsSet:
    name: str
    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]  # gold similarity, 0-5


def load_beir(directory: Path, split: str = "test") -> BeirSet:
    """Judged queries and their relevance judgements.

    Raises:
        SourceError: a missing file, or a qrels row that is not `query-id<TAB>doc-id<TAB>score`.
    """
    qrels_path = directory / "qrels" / f"{split}.tsv"
    queries_path = directory / "queries.jsonl"
    for path in (qrels_path, queries_path):
        if not path.exists():
            raise SourceError(f"{path}: not found (BEIR layout: queries.jsonl, qrels/{split}.tsv)")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if line_no == 1 and row and not row[-1].strip().lstrip("-").isdigit():
                continue  # header
            if len(row) < 3:
                raise SourceError(f"{qrels_path}:{line_no}: expected 3 tab-separated fields")
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    queries: dict[str, str] = {}
    with queries_path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SourceError(f"{queries_path}:{line_no}: not valid JSON ({exc.msg})") from exc
            if str(record["_id"]) in qrels:
                queries[str(record["_id"])] = record["text"]
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise SourceError(f"{qrels_path}: {len(missing)} judged queries have no text in "
                          f"{queries_path} (e.g. {missing[:3]})")
    return BeirSet(f"{directory.name}/{split}", queries, qrels)


@dataclass(frozen=True)
class LabelledSet:
    name: str
    texts: list[str]
    labels: list[str]


def load_labelled(path: Path) -> LabelledSet:
    """`(text, label)` pairs: JSONL with `text`/`label`, a TSV or CSV file whose header names a
    `text` and a `label` column, or an STS file (its sentences, labelled with the genre in the
    first field).

    A TSV is split on tabs only: quotes are text (a sentence may open with `"`), never CSV
    quoting that would swallow the lines after it. A CSV is read with CSV quoting.

    Raises:
        SourceError: a missing file, a file without the header, a row without text or label
            (naming its line and what is wrong), or fewer than two labels.
    """
    if not path.exists():
        raise SourceError(f"{path}: not found")
    with path.open(encoding="utf-8", newline="") as handle:
        first = handle.readline()
        handle.seek(0)
        if path.suffix in (".jsonl", ".json"):
            pairs = _jsonl_pairs(handle, path)
        elif first.count("\t") >= 6 and "text" not in first.lower().split("\t"):
            pairs = _sts_pairs(handle)
        elif "\t" in first or path.suffix == ".tsv":
            pairs = _tsv_pairs(handle, path)
        else:
            pairs = _csv_pairs(handle, path)
        texts: list[str] = []
        labels: list[str] = []
        for line_no, text, label in pairs:
            _append(texts, labels, text, label, path, line_no)
    if len(set(labels)) < 2:
        raise SourceError(f"{path}: a labelled set needs at least two labels, found "
                          f"{sorted(set(labels))}")
    return LabelledSet(path.name, texts, labels)


Pairs = Iterator[tuple[int, object, object]]  # (line number, text, label)


def _jsonl_pairs(handle: IO[str], path: Path) -> Pairs:
    for line_no, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise SourceError(f"{path}:{line_no}: not valid JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise SourceError(f"{path}:{line_no}: expected a JSON object with text and label")
        yield line_no, record.get("text"), record.get("label")


def _sts_pairs(handle: IO[str]) -> Pairs:
    for line_no, line in enumerate(handle, start=1):  # STS: genre, …, s1, s2
        fields = line.rstrip("\r\n").split("\t")
        for sentence in fields[5:7]:
            yield line_no, sentence, fields[0]


def _header(columns: list[str], path: Path, separator: str) -> tuple[int, int]:
    """Where the text and label columns are, from the header; refuses a file without one."""
    names = [c.strip().lower() for c in columns]
    if "text" in names and "label" in names:
        return names.index("text"), names.index("label")
    example = "text<TAB>label" if separator == "\t" else "text,label"
    raise SourceError(
        f"{path}:1: the header is missing: the first line must name the columns, e.g. "
        f"{example}; found {separator.join(columns)[:60]!r}")


def _tsv_pairs(handle: IO[str], path: Path) -> Pairs:
    header = handle.readline().rstrip("\r\n").split("\t")
    text_at, label_at = _header(header, path, "\t")
    for line_no, line in enumerate(handle, start=2):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise SourceError(f"{path}:{line_no}: {len(fields)} tab-separated fields, the "
                              f"header has {len(header)} ({chr(9).join(header)!r})")
        yield line_no, fields[text_at], fields[label_at]


def _csv_pairs(handle: IO[str], path: Path) -> Pairs:
    reader = csv.reader(handle)
    header = next(reader, [])
    text_at, label_at = _header(header, path, ",")
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            raise SourceError(f"{path}:{reader.line_num}: {len(row)} fields, the header has "
                              f"{len(header)}")
        yield reader.line_num, row[text_at], row[label_at]


def _append(texts: list[str], labels: list[str], text: object, label: object, path: Path,
            line_no: int) -> None:
    if not isinstance(text, str) or not text.strip():
        raise SourceError(f"{path}:{line_no}: the text is empty")
    if label in (None, "") or (isinstance(label, str) and not label.strip()):
        raise SourceError(f"{path}:{line_no}: the label is empty")
    texts.append(text)
    labels.append(str(label))


def load_sts(path: Path) -> StsSet:
    """Sentence pairs with gold scores. Lines are split on tabs (never a CSV parser: sentences
    hold unbalanced quotes) and only the first seven fields are used."""
    if not path.exists():
        raise SourceError(f"{path}: not found")
    s1, s2, scores = [], [], []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 7:
                raise SourceError(f"{path}:{line_no}: expected at least 7 tab-separated fields, "
                                  f"got {len(fields)}")
            try:
                scores.append(float(fields[4]))
            except ValueError as exc:
                raise SourceError(f"{path}:{line_no}: score {fields[4]!r} is not a number") \
                    from exc
            s1.append(fields[5])
            s2.append(fields[6])
    return StsSet(path.name, s1, s2, scores)
