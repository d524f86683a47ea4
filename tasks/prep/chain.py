"""The one prep chain: load -> clean -> tokenize -> chunk, used by ingest, plan, monitor, retrain.

Two halves, because an ingest decides between them which documents need chunking at all:
`read_corpus` (load and clean: every input record kept, a duplicate naming its twin, or
quarantined) and `chunk_corpus` (token counts and token-budget chunks of the given documents).
`union` builds a retrain's corpus: the active version's documents with a new batch on top.

Pure cores over Arrow tables; the source path is the only I/O, in `tasks.prep.load`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tasks import UNKNOWN, report
from tasks.errors import EmptyCorpus
from tasks.prep import chunk, clean, load, tokenize
from tasks.prep.schema import CLEANED, DUPLICATE_REASONS, QUARANTINE


@dataclass(frozen=True)
class Corpus:
    """Cleaned documents of a source, what was rejected, and how many records came in."""

    source: str
    documents: pa.Table  # schema.CLEANED
    quarantine: pa.Table  # schema.QUARANTINE
    n_input: int

    @property
    def accounted(self) -> bool:
        return self.n_input == self.documents.num_rows + self.quarantine.num_rows

    def counts(self) -> CorpusCounts:
        """What reading found, in numbers (small: the run keeps it after the tables are gone)."""
        reasons = Counter(self.quarantine["reason"].to_pylist())
        exact, near = (reasons.pop(reason, 0) for reason in DUPLICATE_REASONS)
        problems = self.quarantine.filter(pc.invert(pc.is_in(
            self.quarantine["reason"], pa.array(DUPLICATE_REASONS)))).slice(0, MAX_PROBLEMS)
        return CorpusCounts(self.source, self.n_input, self.documents.num_rows, exact, near,
                            dict(sorted(reasons.items())), problems.to_pylist())


MAX_PROBLEMS = 20  # problem rows carried in the counts, for the CLI's warning lines


@dataclass(frozen=True)
class CorpusCounts:
    """Every input record of a source: kept, an exact or near duplicate, or quarantined."""

    source: str
    input_documents: int
    kept: int
    exact_duplicates: int
    near_duplicates: int
    quarantined_by_reason: dict[str, int]  # every rejection that is not a duplicate
    problems: list[dict[str, Any]]  # the first MAX_PROBLEMS of those, whole rows


@dataclass(frozen=True)
class Chunking:
    """How a version is chunked: the chunk config and the model's sequence limit."""

    config: chunk.ChunkConfig
    max_seq_length: int

    def record(self) -> dict[str, Any]:
        """As stored with a version (and compared to decide whether chunks can be kept)."""
        return {**self.config.model_dump(), "max_seq_length": self.max_seq_length}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Chunking:
        fields = {k: v for k, v in record.items() if k in chunk.ChunkConfig.model_fields}
        return cls(chunk.ChunkConfig(**fields), int(record.get("max_seq_length", 256)))


def read_corpus(source: Path, source_config: load.SourceConfig,
                clean_config: clean.CleanConfig) -> Corpus:
    """Load and clean every record of `source`, batch by batch (`source.batch_rows`).

    Memory holds the cleaned documents and the duplicate detector's compact arrays, never the
    raw source or per-document Python objects beyond one batch.

    Raises:
        SourceError: the source is missing or unreadable as a whole.
    """
    dedup, seen = clean.new_deduplicator(clean_config), clean.SeenIds()
    documents, problems, rejected, n_input = [], [], [], 0
    for batch in load.iter_source(source, source_config):  # source.batch_rows records each
        cleaned = clean.clean_documents(batch.documents, clean_config, dedup, seen)
        documents.append(cleaned.documents)
        problems.append(batch.problems)
        rejected.append(cleaned.quarantine)
        n_input += batch.num_records
        report("read", n_input, UNKNOWN)
    report("read", n_input, n_input)
    quarantine = pa.concat_tables([_concat(problems, QUARANTINE),
                                   _concat(rejected, QUARANTINE).sort_by([("source", "ascending"),
                                                                          ("row", "ascending")])])
    return Corpus(str(source), _concat(documents, CLEANED), quarantine, n_input)


def _concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables(tables) if tables else schema.empty_table()  # no copy


# Bumped when loading or cleaning changes what a source reads as: a source fingerprinted by an
# older embedpipe is then read again instead of being taken as unchanged.
READ_RULES = 1


def source_key(source: Path, source_config: load.SourceConfig,
               clean_config: clean.CleanConfig) -> str:
    """A fingerprint of what `read_corpus` would return, from the source's bytes and the read and
    clean settings alone (reading the bytes is ~100x cheaper than cleaning them).

    Raises:
        SourceError: as `read_corpus`.
    """
    settings = json.dumps([READ_RULES, source_config.model_dump(mode="json"),
                           clean_config.model_dump(mode="json")], sort_keys=True)
    digest = hashlib.sha256(load.source_digest(source, source_config).encode())
    return digest.hexdigest()[:16] + hashlib.sha256(settings.encode()).hexdigest()[:16]


def require_documents(corpus: Corpus) -> Corpus:
    """`corpus`, unless nothing in it survived loading and cleaning.

    Raises:
        EmptyCorpus: naming the source, how many records came in and why they went.
    """
    if corpus.documents.num_rows:
        return corpus
    reasons = Counter(corpus.quarantine["reason"].to_pylist())
    why = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common(3))
    first = corpus.quarantine.slice(0, 1).to_pylist()
    where = f"; first: line {first[0]['row']}: {first[0]['detail']}" if first else ""
    raise EmptyCorpus(f"{corpus.source}: no document survived loading and cleaning "
                      f"({corpus.n_input} records{': ' + why if why else ''}{where})")


# Documents tokenized and chunked at a time: the Python strings of one shard are alive at once,
# never those of the whole corpus (the results are Arrow tables, concatenated without copying).
SHARD_DOCUMENTS = 10_000


def chunk_corpus(documents: pa.Table, tokenizer: Any, chunking: Chunking
                 ) -> tuple[pa.Table, pa.Table]:
    """(documents with token counts, their chunks) for the given documents, shard by shard."""
    counted, chunks = [], []
    for start in range(0, max(documents.num_rows, 1), SHARD_DOCUMENTS):
        part = tokenize.tokenize_documents(documents.slice(start, SHARD_DOCUMENTS), tokenizer)
        counted.append(part)
        chunks.append(chunk.chunk_documents(part, tokenizer, chunking.max_seq_length,
                                            chunking.config))
    return pa.concat_tables(counted), pa.concat_tables(chunks)


def select(documents: pa.Table, doc_ids: list[str]) -> pa.Table:
    """The rows of `documents` whose id is in `doc_ids` (ids are unique)."""
    if len(doc_ids) == documents.num_rows:  # all of them: no copy
        return documents
    return documents.filter(pc.is_in(documents["doc_id"], pa.array(doc_ids, pa.string())))


def union(base: pa.Table, batch: Corpus) -> Corpus:
    """`base` documents (an active version's) with `batch` on top: same ids are replaced.

    A batch document whose cleaned text equals a base document under another id is an exact
    duplicate of it (quarantined, naming the twin), as it would be in a full ingest.
    Accounting: input = the base documents the batch did not replace + the batch's records.
    """
    base = base.select(CLEANED.names).cast(CLEANED)
    batch_ids = set(batch.documents["doc_id"].to_pylist())
    kept_base = base.filter(pc.invert(pc.is_in(base["doc_id"],
                                               pa.array(sorted(batch_ids), pa.string()))))
    twin_of = dict(zip(kept_base["content_hash"].to_pylist(), kept_base["doc_id"].to_pylist(),
                       strict=True))
    is_twin = [h in twin_of for h in batch.documents["content_hash"].to_pylist()]
    twins = batch.documents.filter(pa.array(is_twin, pa.bool_()))
    fresh = batch.documents.filter(pc.invert(pa.array(is_twin, pa.bool_())))
    duplicates = pa.Table.from_pylist([
        {"source": r["source"], "row": r["row"], "doc_id": r["doc_id"],
         "reason": "exact_duplicate", "detail": "same cleaned text as a document of the "
         "active version", "twin_doc_id": twin_of[r["content_hash"]]}
        for r in twins.to_pylist()], schema=batch.quarantine.schema)
    return Corpus(batch.source, pa.concat_tables([kept_base, fresh.cast(CLEANED)]),
                  pa.concat_tables([batch.quarantine, duplicates]),
                  kept_base.num_rows + batch.n_input)
