"""SciFact retrieval quality, several ways, measured in one run:

  (a) the pipeline: what `embedpipe search` returns (chunks -> vectors -> HNSW at the tuned ef,
      document = best chunk, the same fetch depth), scored as `evaluate` scores it
  (b) exact search over the same chunk vectors (the ceiling of (a))
  (c) exact search over whole documents, `title + " " + text` truncated by the model (MTEB's way)
  bm25 and hybrid: the same search path by words (DuckDB FTS) and fused by reciprocal rank

(a) and (b) are measured for the default backend (`auto`, as resolved on this machine) and for
torch fp32, each in its own warehouse ingested from the same corpus (the same chunks); (c), bm25
and hybrid with torch. Targets: default within 0.003 of torch on (a); |a - b| <= 0.002 and
a >= c - 0.005 on nDCG@10; hybrid >= a + 0.03. Published: MTEB ~0.645 for the model, BEIR paper
0.665 for BM25. The ingests' stage seconds are recorded (the map's share of embedding).
Usage: python bench/quality_scifact.py [--warehouse DIR]  (reuses DIR/<backend> if present)
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from _common import bench_parser, ingest_once, scifact_dir, write_result

from flows.config import load_config
from tasks.embed.backends.exports import export_root
from tasks.embed.backends.loader import load
from tasks.embed.base import EmbedConfig
from tasks.embed.embedding import embed_texts, load_embedder
from tasks.embed.selection import select
from tasks.index.ann import ExactIndex
from tasks.index.storage import open_version_index
from tasks.quality.base import Evaluation
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
    root = args.warehouse or Path(tempfile.mkdtemp(prefix="embedpipe-scifact-"))
    default = select(EmbedConfig(), load, export_root(None)).chosen  # what `auto` means here
    beir = load_beir(scifact)
    qids = sorted(beir.queries)
    results: dict[str, Evaluation] = {}
    ingests = {}
    for backend in dict.fromkeys([default, "torch"]):
        name = "" if backend == "torch" else f"[{backend}]"
        config = load_config(overrides={"warehouse.path": root / backend,
                                        "evaluate.beir": scifact}
                             | ({} if backend == default else {"embed.backend": backend}),
                             environ={})
        seconds = ingest_once(scifact / "corpus.jsonl", config)
        wh = Warehouse(config.warehouse.path)
        version = wh.version()
        ingests[backend] = {"seconds": round(seconds, 1),
                            "recorded_backend": version.model_backend, "chunks": version.n_chunks,
                            "stage_seconds": version.summary.get("stage_seconds", {}),
                            "index": version.index_meta}
        embedder = load_embedder(EmbedConfig(backend=backend))  # queries as the version's
        qvecs = embed_texts([beir.queries[q] for q in qids], embedder, 64)
        chunks = wh.chunk_map(version)
        chunk_doc = dict(zip(chunks["chunk_key"].to_pylist(), chunks["doc_id"].to_pylist(),
                             strict=True))
        keys, vectors = wh.vectors(version)
        # (a) what `embedpipe search` returns (same ef, same fetch depth), as `evaluate` scores
        # it; (b) exhaustive exact search over the same chunks: the ceiling of (a).
        indexed = open_version_index(wh, version, with_vectors=True)
        modes = ["vector", "bm25", "hybrid"] if backend == "torch" else ["vector"]
        scored = retrieval(indexed, EmbeddedQueries(beir, qids, qvecs), modes)
        results[f"a_pipeline_hnsw{name}"] = scored[0]
        if backend == "torch":
            results["bm25"], results["hybrid"] = scored[1], scored[2]
        results[f"b_exact_chunks{name}"] = evaluate_retrieval(
            "scifact", beir.qrels, qids, qvecs, ExactIndex(vectors, keys), chunk_doc)
        if backend == "torch":
            docs = [json.loads(line) for line in
                    (scifact / "corpus.jsonl").read_text().splitlines()]
            doc_vectors = embed_texts([(d["title"] + " " + d["text"]).strip() for d in docs],
                                      embedder, 64)
            results["c_exact_whole_docs"] = evaluate_retrieval(
                "scifact", beir.qrels, qids, qvecs,
                ExactIndex(doc_vectors, np.arange(len(docs))),
                {i: d["_id"] for i, d in enumerate(docs)})

    ndcg = {name: r.metrics["ndcg@10"] for name, r in results.items()}
    print(f"SciFact test ({len(qids)} queries, {len(docs)} documents; default backend {default})")
    for backend, ingest in ingests.items():
        stages = ingest["stage_seconds"]
        print(f"  ingest [{backend}]: {ingest['chunks']} chunks, ef={ingest['index'].get('ef')}, "
              f"embed {stages.get('embed', 0):.1f} s, map {stages.get('map', 0):.1f} s "
              f"({100 * stages.get('map', 0) / max(stages.get('embed', 1e-9), 1e-9):.1f}% of "
              f"embed)")
    print(f"  {'':30s} {'nDCG@10':>8s} {'recall@100':>10s} {'MRR@10':>8s}")
    for name, r in results.items():
        m = r.metrics
        print(f"  {name:30s} {m['ndcg@10']:8.4f} {m['recall@100']:10.4f} {m['mrr@10']:8.4f}")
    gap_ab = ndcg["a_pipeline_hnsw"] - ndcg["b_exact_chunks"]
    gap_ac = ndcg["a_pipeline_hnsw"] - ndcg["c_exact_whole_docs"]
    gap_default = ndcg.get(f"a_pipeline_hnsw[{default}]", ndcg["a_pipeline_hnsw"]) - ndcg[
        "a_pipeline_hnsw"]
    print(f"  default ({default}) - torch fp32 through the search path = {gap_default:+.4f} "
          "(target within 0.003)")
    print(f"  a - b = {gap_ab:+.4f} (target |a-b| <= 0.002)")
    print(f"  a - c = {gap_ac:+.4f} (target >= -0.005); published MTEB ~{PUBLISHED_NDCG}")
    gain = ndcg["hybrid"] - ndcg["a_pipeline_hnsw"]
    print(f"  hybrid - vector = {gain:+.4f} (target >= +0.03); BM25 alone {ndcg['bm25']:.4f} "
          f"(BEIR paper: {PUBLISHED_BM25})")
    write_result("quality_scifact", {
        "queries": len(qids), "documents": len(docs), "default_backend": default,
        "chunks": ingests["torch"]["chunks"], "index": ingests["torch"]["index"],
        "ingests": ingests, "metrics": {name: r.metrics for name, r in results.items()},
        "default_minus_torch": round(gap_default, 4),
        "a_minus_b": round(gap_ab, 4), "a_minus_c": round(gap_ac, 4),
        "hybrid_minus_vector": round(gain, 4), "published_bm25_ndcg@10": PUBLISHED_BM25,
        "published_mteb_ndcg@10": PUBLISHED_NDCG,
        "passed": abs(gap_default) <= 0.003 and abs(gap_ab) <= 0.002 and gap_ac >= -0.005})


if __name__ == "__main__":
    main()
