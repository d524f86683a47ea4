"""A panel of retrain candidates judged without labels, checked against SciFact's real judgements.

On SciFact: the inverse-cloze set mined from the corpus (`tasks/quality/mined.py`, what a retrain
uses when no labelled set is configured: 400 sentence queries, two per held-out document, and
the held-out documents' titles as a second view, title -> body) scores the
active model (all-MiniLM-L6-v2) and each candidate; the gate's label-free verdict is the paired
bootstrap interval of the candidate's per-query gain (`tasks/quality/paired.py`: promoted only
when its lower bound clears zero), through `tasks/quality/gate.judge` as a retrain runs it.
SciFact's real test qrels (exact search over whole documents, as MTEB scores the model) say
which candidates are really better. Candidates: a re-embed, fine-tunes with several recipes
(pair kinds, hard negatives, steps, learning rates; held-out documents excluded) and one broken
model. Reports, per candidate, the mined gain and interval, the real nDCG@10 and its delta, the
verdict, false promotions (promoted but really worse) and the rank correlation of label-free
and real scores. Evaluation runs in bf16 autocast where the CPU has it (faithful to fp32 within
cosine 0.9999). Writes bench/results/retrain.json.

    .venv/bin/python bench/retrain.py [--only NAME ...] [--max-pairs 5000] [--models DIR]
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from _common import bench_parser, machine, scifact_dir, write_result

from tasks.embed.base import EmbedConfig
from tasks.embed.embedding import embed_texts, load_embedder
from tasks.embed.selection import cpu_flags, native_bf16
from tasks.index.ann import ExactIndex
from tasks.prep import chain as prep
from tasks.prep.chunk import ChunkConfig
from tasks.prep.clean import CleanConfig
from tasks.prep.load import SourceConfig
from tasks.quality.evalsets import load_beir
from tasks.quality.evaluate import evaluate_retrieval
from tasks.quality.gate import GateConfig, judge
from tasks.quality.mined import evaluate_mined, mine
from tasks.quality.scoring import metric_rows
from tasks.train import finetune
from tasks.train.pairs import add_hard_negatives, training_pairs

RetrainConfig = finetune.RetrainConfig
# name -> (pair kinds, hard negatives, training config); None: re-embed with the active model.
PANEL: dict[str, tuple[list[str], bool, RetrainConfig] | None] = {
    "reembed": None,
    "base-20": (["title", "adjacent"], False, RetrainConfig(max_steps=20, batch_size=16)),
    "ict-40": (["ict"], False, RetrainConfig(max_steps=40, batch_size=32)),
    "ict-hn-40": (["ict"], True, RetrainConfig(max_steps=40, batch_size=32)),
    "all-hn-40": (["title", "adjacent", "ict"], True, RetrainConfig(max_steps=40,
                                                                     batch_size=32)),
    "ict-hn-80-lr5e-5": (["ict"], True, RetrainConfig(max_steps=80, batch_size=32,
                                                      learning_rate=5e-5)),
    "ict-hn-40-lr2e-4": (["ict"], True, RetrainConfig(max_steps=40, batch_size=32,
                                                      learning_rate=2e-4)),
    "adjacent-40-lr1e-4": (["adjacent"], False, RetrainConfig(max_steps=40, batch_size=32,
                                                              learning_rate=1e-4)),
    "broken": (["title", "adjacent"], False, RetrainConfig(max_steps=4, batch_size=16,
                                                           learning_rate=0.5)),
}


def real_ndcg(embedder, docs: list[dict], beir) -> float:
    qids = sorted(beir.queries)
    doc_vectors = embed_texts([f"{d['title']} {d['text']}".strip() for d in docs], embedder, 64)
    query_vectors = embed_texts([beir.queries[q] for q in qids], embedder, 64)
    return evaluate_retrieval("scifact", beir.qrels, qids, query_vectors,
                              ExactIndex(doc_vectors, np.arange(len(docs))),
                              {i: d["_id"] for i, d in enumerate(docs)}).metrics["ndcg@10"]


def main() -> None:
    parser = bench_parser(__doc__, max_pairs=5000)
    parser.add_argument("--only", nargs="*", default=None, help="candidates to run")
    parser.add_argument("--models", type=Path, default=None,
                        help="keep trained candidates here; one already there is reused")
    args = parser.parse_args()
    scifact = scifact_dir()
    docs = [json.loads(line) for line in (scifact / "corpus.jsonl").open()]
    beir = load_beir(scifact)
    corpus = prep.read_corpus(scifact / "corpus.jsonl", SourceConfig(), CleanConfig())
    mined = mine(corpus.documents, 400, 1000, seed=0, per_document=2)
    backend = "torch-bf16" if native_bf16(cpu_flags()) else "torch"
    active = load_embedder(EmbedConfig(backend=backend))
    work = args.models or Path(tempfile.mkdtemp(prefix="embedpipe-retrain-"))
    chunking = prep.Chunking(ChunkConfig(), active.max_seq_length)
    documents, chunks = prep.chunk_corpus(corpus.documents, active.tokenizer, chunking)
    reference = evaluate_mined(mined, active, 64)
    mined = mined.with_reference(0, {q: v for e in reference for q, v in e.per_query.items()})
    scores = {"active": {"mined": reference[0].metrics["ndcg@10"],
                         "title": reference[-1].metrics["ndcg@10"],
                         "real": real_ndcg(active, docs, beir)}}
    print(f"mined set: {len(mined.queries)} sentence and {len(mined.titles)} title queries, "
          f"{len(mined.corpus)} documents; evaluated "
          f"with {backend}; active: mined {scores['active']['mined']:.4f}, real "
          f"{scores['active']['real']:.4f}", flush=True)
    negatives_cache: dict[tuple[str, ...], list] = {}
    rows: dict[str, dict] = {}
    for name, spec in PANEL.items():
        if args.only and name not in args.only:
            continue
        started = time.perf_counter()
        training: dict = {}
        if spec is None:
            model = active
        else:
            kinds, hard, config = spec
            facts = work / name / "facts.json"
            if facts.exists():  # trained by an earlier run of this panel: same recipe, seed
                training = {**json.loads(facts.read_text()), "reused": True}
            else:
                pairs = training_pairs(documents, chunks, args.max_pairs, 0,
                                       set(mined.held_out), kinds)
                if hard:
                    key = tuple(kinds)
                    if key not in negatives_cache:
                        negatives_cache[key] = add_hard_negatives(pairs, active)
                    pairs = negatives_cache[key]
                training = finetune.finetune(active.location, pairs, config, work / name)
                facts.write_text(json.dumps(training))
            model = load_embedder(EmbedConfig(model=str(work / name), backend=backend))
        evaluations = evaluate_mined(mined, model, 64)
        evaluation, titled = evaluations[0], evaluations[-1]
        decision = judge(metric_rows(evaluations), metric_rows(reference),
                         GateConfig(require_improvement=spec is not None))  # as retrain does
        real = real_ndcg(model, docs, beir)
        rows[name] = {"mined": evaluation.metrics["ndcg@10"],
                      "mined_gain": evaluation.metrics["ndcg@10_gain"],
                      "interval": [evaluation.metrics["ndcg@10_gain_low"],
                                   evaluation.metrics["ndcg@10_gain_high"]],
                      "title": titled.metrics["ndcg@10"],
                      "title_gain": titled.metrics["ndcg@10_gain"],
                      "title_interval": [titled.metrics["ndcg@10_gain_low"],
                                         titled.metrics["ndcg@10_gain_high"]],
                      "real": real, "real_delta": round(real - scores["active"]["real"], 4),
                      "promoted": decision.passed, "verdict": decision.headline(),
                      "training": training, "seconds": round(time.perf_counter() - started, 1)}
        scores[name] = {"mined": rows[name]["mined"], "title": rows[name]["title"],
                        "real": real}
        r = rows[name]
        print(f"{name:20s} sentence gain {r['mined_gain']:+.4f} "
              f"[{r['interval'][0]:+.4f}, {r['interval'][1]:+.4f}] title gain "
              f"{r['title_gain']:+.4f} [{r['title_interval'][0]:+.4f}, "
              f"{r['title_interval'][1]:+.4f}] real {real:.4f} "
              f"({r['real_delta']:+.4f}) {'PROMOTED' if r['promoted'] else 'rejected'} "
              f"({r['seconds']} s)", flush=True)
    from scipy.stats import spearmanr

    names = list(scores)
    rho = float(spearmanr([scores[n]["mined"] for n in names],
                          [scores[n]["real"] for n in names]).statistic)
    rho_title = float(spearmanr([scores[n]["title"] for n in names],
                                [scores[n]["real"] for n in names]).statistic)
    both = [scores[n]["mined"] + scores[n]["title"] for n in names]
    rho_both = float(spearmanr(both, [scores[n]["real"] for n in names]).statistic)
    false_promotions = [n for n, r in rows.items() if r["promoted"] and r["real_delta"] < 0]
    missed = [n for n, r in rows.items() if not r["promoted"] and r["real_delta"] >= 0.01]
    helped = [n for n, r in rows.items() if r["promoted"] and r["real_delta"] >= 0.01]
    print(f"\nrank correlation with real nDCG@10 over {len(names)} models: sentence view "
          f"{rho:.2f}, title view {rho_title:.2f}, both summed {rho_both:.2f} (goal >= 0.8); "
          f"false promotions: {false_promotions or 'none'}; real gains >= 0.01 "
          f"the gate missed: {missed or 'none'}; promoted with a real gain >= 0.01: "
          f"{helped or 'none'}")
    write_result("retrain", {"mined_set": {"name": mined.name, "queries": len(mined.queries),
                                           "documents": len(mined.corpus)},
                             "evaluated_with": backend, "active": scores["active"],
                             "candidates": rows, "spearman": round(rho, 3),
                             "spearman_title": round(rho_title, 3),
                             "spearman_both": round(rho_both, 3),
                             "false_promotions": false_promotions, "missed_gains": missed,
                             "promoted_real_gains": helped, "max_pairs": args.max_pairs,
                             "machine_at_start": machine()})


if __name__ == "__main__":
    pa.set_cpu_count(2)
    main()
