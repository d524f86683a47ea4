"""What float16 or int8 storage of the vectors costs in quality, and saves in bytes.

SciFact (test queries): every chunk vector of a full-SciFact warehouse stored in each precision
and read back (queries stay float32, as at search time); nDCG@10 of exact search, document =
best chunk. STS-B test: both sentences' vectors through storage; Spearman. Bytes per vector: the
codes themselves, and a Parquet file of the whole set in each encoding (zstd, as DuckLake
writes). Writes bench/results/precision.json.

    .venv/bin/python bench/precision.py [--warehouse DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _common import DATA_DIR, write_result

from flows.config import load_config
from tasks.embed.base import EmbedConfig
from tasks.embed.embedding import embed_texts, load_embedder
from tasks.index.ann import ExactIndex
from tasks.quality.evalsets import load_beir, load_sts
from tasks.quality.evaluate import evaluate_retrieval, evaluate_sts
from warehouse.codec import BYTES_PER_VALUE, encode, int8_scale, round_trip
from warehouse.store import Warehouse

DTYPES = ("float32", "float16", "int8")


def parquet_bytes(vectors: np.ndarray, dtype: str, scale: np.ndarray | None) -> int:
    n, d = vectors.shape
    if dtype == "float32":
        column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), d)
    else:
        column = pa.array(encode(vectors, dtype, scale), pa.binary())  # type: ignore[arg-type]
    path = Path(tempfile.mkdtemp()) / f"{dtype}.parquet"
    pq.write_table(pa.table({"vector": column}), path, compression="zstd")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warehouse", type=Path,
                        default=Path("/tmp/embedpipe-bench/scifact-quality"))
    args = parser.parse_args()
    scifact, stsb = DATA_DIR / "scifact", DATA_DIR / "stsb" / "sts-test.csv"
    if not (scifact / "corpus.jsonl").exists() or not stsb.exists():
        print(f"skipped: SciFact or STS-B not found under {DATA_DIR}")
        return
    wh = Warehouse(args.warehouse)
    if not wh.exists():
        from prefect.testing.utilities import prefect_test_harness

        from flows.ingest import ingest_corpus

        with prefect_test_harness(server_startup_timeout=120):
            ingest_corpus(str(scifact / "corpus.jsonl"), load_config(
                overrides={"warehouse.path": args.warehouse, "map.method": "off"},
                environ={}))
    version = wh.version()
    keys, chunk_vectors = wh.vectors(version)
    chunks = wh.chunk_map(version)
    chunk_doc = dict(zip(chunks["chunk_key"].to_pylist(), chunks["doc_id"].to_pylist(),
                         strict=True))
    embedder = load_embedder(EmbedConfig(backend="torch"))
    beir = load_beir(scifact)
    qids = sorted(beir.queries)
    queries = embed_texts([beir.queries[q] for q in qids], embedder, 64)
    sts = load_sts(stsb)
    s1 = embed_texts(sts.sentences1, embedder, 64)
    s2 = embed_texts(sts.sentences2, embedder, 64)
    scale = int8_scale(chunk_vectors)
    rows = {}
    for dtype in DTYPES:
        stored = round_trip(chunk_vectors, dtype, scale)  # type: ignore[arg-type]
        ndcg = evaluate_retrieval("scifact", beir.qrels, qids, queries,
                                  ExactIndex(stored, keys), chunk_doc).metrics["ndcg@10"]
        sts_scale = int8_scale(np.vstack([s1, s2]))
        spearman = evaluate_sts("sts", round_trip(s1, dtype, sts_scale),  # type: ignore[arg-type]
                                round_trip(s2, dtype, sts_scale),  # type: ignore[arg-type]
                                sts.scores).metrics["spearman"]
        rows[dtype] = {"bytes_per_vector": chunk_vectors.shape[1] * BYTES_PER_VALUE[dtype],
                       "parquet_bytes_per_vector": round(parquet_bytes(
                           chunk_vectors, dtype, scale) / len(chunk_vectors), 1),
                       "ndcg@10": round(ndcg, 4), "sts_spearman": round(spearman, 4)}
    for dtype in DTYPES:
        rows[dtype]["ndcg_loss"] = round(rows["float32"]["ndcg@10"] - rows[dtype]["ndcg@10"], 4)
        rows[dtype]["spearman_loss"] = round(rows["float32"]["sts_spearman"]
                                             - rows[dtype]["sts_spearman"], 4)
    print(f"{len(chunk_vectors)} SciFact chunk vectors, {len(qids)} queries; "
          f"{len(sts.scores)} STS-B pairs")
    print(f"{'dtype':8s} {'bytes':>6s} {'parquet':>8s} {'nDCG@10':>8s} {'loss':>7s} "
          f"{'Spearman':>9s} {'loss':>7s}")
    for dtype, row in rows.items():
        print(f"{dtype:8s} {row['bytes_per_vector']:6d} {row['parquet_bytes_per_vector']:8.1f} "
              f"{row['ndcg@10']:8.4f} {row['ndcg_loss']:+7.4f} {row['sts_spearman']:9.4f} "
              f"{row['spearman_loss']:+7.4f}")
    write_result("precision", {"vectors": len(chunk_vectors), "dtypes": rows})


if __name__ == "__main__":
    main()
