"""A panel of retrain candidates judged without labels, checked against SciFact's real judgements.

The label-free views, each scored for the active model (all-MiniLM-L6-v2) and every candidate,
each with the paired bootstrap interval of the candidate's per-query gain
(`tasks/quality/paired.py`):
  sentence  the inverse-cloze set mined from the corpus (`tasks/quality/mined.py`, what a retrain
            uses when no labelled set is configured): 400 sentences taken out of 200 held-out
            documents find the rest of their document among 1,200
  title     the same held-out documents found by their titles (title -> body)
  log       logged searches: SciFact's 809 claims that have no judgements here are the query
            log; 400 of them (held out of training) are judged by pseudo-labels, with no human
            label: BM25's top document (`log-lexical`) or the top of BM25 fused with the active
            model (`log-fused`, what hybrid search returns first), over the whole corpus
  general   STS-B dev Spearman (the general-domain guard: a fine-tune must not forget)
SciFact's real test qrels (300 claims, exact search over whole documents, as MTEB scores the
model) say which candidates are really better. The gate's verdict is computed as a retrain
computes it (`tasks/quality/gate.judge`) for three sets of views: the mined set alone (the
sentence and title views: what a retrain without a query log uses), the query log alone, and
both. Candidates: a re-embed, fine-tunes with several recipes (pair kinds, hard negatives,
steps, learning rates, batch sizes; held-out documents and held-out logged queries excluded)
and one broken model. Reports, per candidate, every view's gain and interval, the real nDCG@10
and its delta, each verdict, false promotions (promoted but really worse) and the rank
correlation of each label-free score with the real one. Writes bench/results/retrain.json
(`--result NAME` for another name; `--device cuda` trains and scores on a GPU: the whole
panel in 5 minutes on an H200, against about 1.5 hours on 2 cores, where the two batch-128
candidates are left out unless named with `--only`).

    .venv/bin/python bench/retrain.py [--only NAME ...] [--models DIR] [--device cuda]
"""

from __future__ import annotations

import json
import math
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _common import DATA_DIR, RESULTS, bench_parser, machine, scifact_dir, write_result

try:
    import ranx  # noqa: F401
except ImportError:  # the GPU box: the same metrics in plain Python
    import _ranx_lite

    sys.modules["ranx"] = _ranx_lite

from tasks.embed.base import EmbedConfig
from tasks.embed.embedding import embed_texts, load_embedder
from tasks.embed.selection import cpu_flags, native_bf16
from tasks.quality.evalsets import load_beir
from tasks.quality.evaluate import retrieval_metrics
from tasks.quality.gate import GateConfig, judge
from tasks.quality.logged import (
    RULES,
    document_rankings,
    evaluate_logged,
    make_logged_set,
    pooled,
    ranked,
    reference_pooled,
    views_of,
)
from tasks.quality.mined import evaluate_mined, mine
from tasks.quality.paired import per_query_ndcg
from tasks.quality.scoring import evaluate_general, metric_rows
from tasks.train import finetune
from tasks.train.pairs import (
    add_hard_negatives,
    pseudo_relevant,
    query_log_pairs,
    training_pairs,
)

RetrainConfig = finetune.RetrainConfig


def R(**settings: float) -> RetrainConfig:
    """A recipe defined by its steps (no cap on passes over the pairs, unlike the default)."""
    return RetrainConfig(max_epochs=None, **settings)  # type: ignore[arg-type]


LOG_HELD_OUT = 400
DEPTH = 100
# name -> (pair kinds, hard negatives, pseudo-label rule of "log" pairs, training config);
# None: re-embed with the active model.
PANEL: dict[str, tuple[list[str], bool, str, RetrainConfig] | None] = {
    "reembed": None,
    "base-20": (["title", "adjacent"], False, "", R(max_steps=20, batch_size=16)),
    "ict-40": (["ict"], False, "", R(max_steps=40, batch_size=32)),
    "ict-hn-40": (["ict"], True, "", R(max_steps=40, batch_size=32)),
    "all-hn-40": (["title", "adjacent", "ict"], True, "", R(max_steps=40, batch_size=32)),
    "ict-hn-80-lr5e-5": (["ict"], True, "", R(max_steps=80, batch_size=32, learning_rate=5e-5)),
    "ict-hn-40-lr2e-4": (["ict"], True, "", R(max_steps=40, batch_size=32, learning_rate=2e-4)),
    "adjacent-40-lr1e-4": (["adjacent"], False, "",
                           R(max_steps=40, batch_size=32, learning_rate=1e-4)),
    # Logged searches, pseudo-labelled (409 training queries: 13 steps of 32 are one epoch).
    "log-fused-hn-16": (["log"], True, "fused", R(max_steps=16, batch_size=32)),
    "log-fused-hn-48": (["log"], True, "fused", R(max_steps=48, batch_size=32)),
    "log-fused-hn-48-lr5e-5": (["log"], True, "fused",
                               R(max_steps=48, batch_size=32, learning_rate=5e-5)),
    "log-fused-hn-96-lr1e-5": (["log"], True, "fused",
                               R(max_steps=96, batch_size=32, learning_rate=1e-5)),
    "log-agree-hn-48": (["log"], True, "agree", R(max_steps=48, batch_size=32)),
    "log-lexical-hn-48": (["log"], True, "lexical", R(max_steps=48, batch_size=32)),
    "log-fused-48": (["log"], False, "fused", R(max_steps=48, batch_size=32)),
    "log-fused+ict-hn-80": (["log", "ict"], True, "fused", R(max_steps=80, batch_size=32)),
    # Large batches (many in-batch negatives): cheap on a GPU, half an hour each on 2 cores
    # (run on a CPU only when named with --only).
    "title-bs128-75": (["title"], False, "", R(max_steps=75, batch_size=128)),
    "ict-hn-bs128-75": (["ict"], True, "", R(max_steps=75, batch_size=128)),
    "broken": (["title", "adjacent"], False, "", R(max_steps=4, batch_size=16,
                                                   learning_rate=0.5)),
}


GPU_ONLY = {"title-bs128-75", "ict-hn-bs128-75"}


def doc_text(d: dict) -> str:
    return f"{d['title']} {d['text']}".strip()


def rankings(query_vectors: np.ndarray, doc_vectors: np.ndarray, qids: list[str],
             doc_ids: list[str]) -> dict[str, dict[str, float]]:
    """Exact search over whole documents: per query, its best documents with scores."""
    return document_rankings(query_vectors, doc_vectors, dict(enumerate(doc_ids)), qids)


def lexical_rankings(docs: list[dict], queries: dict[str, str], cache: Path | None
                     ) -> dict[str, list[str]]:
    """BM25's ranking of each query (DuckDB FTS over whole documents, as hybrid search ranks
    them); kept in `cache` for machines without DuckDB (the GPU box)."""
    if cache is not None and cache.exists():
        return json.loads(cache.read_text())
    from tasks.index.lexical import Bm25, build

    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp), np.arange(len(docs)), [doc_text(d) for d in docs])
        bm25 = Bm25(Path(tmp))
        out = {q: [docs[int(k)]["_id"] for k in bm25.search(text, DEPTH)[0]]
               for q, text in sorted(queries.items())}
        bm25.close()
    if cache is not None:
        cache.write_text(json.dumps(out))
    return out


def overlap_at_10(run: dict[str, dict[str, float]], reference: dict[str, list[str]]) -> float:
    """Mean share of the active model's top 10 the candidate also returns in its top 10."""
    mine_ = ranked(run)
    return round(float(np.mean([len(set(mine_[q][:10]) & set(reference[q][:10])) / 10
                                for q in reference])), 4)


def spearman(xs: list[float], ys: list[float]) -> float:
    from scipy.stats import spearmanr

    return round(float(spearmanr(xs, ys).statistic), 3)


def main() -> None:
    parser = bench_parser(__doc__, max_pairs=5000, batch=64, result="retrain", device="cpu")
    parser.add_argument("--only", nargs="*", default=None, help="candidates to run")
    parser.add_argument("--models", type=Path, default=None,
                        help="keep trained candidates here; one already there is reused")
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="the active model")
    parser.add_argument("--smoke", action="store_true",
                        help="a few hundred documents and 2 steps a candidate: checks that the "
                             "bench runs end to end, measures nothing")
    parser.add_argument("--lexical", type=Path, default=None,
                        help="BM25 rankings of the queries: read if present, else written")
    args = parser.parse_args()
    scifact = scifact_dir()
    docs = [json.loads(line) for line in (scifact / "corpus.jsonl").open()]
    if args.smoke:
        docs = docs[:400]
    doc_ids = [d["_id"] for d in docs]
    texts = {d["_id"]: doc_text(d) for d in docs}
    beir = load_beir(scifact)
    everything = {str(r["_id"]): r["text"] for r in map(json.loads, (scifact / "queries.jsonl"
                                                                      ).open())}
    qrels = beir.qrels
    log = {q: t for q, t in everything.items() if q not in qrels}  # no judgements here
    shuffled = sorted(log)
    random.Random(0).shuffle(shuffled)
    held_out = LOG_HELD_OUT
    if args.smoke:
        known = set(doc_ids)
        qrels = {q: r for q, r in qrels.items() if set(r) & known}
        shuffled, held_out = shuffled[:100], 40
    log = {q: log[q] for q in shuffled}
    log_eval, log_train = sorted(shuffled[:held_out]), sorted(shuffled[held_out:])
    lexical = lexical_rankings(docs, log, args.lexical)

    from tasks.prep import chain as prep
    from tasks.prep.chunk import ChunkConfig
    from tasks.prep.clean import CleanConfig
    from tasks.prep.load import SourceConfig

    corpus = prep.read_corpus(scifact / "corpus.jsonl", SourceConfig(), CleanConfig())
    if args.smoke:
        corpus = replace(corpus, documents=corpus.documents.slice(0, len(docs)))
    mined = mine(corpus.documents, *((60, 200) if args.smoke else (400, 1000)), seed=0,
                 per_document=2)
    cuda = args.device == "cuda"
    backend = "cuda-fp16" if cuda else ("torch-bf16" if native_bf16(cpu_flags()) else "torch")
    active = load_embedder(EmbedConfig(model=args.model, backend=backend))
    general = DATA_DIR / "stsb" / "sts-dev.csv"
    work = args.models or Path(tempfile.mkdtemp(prefix="embedpipe-retrain-"))
    chunking = prep.Chunking(ChunkConfig(), active.max_seq_length)
    documents, chunks = prep.chunk_corpus(corpus.documents, active.tokenizer, chunking)

    def score(model) -> dict:
        """Every view of one model; the active model's per-query scores once known."""
        doc_vectors = embed_texts([texts[d] for d in doc_ids], model, args.batch)
        test_ids = sorted(qrels)
        real_run = rankings(embed_texts([beir.queries[q] for q in test_ids], model, args.batch),
                            doc_vectors, test_ids, doc_ids)
        log_run = rankings(embed_texts([log[q] for q in log_eval], model, args.batch),
                           doc_vectors, log_eval, doc_ids)
        return {"real": retrieval_metrics(qrels, real_run)["ndcg@10"],
                "real_per_query": per_query_ndcg(qrels, real_run),
                "doc_vectors": doc_vectors,
                "mined": evaluate_mined(mined, model, args.batch), "log_run": log_run,
                "general": evaluate_general(general, model, args.batch)
                if general.exists() else None}

    started = time.perf_counter()
    base = score(active)
    reference_mined = base["mined"]
    mined = mined.with_reference(0, {q: v for e in reference_mined for q, v in e.per_query.items()})
    dense_eval = ranked(base["log_run"])
    logged = make_logged_set({q: log[q] for q in log_eval}, {
        rule: pseudo_relevant({q: lexical[q] for q in log_eval}, dense_eval, rule)
        for rule in RULES}, len(log_train))
    reference_log = evaluate_logged(logged, base["log_run"])
    logged = logged.with_reference(0, reference_log)
    units, references = views_of(mined, logged)
    log_units = {k: v for k, v in units.items() if k.startswith("log-")}
    log_references = {k: v for k, v in references.items() if k.startswith("log-")}
    print(f"mined set: {len(mined.queries)} sentence and {len(mined.titles)} title queries, "
          f"{len(mined.corpus)} documents; query log: {len(log_train)} training and "
          f"{len(log_eval)} held-out searches; scored with {backend} on {args.device}; active: "
          f"real {base['real']:.4f}, sentence {reference_mined[0].metrics['ndcg@10']:.4f}, "
          + ", ".join(f"{e.evaluator.split(':')[0]} {e.metrics['ndcg@10']:.4f}"
                      for e in reference_log) + f" ({time.perf_counter() - started:.0f} s)",
          flush=True)
    general_rows = metric_rows([base["general"]]) if base["general"] else []
    active_rows = {
        "both": metric_rows(reference_mined + reference_log
                            + [reference_pooled(references, {mined.name, logged.name})])
        + general_rows,
        "log": metric_rows(reference_log + [reference_pooled(log_references, {logged.name})])
        + general_rows}
    per_query: dict[str, dict] = {"active": {
        "real": base["real_per_query"],
        **{e.evaluator.split(":")[0]: e.per_query for e in reference_mined + reference_log}}}
    dense_train: dict[str, list[str]] | None = None
    negatives_cache: dict[tuple[str, ...], list] = {}
    rows: dict[str, dict] = {}
    for name, spec in PANEL.items():
        if args.only and name not in args.only or (
                not args.only and not cuda and name in GPU_ONLY):
            continue
        started = time.perf_counter()
        training: dict = {}
        if spec is None:
            model = active
        else:
            kinds, hard, rule, config = spec
            if args.smoke:
                config = config.model_copy(update={"max_steps": 2})
            facts = work / name / "facts.json"
            if facts.exists():  # trained by an earlier run of this panel: same recipe, seed
                training = {**json.loads(facts.read_text()), "reused": True}
            else:
                pairs = training_pairs(documents, chunks, args.max_pairs, 0,
                                       set(mined.held_out), [k for k in kinds if k != "log"])
                if hard and pairs:
                    key = tuple(kinds)
                    if key not in negatives_cache:
                        negatives_cache[key] = add_hard_negatives(pairs, active)
                    pairs = negatives_cache[key]
                if "log" in kinds:
                    if dense_train is None:
                        dense_train = ranked(rankings(
                            embed_texts([log[q] for q in log_train], active, args.batch),
                            base["doc_vectors"], log_train, doc_ids))
                    sub = {q: lexical[q] for q in log_train}
                    positives = pseudo_relevant(sub, dense_train, rule)
                    pairs = pairs + query_log_pairs(log, positives, texts,
                                                    sub if hard else None,
                                                    dense_train if hard else None,
                                                    exclude=set(mined.held_out))
                training = finetune.finetune(active.location, pairs, config, work / name,
                                             device=args.device)
                training["recipe"] = {"kinds": kinds, "hard_negatives": hard,
                                      "pseudo_labels": rule or None,
                                      "steps": config.max_steps, "batch": config.batch_size,
                                      "learning_rate": config.learning_rate}
                facts.write_text(json.dumps(training))
            model = load_embedder(EmbedConfig(model=str(work / name), backend=backend))
        scored = score(model)
        views = scored["mined"]
        logs = evaluate_logged(logged, scored["log_run"])
        both, log_only = pooled(views + logs, units, references), pooled(logs, log_units,
                                                                          log_references)
        guard = metric_rows([scored["general"]]) if scored["general"] else []
        improve = GateConfig(require_improvement=spec is not None)  # as a retrain judges
        verdicts = {
            "both": judge(metric_rows(views + logs + [both]) + guard, active_rows["both"],
                          improve),
            "log": judge(metric_rows(logs + [log_only]) + guard, active_rows["log"], improve)}
        row: dict = {"real": scored["real"], "real_delta": round(scored["real"] - base["real"], 4)}
        for evaluation in views + logs + [both, log_only]:
            view = evaluation.evaluator.split(":")[0].replace("mined-", "").replace("mined",
                                                                                    "sentence")
            if evaluation is log_only:
                view = "label-free-log"
            m = evaluation.metrics
            row[view] = m["ndcg@10"]
            row[f"{view}_gain"] = m["ndcg@10_gain"]
            row[f"{view}_interval"] = [m["ndcg@10_gain_low"], m["ndcg@10_gain_high"]]
        if scored["general"]:
            row["general"] = scored["general"].metrics["spearman"]
            row["general_delta"] = round(row["general"] - base["general"].metrics["spearman"], 4)
        row["overlap@10"] = overlap_at_10(scored["log_run"], dense_eval)
        row["verdicts"] = {k: {"promoted": d.passed, "headline": d.headline()}
                           for k, d in verdicts.items()}
        row["training"] = training
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows[name] = row
        per_query[name] = {"real": scored["real_per_query"],
                           **{e.evaluator.split(":")[0]: e.per_query for e in views + logs}}
        print(f"{name:24s} real {row['real']:.4f} ({row['real_delta']:+.4f}) | " + " ".join(
            f"{v} {row[v + '_gain']:+.4f} [{row[v + '_interval'][0]:+.4f}, "
            f"{row[v + '_interval'][1]:+.4f}]" for v in VIEWS)
              + f" | sts {row.get('general_delta', math.nan):+.4f} overlap "
              f"{row['overlap@10']:.2f} | " + " ".join(
                  f"{k}:{'PROMOTED' if v['promoted'] else 'rejected'}"
                  for k, v in row["verdicts"].items()) + f" ({row['seconds']} s)", flush=True)
    summary = correlations(base, rows)
    print("\nrank correlation with real nDCG@10 over "
          f"{len(rows) + 1} models (the active one included):")
    for signal, rho in summary["spearman"].items():
        print(f"  {signal:28s} {rho:+.3f}")
    for gate, found in summary["gates"].items():
        print(f"gate on {gate:5s}: false promotions {found['false_promotions'] or 'none'}; "
              f"promoted with a real gain >= 0.01: {found['promoted_real_gains'] or 'none'}; "
              f"real gains >= 0.01 missed: {found['missed_gains'] or 'none'}")
    write_result(args.result, {
        "mined_set": {"name": mined.name, "queries": len(mined.queries),
                      "titles": len(mined.titles), "documents": len(mined.corpus)},
        "query_log": {"name": logged.name, "training": len(log_train), "held_out": len(log_eval),
                      "labelled": {rule: len(v) for rule, v in logged.labels.items()}},
        "device": args.device, "evaluated_with": backend,
        "active": {"real": base["real"], "sentence": reference_mined[0].metrics["ndcg@10"],
                   "title": reference_mined[-1].metrics["ndcg@10"],
                   **{e.evaluator.split(":")[0]: e.metrics["ndcg@10"] for e in reference_log},
                   "general": base["general"].metrics["spearman"] if base["general"] else None},
        "candidates": rows, **summary, "max_pairs": args.max_pairs,
        "machine_at_start": machine(), "gpu": gpu_name() if cuda else None})
    (RESULTS / f"{args.result}-per-query.json").write_text(json.dumps(per_query))


VIEWS = ("sentence", "title", "log-lexical", "log-fused", "label-free", "label-free-log")
SIGNALS = (*VIEWS, "general", "overlap@10")


def correlations(base: dict, rows: dict[str, dict]) -> dict:
    """Spearman of each label-free score with the real nDCG@10 (the active model counted as a
    candidate with zero gain and full overlap), and each gate's mistakes."""
    real = [base["real"]] + [r["real"] for r in rows.values()]
    gains = {s: [0.0] + [r.get(f"{s}_gain", r.get(f"{s}_delta", 0.0)) if s != "overlap@10"
                         else r["overlap@10"] for r in rows.values()] for s in SIGNALS}
    gains["overlap@10"][0] = 1.0
    out = {s: spearman(v, real) for s, v in gains.items()}
    gates = {}
    for gate in ("both", "log"):
        promoted = {n for n, r in rows.items() if r["verdicts"][gate]["promoted"]}
        gates[gate] = {
            "false_promotions": sorted(n for n in promoted if rows[n]["real_delta"] < 0),
            "promoted_real_gains": sorted(n for n in promoted if rows[n]["real_delta"] >= 0.01),
            "missed_gains": sorted(n for n, r in rows.items()
                                   if n not in promoted and r["real_delta"] >= 0.01)}
    return {"spearman": out, "gates": gates}


def gpu_name() -> str:
    import torch

    return str(torch.cuda.get_device_name(0))


if __name__ == "__main__":
    import pyarrow

    pyarrow.set_cpu_count(2)
    main()
