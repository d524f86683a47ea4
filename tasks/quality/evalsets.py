"""Read labelled evaluation sets: BEIR retrieval (queries + qrels) and STS sentence pairs.

Input: a BEIR directory (`queries.jsonl`, `qrels/<split>.tsv`) or an STS file
(tab-separated `genre, file, year, id, score, sentence1, sentence2[, extra…]`).
Output: plain Python structures; only judged queries are kept for retrieval.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

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
    """`(text, label)` pairs: JSONL with `text`/`label`, CSV/TSV with a `text,label` header, or
    an STS file (its sentences, labelled with the genre in the first field).

    Raises:
        SourceError: a missing file, a row without text or label, or fewer than two labels.
    """
    if not path.exists():
        raise SourceError(f"{path}: not found")
    texts: list[str] = []
    labels: list[str] = []
    with path.open(encoding="utf-8", newline="") as handle:
        first = handle.readline()
        handle.seek(0)
        if path.suffix in (".jsonl", ".json"):
            for line_no, line in enumerate(handle, start=1):
                if line.strip():
                    record = json.loads(line)
                    _append(texts, labels, record.get("text"), record.get("label"), path,
                            line_no)
        elif first.count("\t") >= 6 and not first.lower().startswith("text"):
            for line_no, line in enumerate(handle, start=1):  # STS: genre, …, s1, s2
                fields = line.rstrip("\n").split("\t")
                for sentence in fields[5:7]:
                    _append(texts, labels, sentence, fields[0], path, line_no)
        else:
            dialect = "excel-tab" if "\t" in first else "excel"
            for line_no, row in enumerate(csv.DictReader(handle, dialect=dialect), start=2):
                _append(texts, labels, row.get("text"), row.get("label"), path, line_no)
    if len(set(labels)) < 2:
        raise SourceError(f"{path}: a labelled set needs at least two labels, found "
                          f"{sorted(set(labels))}")
    return LabelledSet(path.name, texts, labels)


def _append(texts: list[str], labels: list[str], text: object, label: object, path: Path,
            line_no: int) -> None:
    if not isinstance(text, str) or not text.strip() or label in (None, ""):
        raise SourceError(f"{path}:{line_no}: expected a text and a label")
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
