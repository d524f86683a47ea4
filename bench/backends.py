"""Embedding backends side by side: speed, share of the machine's compute limit, agreement, quality.

On the same SciFact chunks (2,000 by default), in alternating rounds within one run, for every
backend `auto` measures on this machine (plus onnx-int8): tokens/s, the ratio to torch fp32, the
share of the compute limit *for the precision the backend computes in* (the fastest GEMM of
that precision measured in this run -- fp32, bf16 or int8 -- divided by the model's FLOPs per
token at the batches' mean length), mean/min cosine to torch and batch invariance. Then nDCG@10
on SciFact test queries per backend (exact search over whole documents, as MTEB scores the
model), which backend `auto` chose, and the embed *stage* of a real ingest of the documents
behind those chunks with `auto`: its tokens/s against the chosen backend's raw tokens/s here
(goal >= 0.9). Writes bench/results/backends.json with the CPU flags.

    .venv/bin/python bench/backends.py [--chunks 2000] [--rounds 3] [--no-ndcg] [--no-stage]
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
    native_bf16,
)
from tasks.index.ann import ExactIndex
from tasks.prep.chunk import ChunkConfig, chunk_documents
from tasks.prep.tokenize import tokenize_documents
from tasks.quality.evalsets import load_beir
from tasks.quality.evaluate import evaluate_retrieval


def sample_chunks(n: int, tokenizer) -> tuple[list[str], list[dict]]:
    """The first `n` chunks of SciFact and the documents they come from."""
    import pyarrow as pa

    docs = [json.loads(line) for line in (DATA_DIR / "scifact" / "corpus.jsonl").open()]
    table = pa.table({"doc_id": [d["_id"] for d in docs],
                      "text": [f"{d['title']}\n\n{d['text']}" for d in docs]})
    chunks = chunk_documents(tokenize_documents(table, tokenizer), tokenizer, 256, ChunkConfig())
    used = set(chunks["doc_id"].to_pylist()[:n])
    return chunks["text"].to_pylist()[:n], [d for d in docs if d["_id"] in used]


def precision(backend: str, flags: list[str]) -> str:
    """The precision a backend's matrix multiplies run in on this CPU."""
    if backend == "torch-bf16" or (backend == "openvino" and native_bf16(flags)):
        return "bf16"  # OpenVINO's default inference precision is bf16 where the CPU has it
    return {"onnx-int8": "int8", "cuda-fp16": "fp16-cuda"}.get(backend, "fp32")


def gemm_gflops(dtype: str, threads: int = 2, size: int = 1024, repeats: int = 20) -> float:
    """Matrix multiply throughput of this machine now in `dtype` (torch, `threads` threads);
    0 where torch has no such CPU kernel."""
    import torch

    torch.set_num_threads(threads)
    if dtype == "int8":
        a = torch.randint(-128, 127, (size, size), dtype=torch.int8)
        b = torch.randint(-128, 127, (size, size), dtype=torch.int8)
        multiply = torch._int_mm  # int8 x int8 -> int32 (oneDNN: VNNI / AMX-int8 where present)
    else:
        kind = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
        a, b = torch.randn(size, size).to(kind), torch.randn(size, size).to(kind)
        multiply = torch.matmul
    try:
        for _ in range(3):
            multiply(a, b)
    except RuntimeError:
        return 0.0
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeats):
            multiply(a, b)
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
    parser.add_argument("--no-stage", action="store_true")
    args = parser.parse_args()
    scifact_dir()  # skips the benchmark when SciFact is absent
    BACKENDS = candidates(cpu_flags(), cuda_available())  # noqa: N806 - what auto measures here
    embedders = {b: load_embedder(EmbedConfig(backend=b)) for b in BACKENDS}  # exports built
    torch_model = embedders["torch"]
    texts, docs = sample_chunks(args.chunks, torch_model.tokenizer)
    flags = cpu_flags()
    precisions = sorted({precision(b, flags) for b in BACKENDS} - {"fp16-cuda"})
    lengths = [len(ids) for ids in torch_model.tokenizer(texts, truncation=True,
                                                         max_length=256)["input_ids"]]
    tokens = int(sum(lengths))
    seconds: dict[str, list[float]] = {b: [] for b in BACKENDS}
    vectors: dict[str, np.ndarray] = {}
    gflops: dict[str, list[float]] = {p: [] for p in precisions}
    for r in range(args.rounds):
        for p in precisions:
            gflops[p].append(gemm_gflops(p))
        order = BACKENDS[r % len(BACKENDS):] + BACKENDS[:r % len(BACKENDS)]  # rotate
        for backend in order:
            started = time.perf_counter()
            vectors[backend] = embed_texts(texts, embedders[backend], 64)
            seconds[backend].append(time.perf_counter() - started)
        print(f"round {r + 1}: " + ", ".join(f"{b} {seconds[b][-1]:.1f} s" for b in BACKENDS))
    per_token = flops_per_token(torch_model.model[0].auto_model.config, float(np.mean(lengths)))
    # tokens/s the model would reach at each precision's GEMM rate: the ceiling of a backend
    limits = {p: float(np.median(g)) * 1e9 / per_token for p, g in gflops.items()}
    rows = {}
    for backend in BACKENDS:
        speed = tokens / float(np.median(seconds[backend]))
        cos = np.sum(vectors[backend] * vectors["torch"], axis=1)
        kind = precision(backend, flags)
        rows[backend] = {"tokens_per_second": round(speed), "ratio_to_torch": round(
            float(np.median(seconds["torch"])) / float(np.median(seconds[backend])), 3),
            "precision": kind, "limit_tokens_per_second": round(limits[kind]) if limits.get(
                kind) else None,
            "share_of_limit": round(speed / limits[kind], 3) if limits.get(kind) else None,
            "cosine_mean": round(float(cos.mean()), 5), "cosine_min": round(float(cos.min()), 5),
            "seconds": [round(s, 2) for s in seconds[backend]],
            "batch_invariance_min": round(invariance(embedders[backend], calibration_texts(),
                                                     16), 6)}
    if not args.no_ndcg:
        for backend in BACKENDS:
            rows[backend]["ndcg@10"] = scifact_ndcg(embedders[backend])
    print(f"\n{args.chunks} SciFact chunks, {tokens} tokens (mean {np.mean(lengths):.0f}), "
          f"{args.rounds} rounds; {per_token / 1e6:.1f} MFLOP/token; GEMM " + ", ".join(
              f"{p} {np.median(g):.0f} GFLOP/s (limit {limits[p]:.0f} tok/s)"
              for p, g in gflops.items()))
    print(f"{'backend':14s} {'prec':>5s} {'tok/s':>7s} {'x torch':>8s} {'% limit':>8s} "
          f"{'cos mean':>9s} {'cos min':>8s} {'invar':>9s} {'nDCG@10':>8s}")
    for backend, row in rows.items():
        share = row["share_of_limit"]
        print(f"{backend:14s} {row['precision']:>5s} {row['tokens_per_second']:7d} "
              f"{row['ratio_to_torch']:8.2f} "
              f"{'-' if share is None else f'{100 * share:.0f}%':>8s} {row['cosine_mean']:9.5f} "
              f"{row['cosine_min']:8.5f} {row['batch_invariance_min']:9.6f} "
              f"{row.get('ndcg@10', float('nan')):8.4f}")
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
          f"{fastest_faithful}; auto chose {chosen}; CPU flags {', '.join(flags)}")
    stage = None if args.no_stage else stage_throughput(docs, rows[chosen]["tokens_per_second"])
    write_result("backends", {"chunks": args.chunks, "tokens": tokens, "rounds": args.rounds,
                              "gemm_gflops": {p: [round(x, 1) for x in g]
                                              for p, g in gflops.items()},
                              "mflop_per_token": round(per_token / 1e6, 2),
                              "limit_tokens_per_second": {p: round(v) for p, v in limits.items()},
                              "backends": rows, "fastest_within_bound": fastest,
                              "fastest_faithful": fastest_faithful, "auto_chose": chosen,
                              "auto_is_fastest_faithful": chosen == fastest_faithful,
                              "embed_stage": stage,
                              "cpu_flags": flags, "machine_at_start": machine()})


def stage_throughput(docs: list[dict], raw: float) -> dict:
    """The embed stage of a real ingest (default config: `auto`) of `docs`: its tokens/s (the run
    summary's tokens embedded / embed seconds) against `raw`, the chosen backend's bare
    tokens/s measured above on the chunks of the same documents."""
    import tempfile
    from pathlib import Path

    from flows.config import load_config
    from flows.ingest import ingest_corpus

    work = Path(tempfile.mkdtemp(prefix="embedpipe-stage-"))
    corpus = work / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": d["_id"], "title": d["title"], "text": d["text"]})
                              + "\n" for d in docs))
    config = load_config(overrides={"warehouse.path": work / "wh"}, environ={})
    summary = ingest_corpus(str(corpus), config)
    seconds = summary.stage_seconds["embed"]
    speed = summary.tokens_embedded / seconds
    print(f"embed stage of an ingest ({len(docs)} documents, {summary.vectors_embedded} chunks, "
          f"{summary.tokens_embedded} tokens, auto): {seconds:.1f} s, {speed:,.0f} tokens/s = "
          f"{speed / raw:.2f}x the raw {raw:,.0f} (goal >= 0.9); stages {summary.stage_seconds}")
    return {"documents": len(docs), "chunks": summary.vectors_embedded,
            "tokens": summary.tokens_embedded, "seconds": round(seconds, 2),
            "tokens_per_second": round(speed), "raw_tokens_per_second": round(raw),
            "ratio_to_raw": round(speed / raw, 3), "stage_seconds": summary.stage_seconds}


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
