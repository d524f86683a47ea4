"""Search latency where users wait: the pipeline vs raw hnswlib vs exact NumPy, and a cold CLI.

On a full-SciFact warehouse (built once per backend and reused): 300 SciFact queries through
(a) `Searcher.search` in-process, warm (model loaded, version open): embedding, ANN, titles and
snippets; (b) raw hnswlib `knn_query` on the same index file (query vectors precomputed);
(c) exact NumPy over the same vectors. p50/p95 and recall@10 (documents, against exact) of each.
Then `embedpipe search` from a shell, cold, per backend: wall time (median of 5).
Goals: warm p50 < 10 ms, p95 < 30 ms; cold CLI with an ONNX backend < 2 s.
Writes bench/results/search_latency.json.

    .venv/bin/python bench/search_latency.py [--warehouse-root DIR] [--backends torch,onnx-int8]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import DATA_DIR, ROOT, bench_parser, machine, scifact_dir, write_result

from flows.config import load_config
from flows.search import Searcher
from tasks.index.ann import ExactIndex
from warehouse.store import Warehouse


def warehouse_for(root: Path, backend: str) -> tuple[Warehouse, dict[str, float]]:
    """The full-SciFact warehouse of `backend` (built if missing) and its build's stage seconds
    (the tokenize + chunk share of embedding is read from them)."""
    path = root / f"scifact-{backend}"
    stages_file = path / "bench-stage-seconds.json"
    if not (path / "catalog.sqlite").exists():
        from prefect.testing.utilities import prefect_test_harness

        from flows.ingest import ingest_corpus

        print(f"building {path} (full SciFact, {backend}) ...", flush=True)
        with prefect_test_harness(server_startup_timeout=120):
            summary = ingest_corpus(str(DATA_DIR / "scifact" / "corpus.jsonl"), load_config(
                overrides={"warehouse.path": path, "embed.backend": backend,
                           "map.method": "off"}, environ={}))
        stages_file.write_text(json.dumps(summary.stage_seconds))
    stages = json.loads(stages_file.read_text()) if stages_file.exists() else {}
    return Warehouse(path), stages


def percentiles(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def in_process(wh: Warehouse, queries: list[str]) -> dict:
    searcher = Searcher(wh)
    searcher.search(queries[0])  # the model loads here
    indexed = searcher.indexed
    ann = indexed.index.ann
    vectors = searcher.embedder.encode(queries, 64)
    from tasks.index.storage import open_version_index

    exact_data = open_version_index(wh, searcher.version, with_vectors=True)
    exact = ExactIndex(exact_data.vectors, np.arange(len(exact_data.vectors)))
    timings: dict[str, list[float]] = {"pipeline": [], "hnswlib": [], "exact": []}
    results: dict[str, list[set[str]]] = {"pipeline": [], "hnswlib": [], "exact": []}
    doc_of_label = {}
    for row, label in enumerate(indexed.labels.tolist()):
        doc_of_label.setdefault(label, indexed.rows.doc_id[row])
    for query, vector in zip(queries, vectors, strict=True):
        started = time.perf_counter()
        hits = searcher.search(query, k=10)
        timings["pipeline"].append((time.perf_counter() - started) * 1e3)
        results["pipeline"].append({h.doc_id for h in hits})
        started = time.perf_counter()
        labels, _ = ann.index.knn_query(vector.reshape(1, -1), k=10)
        timings["hnswlib"].append((time.perf_counter() - started) * 1e3)
        results["hnswlib"].append({doc_of_label[int(x)] for x in labels[0]})
        started = time.perf_counter()
        labels, _ = exact.query(vector.reshape(1, -1), 10)
        timings["exact"].append((time.perf_counter() - started) * 1e3)
        results["exact"].append({doc_of_label[int(x)] for x in labels[0]})
    truth = results["exact"]
    return {name: {**percentiles(timings[name]), "recall@10_vs_exact": round(float(np.mean(
        [len(a & b) / max(len(b), 1) for a, b in zip(results[name], truth, strict=True)])), 4)}
        for name in timings}


def cold_cli(wh: Warehouse, query: str, runs: int = 5) -> dict:
    walls = []
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([str(Path(sys.executable).parent / "embedpipe"), "search", query,
                               "-k", "5", "--json", "--warehouse", str(wh.path)], env=env,
                              capture_output=True, text=True, cwd=ROOT)
        walls.append(time.perf_counter() - started)
        assert done.returncode == 0, done.stderr
    return {"median_seconds": round(statistics.median(walls), 3),
            "runs": [round(w, 3) for w in walls]}


def main() -> None:
    default_root = Path(os.environ.get("TMPDIR", "/tmp")) / "embedpipe-bench"
    args = bench_parser(__doc__, warehouse_root=default_root, backends="torch,onnx-int8",
                        queries=300).parse_args()
    # SciFact's queries (all 1,109, test ones included: latency does not need judgements).
    lines = (scifact_dir() / "queries.jsonl").read_text().splitlines()
    queries = [json.loads(line)["text"] for line in lines if line.strip()][: args.queries]
    result: dict = {"queries": len(queries), "backends": {}}
    for backend in args.backends.split(","):
        wh, stages = warehouse_for(args.warehouse_root, backend)
        warm = in_process(wh, queries)
        cold = cold_cli(wh, "vitamin D deficiency and bone density")
        share = round(stages["chunk"] / stages["embed"], 4) if stages.get("embed") else None
        result["backends"][backend] = {"in_process": warm, "cold_cli": cold,
                                       "ingest_stage_seconds": stages,
                                       "tokenize_chunk_share_of_embed": share}
        print(f"\n{backend}: {len(queries)} queries, warm in-process")
        for name, row in warm.items():
            print(f"  {name:9s} p50 {row['p50_ms']:8.3f} ms  p95 {row['p95_ms']:8.3f} ms  "
                  f"recall@10 vs exact {row['recall@10_vs_exact']:.4f}")
        print(f"  cold `embedpipe search`: {cold['median_seconds']:.2f} s (median of 5)")
        if share is not None:
            print(f"  ingest: tokenize + chunk {stages['chunk']:.1f} s = {share:.1%} of embed "
                  f"{stages['embed']:.1f} s (goal <= 10% with torch)")
    result["machine_at_end"] = machine()
    write_result("search_latency", result)


if __name__ == "__main__":
    main()
