"""What Prefect costs: the full ingest flow vs the same stage cores called directly.

Both runs ingest the same corpus into fresh warehouses in one process, model load included; the
flow runs after a warm-up flow so neither pays for Prefect's temporary API server start.
Target: flow / direct <= 1.15 on SciFact.
Usage: python bench/orchestration_overhead.py [--limit N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pyarrow as pa
from _common import first_lines, scifact_corpus, write_result

from flows.config import EmbedpipeConfig, load_config
from flows.ingest import ingest_corpus
from tasks import chunk, clean, embed, load, quality, store, tokenize
from warehouse.store import Warehouse
from warehouse.writer import VersionDraft, open_writer


def direct_ingest(source: Path, config: EmbedpipeConfig) -> int:
    """The ingest stages as plain function calls: no flow, no tasks."""
    warehouse = Warehouse(config.warehouse.path)
    loaded = load.load_source(source, config.source)
    cleaned = clean.clean_documents(loaded.documents, config.clean)
    embedder = embed.load_embedder(config.embed)
    chunker = {**config.chunk.model_dump(), "max_seq_length": embedder.max_seq_length}
    with open_writer(warehouse) as writer:
        plan = store.plan_ingest(writer, cleaned.documents, embedder.fingerprint, chunker)
        docs = tokenize.tokenize_documents(cleaned.documents, embedder.tokenizer)
        chunks = chunk.chunk_documents(docs, embedder.tokenizer, embedder.max_seq_length,
                                       config.chunk)
        hashes, texts = store.missing_vectors(writer, chunks, embedder.fingerprint)
        vectors = store.vectors_table(embedder.fingerprint, hashes,
                                      embed.embed_texts(texts, embedder, config.embed.batch_size))
        draft = VersionDraft(embedder.name, embedder.name, embedder.fingerprint,
                             embedder.dimension, chunker, plan.corpus_fingerprint)
        quarantine = pa.concat_tables([loaded.problems, cleaned.quarantine])
        version = store.publish(writer, draft, docs, chunks, plan, vectors, quarantine)
        report = store.build_version_index(warehouse, version, config.index)
        writer.record_index(version.version_id, report.as_dict())
        rows = quality.metric_rows(quality.evaluate_version(
            warehouse, version, embedder, config.evaluate, config.embed.batch_size))
        writer.record_metrics(version.version_id, rows)
        writer.promote(version.version_id)
    return version.n_chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=0, help="first N documents only")
    args = parser.parse_args()
    source = scifact_corpus()
    if source is None:
        print("skipped: SciFact not found (set EMBEDPIPE_DATA_DIR)")
        return
    work = Path(tempfile.mkdtemp(prefix="embedpipe-overhead-"))
    source = first_lines(source, args.limit, work)
    warm = work / "warm.jsonl"
    warm.write_text(json.dumps({"_id": "w", "text": "warm up the Prefect API server"}) + "\n")
    ingest_corpus(str(warm), load_config(overrides={"warehouse.path": work / "warm",
                                                    "embed.model": "hash"}, environ={}))
    seconds = {}
    started = time.perf_counter()
    n_direct = direct_ingest(source, load_config(overrides={"warehouse.path": work / "direct"},
                                                 environ={}))
    seconds["direct"] = time.perf_counter() - started
    started = time.perf_counter()
    summary = ingest_corpus(str(source), load_config(overrides={"warehouse.path": work / "flow"},
                                                     environ={}))
    seconds["flow"] = time.perf_counter() - started
    ratio = seconds["flow"] / seconds["direct"]
    print(f"corpus {source.name}: {summary.chunks} chunks (direct: {n_direct})")
    print(f"  direct cores {seconds['direct']:8.1f} s")
    print(f"  prefect flow {seconds['flow']:8.1f} s   ratio flow/direct = {ratio:.3f} "
          "(target <= 1.15)")
    write_result("orchestration_overhead", {
        "corpus": source.name, "chunks": summary.chunks, "seconds": seconds,
        "flow_stage_seconds": summary.stage_seconds, "ratio": round(ratio, 4),
        "target": 1.15, "passed": ratio <= 1.15})


if __name__ == "__main__":
    main()
