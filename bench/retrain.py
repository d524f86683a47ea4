"""Does the mined evaluation set judge retrained models the way real relevance judgements do?

On SciFact: the inverse-cloze set mined from the corpus (`tasks/quality/mined.py`, what a retrain
uses when no labelled set is configured) and SciFact's real test qrels each score the active model
(all-MiniLM-L6-v2) and three candidates: a re-embed (the same model), a fine-tune on pairs mined
from the corpus (held-out documents excluded), and a fine-tune that breaks the model (a learning
rate far too high). For each candidate: the nDCG@10 delta against the active model on both sets and
whether the two verdicts (better / not better) agree; over all candidates, the rank correlation of
the two sets' scores. Writes bench/results/retrain.json.

    .venv/bin/python bench/retrain.py [--steps 40] [--mined-queries 200]
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from _common import bench_parser, scifact_dir, write_result

from tasks.embed.base import EmbedConfig
from tasks.embed.embedding import embed_texts, load_embedder
from tasks.index.ann import ExactIndex
from tasks.prep import chain as prep
from tasks.prep.chunk import ChunkConfig
from tasks.prep.clean import CleanConfig
from tasks.prep.load import SourceConfig
from tasks.quality.evalsets import load_beir
from tasks.quality.evaluate import evaluate_retrieval
from tasks.quality.mined import evaluate_mined, mine
from tasks.train import finetune


def real_ndcg(embedder, docs: list[dict], beir) -> float:
    qids = sorted(beir.queries)
    doc_vectors = embed_texts([f"{d['title']} {d['text']}".strip() for d in docs], embedder, 64)
    query_vectors = embed_texts([beir.queries[q] for q in qids], embedder, 64)
    return evaluate_retrieval("scifact", beir.qrels, qids, query_vectors,
                              ExactIndex(doc_vectors, np.arange(len(docs))),
                              {i: d["_id"] for i, d in enumerate(docs)}).metrics["ndcg@10"]


def main() -> None:
    args = bench_parser(__doc__, steps=40, mined_queries=200, mined_distractors=1000).parse_args()
    scifact = scifact_dir()
    docs = [json.loads(line) for line in (scifact / "corpus.jsonl").open()]
    beir = load_beir(scifact)
    corpus = prep.read_corpus(scifact / "corpus.jsonl", SourceConfig(), CleanConfig())
    mined = mine(corpus.documents, args.mined_queries, args.mined_distractors, seed=0)
    active = load_embedder(EmbedConfig(backend="torch"))  # fine-tuning trains torch models
    work = Path(tempfile.mkdtemp(prefix="embedpipe-retrain-"))
    chunking = prep.Chunking(ChunkConfig(), active.max_seq_length)
    documents, chunks = prep.chunk_corpus(corpus.documents, active.tokenizer, chunking)
    pairs = finetune.mine_pairs(documents, chunks, 5000, 0, exclude=set(mined.held_out))
    candidates = {"reembed": None,
                  "finetune": finetune.RetrainConfig(max_steps=args.steps, batch_size=16),
                  "finetune_broken": finetune.RetrainConfig(max_steps=4, batch_size=16,
                                                            learning_rate=0.5)}
    scores = {"active": {"mined": evaluate_mined(mined, active, 64).metrics["ndcg@10"],
                         "real": real_ndcg(active, docs, beir)}}
    print(f"active: mined {scores['active']['mined']:.4f}, real {scores['active']['real']:.4f}")
    training: dict[str, dict] = {}
    for name, config in candidates.items():
        started = time.perf_counter()
        if config is None:
            model = active
        else:
            facts = finetune.finetune(active.location, pairs, config, work / name)
            training[name] = facts
            model = load_embedder(EmbedConfig(model=str(work / name), backend="torch"))
        scores[name] = {"mined": evaluate_mined(mined, model, 64).metrics["ndcg@10"],
                        "real": real_ndcg(model, docs, beir),
                        "seconds": round(time.perf_counter() - started, 1)}
        print(f"{name}: mined {scores[name]['mined']:.4f}, real {scores[name]['real']:.4f} "
              f"({scores[name]['seconds']} s)")
    rows = {}
    for name in candidates:
        mined_delta = scores[name]["mined"] - scores["active"]["mined"]
        real_delta = scores[name]["real"] - scores["active"]["real"]
        # The gate's question for a fine-tuned model: strictly better? (re-embed: not worse)
        rows[name] = {"mined_delta": round(mined_delta, 4), "real_delta": round(real_delta, 4),
                      "mined_says_better": mined_delta > 0, "real_says_better": real_delta > 0,
                      "agree": (mined_delta > 0) == (real_delta > 0)}
    from scipy.stats import spearmanr

    names = list(scores)
    rho = spearmanr([scores[n]["mined"] for n in names],
                    [scores[n]["real"] for n in names]).statistic
    print(f"\n{'candidate':16s} {'mined Δ':>9s} {'real Δ':>9s} agree")
    for name, row in rows.items():
        print(f"{name:16s} {row['mined_delta']:+9.4f} {row['real_delta']:+9.4f} {row['agree']}")
    print(f"rank correlation of the two sets over {len(names)} models: {rho:.2f}")
    write_result("retrain", {"mined_set": {"name": mined.name, "queries": len(mined.queries),
                                           "documents": len(mined.corpus)},
                             "steps": args.steps, "scores": scores, "candidates": rows,
                             "spearman": round(float(rho), 3), "training": training,
                             "finetune_ndcg_delta_on_real_qrels": rows["finetune"]["real_delta"],
                             "pairs": len(pairs)})


if __name__ == "__main__":
    pa.set_cpu_count(2)
    main()
