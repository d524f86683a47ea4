"""SciFact retrieval quality, several ways, measured in one run:

  (a) the pipeline: what `embedpipe search` returns (chunks -> vectors -> HNSW at the tuned ef,
      document = best chunk, the same fetch depth), scored as `evaluate` scores it
  (b) exact search over the same chunk vectors (the ceiling of (a))
  (c) exact search over whole documents, `title + " " + text` truncated by the model (MTEB's way)
  bm25 and hybrid: the same search path by words (DuckDB FTS) and fused by reciprocal rank

Targets: |a - b| <= 0.002 and a >= c - 0.005 on nDCG@10; hybrid >= a + 0.03. Published:
MTEB ~0.645 for the model, BEIR paper 0.665 for BM25.
Usage: python bench/quality_scifact.py [--warehouse DIR]  (reuses DIR if it already holds SciFact)
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import bench_parser, scifact_dir, write_result

from flows.config import load_config
from tasks.embed.base import EmbedConfig
from tasks.embed.embedding import embed_texts, load_embedder
from tasks.index.ann import ExactIndex
from tasks.index.storage import open_version_index
from tasks.quality.evalsets import load_beir
from tasks.quality.evaluate import evaluate_retrieval
from tasks.quality.scoring import EmbeddedQueries, retrieval
from warehouse.store import Warehouse

PUBLISHED_NDCG = 0.645
PUBLISHED_BM25 = 0.665


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--warehouse", type=Path, default=None)
    args = parser.parse_args()
    scifact = scifact_dir()
    wh_path = args.warehouse or Path(tempfile.mkdtemp(prefix="embedpipe-scifact-"))
    config = load_config(overrides={"warehouse.path": wh_path, "evaluate.beir": scifact,
                                    "embed.backend": "torch"}, environ={})
    wh = Warehouse(config.warehouse.path)
    started = time.perf_counter()
    if not wh.exists():
        from flows.ingest import ingest_corpus

        ingest_corpus(str(scifact / "corpus.jsonl"), config)
    ingest_seconds = time.perf_counter() - started
    version = wh.version()
    embedder = load_embedder(EmbedConfig(backend="torch"))  # the recorded results are torch fp32
    beir = load_beir(scifact)
    qids = sorted(beir.queries)
    qvecs = embed_texts([beir.queries[q] for q in qids], embedder, 64)
    chunks = wh.chunk_map(version)
    chunk_doc = dict(zip(chunks["chunk_key"].to_pylist(), chunks["doc_id"].to_pylist(),
                         strict=True))
    keys, vectors = wh.vectors(version)

    # (a) what `embedpipe search` returns (same ef, same fetch depth), as `evaluate` scores it;
    # (b) exhaustive exact search over the same chunks: the ceiling of (a).
    indexed = open_version_index(wh, version, with_vectors=True)
    search_path, bm25, hybrid, _ = retrieval(indexed, EmbeddedQueries(beir, qids, qvecs),
                                             ["vector", "bm25", "hybrid"])
    results = {
        "a_pipeline_hnsw": search_path, "bm25": bm25, "hybrid": hybrid,
        "b_exact_chunks": evaluate_retrieval("scifact", beir.qrels, qids, qvecs,
                                             ExactIndex(vectors, keys), chunk_doc),
    }
    docs = [json.loads(line) for line in (scifact / "corpus.jsonl").read_text().splitlines()]
    doc_vectors = embed_texts([(d["title"] + " " + d["text"]).strip() for d in docs],
                              embedder, 64)
    results["c_exact_whole_docs"] = evaluate_retrieval(
        "scifact", beir.qrels, qids, qvecs, ExactIndex(doc_vectors, np.arange(len(docs))),
        {i: d["_id"] for i, d in enumerate(docs)})

    ndcg = {name: r.metrics["ndcg@10"] for name, r in results.items()}
    print(f"SciFact test ({len(qids)} queries, {len(docs)} documents, {len(keys)} chunks, "
          f"index ef={version.index_meta.get('ef')})")
    print(f"  {'':22s} {'nDCG@10':>8s} {'recall@100':>10s} {'MRR@10':>8s}")
    for name, r in results.items():
        m = r.metrics
        print(f"  {name:22s} {m['ndcg@10']:8.4f} {m['recall@100']:10.4f} {m['mrr@10']:8.4f}")
    gap_ab = ndcg["a_pipeline_hnsw"] - ndcg["b_exact_chunks"]
    gap_ac = ndcg["a_pipeline_hnsw"] - ndcg["c_exact_whole_docs"]
    print(f"  a - b = {gap_ab:+.4f} (target |a-b| <= 0.002)")
    print(f"  a - c = {gap_ac:+.4f} (target >= -0.005); published MTEB ~{PUBLISHED_NDCG}")
    gain = ndcg["hybrid"] - ndcg["a_pipeline_hnsw"]
    print(f"  hybrid - vector = {gain:+.4f} (target >= +0.03); BM25 alone {ndcg['bm25']:.4f} "
          f"(BEIR paper: {PUBLISHED_BM25})")
    write_result("quality_scifact", {
        "queries": len(qids), "documents": len(docs), "chunks": len(keys),
        "index": version.index_meta, "ingest_seconds": round(ingest_seconds, 1),
        "metrics": {name: r.metrics for name, r in results.items()},
        "a_minus_b": round(gap_ab, 4), "a_minus_c": round(gap_ac, 4),
        "hybrid_minus_vector": round(gain, 4), "published_bm25_ndcg@10": PUBLISHED_BM25,
        "published_mteb_ndcg@10": PUBLISHED_NDCG,
        "passed": abs(gap_ab) <= 0.002 and gap_ac >= -0.005})


if __name__ == "__main__":
    main()
