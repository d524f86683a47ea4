"""Is the index's reported recall the recall users get? SciFact, default settings, no query set.

Ingests SciFact with the default config (or reuses --warehouse), then measures tie-aware
recall@10 against exact search at every ef of the ladder on three kinds of queries:
  real     SciFact's test queries, each embedded alone (what users send)
  probes   the query-like probes the index is tuned on (tasks/index/probes.py)
  chunks   a sample of the indexed chunk vectors (what the index was tuned on before)
and reports the ef the ingest chose, the recall the card reports, and the real queries' recall
at that ef. Goals: real >= 0.99 at the chosen ef; |card - real| <= 0.01.
Writes bench/results/index_recall.json.

    .venv/bin/python bench/index_recall.py [--warehouse DIR]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from _common import bench_parser, ingest_once, scifact_dir, write_result

from flows.config import load_config
from tasks.embed.embedding import version_embedder
from tasks.index.build import EF_LADDER, IndexConfig, measure_recall
from tasks.index.probes import embed_alone, probe_texts
from tasks.index.storage import open_version_index
from tasks.quality.evalsets import load_beir
from warehouse.store import Warehouse


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--warehouse", type=Path, default=None)
    args = parser.parse_args()
    scifact = scifact_dir()
    path = args.warehouse or Path(tempfile.mkdtemp(prefix="embedpipe-recall-"))
    config = load_config(overrides={"warehouse.path": path}, environ={})
    ingest_seconds = ingest_once(scifact / "corpus.jsonl", config)
    wh = Warehouse(config.warehouse.path)
    version = wh.versions()[-1]  # the newest, whether or not the gate let it in
    meta = version.index_meta
    indexed = open_version_index(wh, version, with_vectors=True)
    ann, vectors = indexed.index.ann, indexed.vectors
    labels = np.arange(len(vectors), dtype=np.int64)
    embedder = version_embedder(version)
    beir = load_beir(scifact)
    real = embed_alone([beir.queries[q] for q in sorted(beir.queries)], embedder)
    defaults = IndexConfig()
    texts = wh.chunks(version)["text"].to_pylist()
    probes = embed_alone(probe_texts(texts, defaults.sample_queries, defaults.seed), embedder)
    rng = np.random.default_rng(defaults.seed)
    chunks = vectors[np.sort(rng.choice(len(vectors), defaults.sample_queries, replace=False))]
    kinds = {"real": real, "probes": probes, "chunks": chunks}
    curve: dict[str, dict[int, float]] = {kind: {} for kind in kinds}
    for ef in EF_LADDER:
        ann.set_ef(ef)
        for kind, queries in kinds.items():
            curve[kind][ef] = round(measure_recall(ann, vectors, labels, queries, 10), 4)
    chosen = int(meta["ef"])
    reported = meta.get("heldout_recall") or meta["recall"]
    real_at_chosen = curve["real"][chosen]
    print(f"SciFact: {version.n_chunks} chunks ({len(vectors)} distinct), backend "
          f"{version.model_backend}; ef tuned on {meta.get('queries')}: {chosen}")
    print(f"  {'ef':>5s} " + " ".join(f"{k:>8s}" for k in kinds))
    for ef in EF_LADDER:
        mark = "  <- chosen" if ef == chosen else ""
        print(f"  {ef:5d} " + " ".join(f"{curve[k][ef]:8.4f}" for k in kinds) + mark)
    gap = reported - real_at_chosen
    print(f"card reports recall {meta['recall']} (held-out {meta.get('heldout_recall')}); real "
          f"queries at ef {chosen}: {real_at_chosen:.4f} (goal >= 0.99); card - real "
          f"{gap:+.4f} (goal within 0.01)")
    write_result("index_recall", {
        "chunks": version.n_chunks, "distinct": len(vectors), "backend": version.model_backend,
        "ingest_seconds": round(ingest_seconds, 1), "tuned_on": meta.get("queries"),
        "chosen_ef": chosen, "card_recall": meta["recall"],
        "card_heldout_recall": meta.get("heldout_recall"),
        "real_queries": len(real), "real_recall_at_chosen_ef": real_at_chosen,
        "card_minus_real": round(gap, 4),
        "recall_by_ef": {k: {str(ef): r for ef, r in c.items()} for k, c in curve.items()},
        "passed": real_at_chosen >= 0.99 and abs(gap) <= 0.01})


if __name__ == "__main__":
    main()
