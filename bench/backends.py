"""Embedding backends side by side: speed, share of the machine's compute limit, agreement, quality.

On the same SciFact chunks (2,000 by default), in alternating rounds within one run, for torch,
onnx, onnx-int8 and openvino: tokens/s, the ratio to torch fp32, the share of the compute limit
(fp32 GEMM GFLOP/s measured in this run x FLOPs per token of the model at the batches' mean
length), and mean/min cosine to torch. Then nDCG@10 on SciFact test queries per backend (exact
search over whole documents, as MTEB scores the model). Goals: fp32 ONNX/OpenVINO at >= 80% of
the limit; int8 >= 1.8x torch with nDCG@10 within 0.005 of fp32. Writes
bench/results/backends.json.

    .venv/bin/python bench/backends.py [--chunks 2000] [--rounds 3] [--no-ndcg]
"""

from __future__ import annotations

import json
import time

import numpy as np
from _common import DATA_DIR, bench_parser, machine, scifact_dir, write_result

from tasks.embed.base import EmbedConfig
from tasks.embed.embedding import embed_texts, load_embedder
from tasks.embed.selection import (
    MIN_COSINE,
    MIN_INVARIANCE,
    calibration_texts,
    candidates,
    cpu_flags,
    cuda_available,
    invariance,
)
from tasks.index.ann import ExactIndex
from tasks.prep.chunk import ChunkConfig, chunk_documents
from tasks.prep.tokenize import tokenize_documents
from tasks.quality.evalsets import load_beir
from tasks.quality.evaluate import evaluate_retrieval


def sample_chunks(n: int, tokenizer) -> list[str]:
    import pyarrow as pa

    docs = [json.loads(line) for line in (DATA_DIR / "scifact" / "corpus.jsonl").open()]
    table = pa.table({"doc_id": [d["_id"] for d in docs],
                      "text": [f"{d['title']}\n\n{d['text']}" for d in docs]})
    chunks = chunk_documents(tokenize_documents(table, tokenizer), tokenizer, 256, ChunkConfig())
    return chunks["text"].to_pylist()[:n]


def gemm_gflops(threads: int = 2, size: int = 1024, repeats: int = 20) -> float:
    """fp32 matrix multiply throughput of this machine now (torch, `threads` threads)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size ** 3 * repeats / best / 1e9


def flops_per_token(config, mean_length: float) -> float:
    """Matmul FLOPs of one token through a BERT encoder (weights and attention)."""
    d, ffn, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    weights = layers * (4 * d * d + 2 * d * ffn)
    attention = layers * 4 * mean_length * d
    return 2 * weights + attention


def main() -> None:
    parser = bench_parser(__doc__, chunks=2000, rounds=3)
    parser.add_argument("--no-ndcg", action="store_true")
    args = parser.parse_args()
    scifact_dir()  # skips the benchmark when SciFact is absent
    BACKENDS = candidates(cpu_flags(), cuda_available())  # noqa: N806 - what auto measures here
    embedders = {b: load_embedder(EmbedConfig(backend=b)) for b in BACKENDS}  # exports built
    torch_model = embedders["torch"]
    texts = sample_chunks(args.chunks, torch_model.tokenizer)
    lengths = [len(ids) for ids in torch_model.tokenizer(texts, truncation=True,
                                                         max_length=256)["input_ids"]]
    tokens = int(sum(lengths))
    seconds: dict[str, list[float]] = {b: [] for b in BACKENDS}
    vectors: dict[str, np.ndarray] = {}
    gflops = []
    for r in range(args.rounds):
        gflops.append(gemm_gflops())
        order = BACKENDS[r % len(BACKENDS):] + BACKENDS[:r % len(BACKENDS)]  # rotate
        for backend in order:
            started = time.perf_counter()
            vectors[backend] = embed_texts(texts, embedders[backend], 64)
            seconds[backend].append(time.perf_counter() - started)
        print(f"round {r + 1}: " + ", ".join(f"{b} {seconds[b][-1]:.1f} s" for b in BACKENDS))
    per_token = flops_per_token(torch_model.model[0].auto_model.config, float(np.mean(lengths)))
    limit = float(np.median(gflops)) * 1e9 / per_token  # tokens/s at the fp32 GEMM rate
    rows = {}
    for backend in BACKENDS:
        speed = tokens / float(np.median(seconds[backend]))
        cos = np.sum(vectors[backend] * vectors["torch"], axis=1)
        rows[backend] = {"tokens_per_second": round(speed), "ratio_to_torch": round(
            float(np.median(seconds["torch"])) / float(np.median(seconds[backend])), 3),
            "share_of_fp32_limit": round(speed / limit, 3),
            "cosine_mean": round(float(cos.mean()), 5), "cosine_min": round(float(cos.min()), 5),
            "seconds": [round(s, 2) for s in seconds[backend]],
            "batch_invariance_min": round(invariance(embedders[backend], calibration_texts(),
                                                     16), 6)}
    if not args.no_ndcg:
        for backend in BACKENDS:
            rows[backend]["ndcg@10"] = scifact_ndcg(embedders[backend])
    print(f"\n{args.chunks} SciFact chunks, {tokens} tokens (mean {np.mean(lengths):.0f}), "
          f"{args.rounds} rounds; fp32 GEMM {np.median(gflops):.0f} GFLOP/s, "
          f"{per_token / 1e6:.1f} MFLOP/token: limit {limit:.0f} tokens/s")
    print(f"{'backend':10s} {'tok/s':>7s} {'x torch':>8s} {'% limit':>8s} {'cos mean':>9s} "
          f"{'cos min':>8s} {'nDCG@10':>8s}")
    for backend, row in rows.items():
        print(f"{backend:10s} {row['tokens_per_second']:7d} {row['ratio_to_torch']:8.2f} "
              f"{100 * row['share_of_fp32_limit']:7.0f}% {row['cosine_mean']:9.5f} "
              f"{row['cosine_min']:8.5f} {row.get('ndcg@10', float('nan')):8.4f}")
    fastest = max((b for b in BACKENDS if rows[b]["cosine_min"] >= (
        0.98 if b == "onnx-int8" else 0.99) and ("ndcg@10" not in rows[b] or abs(
            rows[b]["ndcg@10"] - rows["torch"]["ndcg@10"]) <= 0.005)),
        key=lambda b: rows[b]["tokens_per_second"])
    print(f"fastest within the quality bound: {fastest}")
    faithful = [b for b in BACKENDS if rows[b]["cosine_min"] >= MIN_COSINE
                and rows[b]["batch_invariance_min"] >= MIN_INVARIANCE]
    fastest_faithful = max(faithful, key=lambda b: rows[b]["tokens_per_second"])
    from tasks.embed.backends.exports import export_root
    from tasks.embed.backends.loader import load
    from tasks.embed.selection import select

    chosen = select(EmbedConfig(), load, export_root(None)).chosen
    print(f"fastest faithful (cosine >= {MIN_COSINE}, invariance >= {MIN_INVARIANCE}): "
          f"{fastest_faithful}; auto chose {chosen}; CPU flags {', '.join(cpu_flags())}")
    write_result("backends", {"chunks": args.chunks, "tokens": tokens, "rounds": args.rounds,
                              "gemm_gflops": [round(g, 1) for g in gflops],
                              "mflop_per_token": round(per_token / 1e6, 2),
                              "limit_tokens_per_second": round(limit), "backends": rows,
                              "fastest_within_bound": fastest,
                              "fastest_faithful": fastest_faithful, "auto_chose": chosen,
                              "cpu_flags": cpu_flags(), "machine_at_start": machine()})


def scifact_ndcg(embedder) -> float:
    """nDCG@10 on SciFact test: whole documents (title + text, truncated), exact search."""
    scifact = DATA_DIR / "scifact"
    docs = [json.loads(line) for line in (scifact / "corpus.jsonl").open()]
    beir = load_beir(scifact)
    qids = sorted(beir.queries)
    doc_vectors = embed_texts([f"{d['title']} {d['text']}".strip() for d in docs], embedder, 64)
    query_vectors = embed_texts([beir.queries[q] for q in qids], embedder, 64)
    result = evaluate_retrieval("scifact", beir.qrels, qids, query_vectors,
                                ExactIndex(doc_vectors, np.arange(len(docs))),
                                {i: d["_id"] for i, d in enumerate(docs)})
    return round(result.metrics["ndcg@10"], 4)


if __name__ == "__main__":
    main()
