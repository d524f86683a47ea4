"""The embed stage vs raw `SentenceTransformer.encode` on the same chunks, in one process.

Runs alternate (raw, stage, raw, stage, ...) so both see the same machine state; prints the
median tokens/s of each and their ratio (stage / raw; target >= 0.95).
Corpus: SciFact chunks when ../shared/data is present, else the stdlib demo corpus.
Usage: python bench/embed_throughput.py [--chunks N] [--rounds R]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from _common import bench_parser, scifact_corpus, write_result

from flows.demo import write_demo_corpus
from tasks.embed.base import EmbedConfig
from tasks.embed.embedding import embed_texts, load_embedder
from tasks.prep.chunk import ChunkConfig, chunk_documents
from tasks.prep.clean import CleanConfig, clean_documents
from tasks.prep.load import SourceConfig, load_source
from tasks.prep.tokenize import tokenize_documents


def sample_chunks(n: int, embedder) -> tuple[str, list[str], int]:
    source = scifact_corpus()
    if source is None:
        source = Path(tempfile.mkdtemp()) / "stdlib.jsonl"
        write_demo_corpus(source)
    docs = clean_documents(load_source(source, SourceConfig()).documents, CleanConfig()).documents
    docs = tokenize_documents(docs.slice(0, n), embedder.tokenizer)
    chunks = chunk_documents(docs, embedder.tokenizer, embedder.max_seq_length, ChunkConfig())
    chunks = chunks.slice(0, n)
    return source.name, chunks["text"].to_pylist(), sum(chunks["n_tokens"].to_pylist())


def main() -> None:
    args = bench_parser(__doc__, chunks=512, rounds=3,
                        batch_size=EmbedConfig().batch_size).parse_args()

    embedder = load_embedder(EmbedConfig(backend="torch"))  # the recorded results are torch fp32
    corpus, texts, tokens = sample_chunks(args.chunks, embedder)
    model = embedder.model  # type: ignore[attr-defined]
    model.encode(texts[:64], batch_size=args.batch_size)  # warm-up: first call pays allocation

    def raw() -> None:
        model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True,
                     convert_to_numpy=True, show_progress_bar=False)

    def stage() -> None:
        embed_texts(texts, embedder, args.batch_size)

    seconds: dict[str, list[float]] = {"raw_encode": [], "embed_stage": []}
    for _ in range(args.rounds):
        for name, fn in (("raw_encode", raw), ("embed_stage", stage)):
            started = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - started)
    tps = {name: tokens / statistics.median(s) for name, s in seconds.items()}
    ratio = tps["embed_stage"] / tps["raw_encode"]
    print(f"corpus {corpus}: {len(texts)} chunks, {tokens} tokens, {args.rounds} rounds")
    for name, value in tps.items():
        print(f"  {name:12s} {value:8.0f} tokens/s  (runs: "
              f"{', '.join(f'{s:.1f}s' for s in seconds[name])})")
    print(f"  ratio embed_stage / raw_encode = {ratio:.3f}  (target >= 0.95)")
    write_result("embed_throughput", {
        "corpus": corpus, "chunks": len(texts), "tokens": tokens, "rounds": args.rounds,
        "batch_size": args.batch_size, "seconds": seconds, "tokens_per_second": tps,
        "ratio": round(ratio, 4), "target": 0.95, "passed": ratio >= 0.95})


if __name__ == "__main__":
    main()
