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
