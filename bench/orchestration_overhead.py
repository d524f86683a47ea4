"""What Prefect costs: the full ingest flow vs the same stage cores called directly.

Both ingest the same corpus into fresh warehouses in one process, model load included, in
alternating rounds (direct, flow, direct, flow, ...) after a warm-up flow, so neither pays for
Prefect's temporary API server start or first-run warm-up; medians are compared.
Target: flow / direct <= 1.15 on SciFact.
Usage: python bench/orchestration_overhead.py [--limit N] [--rounds R]
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from _common import scifact_parser, scifact_workspace, warm_up_prefect, write_result

from flows.config import EmbedpipeConfig, load_config
from flows.ingest import ingest_corpus
from tasks.embed import base as embed
from tasks.index.storage import build_version_index
from tasks.prep import chain as prep
from tasks.quality import scoring
from warehouse.plan import plan_ingest
from warehouse.reuse import missing_vectors
from warehouse.store import Warehouse
from warehouse.writer import Changes, VersionDraft, open_writer


def direct_ingest(source: Path, config: EmbedpipeConfig) -> int:
    """The ingest stages as plain function calls: no flow, no tasks."""
    warehouse = Warehouse(config.warehouse.path)
    corpus = prep.read_corpus(source, config.source, config.clean)
    embedder = embed.load_embedder(config.embed)
    chunking = prep.Chunking(config.chunk, embedder.max_seq_length)
    with open_writer(warehouse) as writer:
        plan = plan_ingest(writer, corpus.documents, embedder.fingerprint, chunking.record())
        docs, chunks = prep.chunk_corpus(corpus.documents, embedder.tokenizer, chunking)
        hashes, texts = missing_vectors(writer, chunks, embedder.fingerprint)
        vectors = embed.vectors_table(embedder.fingerprint, hashes, embed.embed_texts(
            texts, embedder, config.embed.batch_size))
        draft = VersionDraft(embedder.name, embedder.location, embedder.fingerprint,
                             embedder.dimension, chunking.record(), plan.corpus_fingerprint)
        version = writer.publish(draft, Changes(docs, chunks, plan.drop, vectors,
                                                corpus.quarantine))
        indexed, report = build_version_index(warehouse, version, config.index)
        writer.record_index(version.version_id, report.as_dict())
        rows = scoring.metric_rows(scoring.score_version(indexed, config.evaluate, embedder,
                                                         config.embed.batch_size))
        writer.record_metrics(version.version_id, rows)
        writer.promote(version.version_id)
    return version.n_chunks


def main() -> None:
    args = scifact_parser(__doc__, rounds=2).parse_args()
    source, work = scifact_workspace(args.limit, "embedpipe-overhead-")
    warm_up_prefect(work)
    seconds: dict[str, list[float]] = {"direct": [], "flow": []}
    chunks = 0
    for r in range(args.rounds):
        started = time.perf_counter()
        direct_ingest(source, load_config(overrides={"warehouse.path": work / f"direct{r}"},
                                          environ={}))
        seconds["direct"].append(time.perf_counter() - started)
        started = time.perf_counter()
        summary = ingest_corpus(str(source), load_config(
            overrides={"warehouse.path": work / f"flow{r}"}, environ={}))
        seconds["flow"].append(time.perf_counter() - started)
        chunks = summary.chunks
    median = {k: statistics.median(v) for k, v in seconds.items()}
    ratio = median["flow"] / median["direct"]
    print(f"corpus {source.name}: {chunks} chunks, {args.rounds} alternating rounds")
    for name in ("direct", "flow"):
        print(f"  {name:7s} median {median[name]:7.1f} s  (runs: "
              f"{', '.join(f'{x:.1f}' for x in seconds[name])})")
    print(f"  ratio flow/direct = {ratio:.3f} (target <= 1.15)")
    write_result("orchestration_overhead", {
        "corpus": source.name, "limit": args.limit, "chunks": chunks, "seconds": seconds,
        "median_seconds": median, "ratio": round(ratio, 4),
        "target": 1.15, "passed": ratio <= 1.15})


if __name__ == "__main__":
    main()
