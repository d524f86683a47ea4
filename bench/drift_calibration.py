"""Drift alarms on SciFact: false-alarm rate and detection power, per method, over repetitions.

Scenarios (each repetition draws fresh disjoint samples, 300 vs 300 by default):
  null      two disjoint random samples of SciFact abstracts       target alarm rate <= 0.07
  stsb      SciFact vs STS-B sentences                             target >= 0.95
  mix20     SciFact vs SciFact with 20% replaced by STS-B          target >= 0.80
  queries_null   SciFact queries split in two random halves        target alarm rate <= 0.07
  queries_stsb   SciFact queries vs STS-B sentences as queries     target >= 0.95
(the query rows are what `drift --queries` compares: a query log against a reference log;
queries are embedded alone, as a search embeds them.)
Methods: each statistic at its own threshold, and the configured decision rule (`rule`).
Texts are embedded once (abstracts as the model truncates them); samples are drawn from those.
Usage: python bench/drift_calibration.py [--repetitions 50] [--size 300]
"""

from __future__ import annotations

import json
import time

import numpy as np
from _common import DATA_DIR, bench_parser, write_result

from tasks.embed.base import EmbedConfig
from tasks.embed.embedding import embed_texts, load_embedder
from tasks.monitor.drift import DriftConfig, alarm, embedding_drift
from tasks.quality.evalsets import load_sts

TARGETS = {"null": ("<=", 0.07), "stsb": (">=", 0.95), "mix20": (">=", 0.80),
           "queries_null": ("<=", 0.07), "queries_stsb": (">=", 0.95)}


def methods(stats: dict[str, float], config: DriftConfig) -> dict[str, bool]:
    return {
        f"mmd p<{config.mmd_alpha}": stats["mmd_p_value"] < config.mmd_alpha,
        f"classifier auc>{config.auc_floor}": stats["classifier_auc"] > config.auc_floor,
        "classifier p<0.01": stats["classifier_p_value"] < 0.01,
        "ks dims (BH) share>0": stats["drifted_dimensions_share"] > 0,
        "rule": alarm(stats, config),
    }


def main() -> None:
    args = bench_parser(__doc__, repetitions=50, size=300).parse_args()
    corpus = DATA_DIR / "scifact" / "corpus.jsonl"
    sts_path = DATA_DIR / "stsb" / "sts-train.csv"
    if not corpus.exists() or not sts_path.exists():
        print(f"skipped: SciFact or STS-B not found under {DATA_DIR}")
        return
    config = DriftConfig(reference_size=args.size, current_size=args.size)
    embedder = load_embedder(EmbedConfig(backend="torch"))  # the recorded results are torch fp32
    docs = [json.loads(line) for line in corpus.read_text().splitlines()]
    rng = np.random.default_rng(0)
    # 3 disjoint samples per repetition at most: embed enough abstracts for that, no more.
    pool = rng.choice(len(docs), size=min(len(docs), 3 * args.size), replace=False)
    started = time.perf_counter()
    sci = embed_texts([(docs[i]["title"] + " " + docs[i]["text"]).strip() for i in pool],
                      embedder, 64)
    sts = load_sts(sts_path)
    sentences = sorted(set(sts.sentences1))[: 2 * args.size]
    other = embed_texts(sentences, embedder, 64)
    asked = [json.loads(line)["text"] for line in
             (DATA_DIR / "scifact" / "queries.jsonl").read_text().splitlines()]
    questions = embed_texts(asked, embedder, 1)  # alone, as a search embeds a query
    foreign = embed_texts(sentences, embedder, 1)
    half = min(args.size, len(asked) // 2)
    print(f"embedded {len(sci)} abstracts, {len(other)} STS-B sentences and {len(asked)} "
          f"SciFact queries in {time.perf_counter() - started:.0f} s")

    counts: dict[str, dict[str, int]] = {s: {} for s in TARGETS}
    for rep in range(args.repetitions):
        r = np.random.default_rng(1000 + rep)
        perm = r.permutation(len(sci))
        ref, cur = sci[perm[: args.size]], sci[perm[args.size: 2 * args.size]]
        n_mix = round(0.2 * args.size)
        mixed = np.vstack([sci[perm[2 * args.size: 3 * args.size - n_mix]],
                           other[r.choice(len(other), n_mix, replace=False)]])
        samples = {"null": cur, "stsb": other[r.choice(len(other), args.size, replace=False)],
                   "mix20": mixed}
        q = r.permutation(len(questions))
        asked_ref = questions[q[:half]]
        references = {"queries_null": asked_ref, "queries_stsb": asked_ref}
        samples |= {"queries_null": questions[q[half: 2 * half]],
                    "queries_stsb": foreign[r.choice(len(foreign), half, replace=False)]}
        rep_config = config.model_copy(update={"seed": rep})
        for scenario, current in samples.items():
            reference = references.get(scenario, ref)
            for method, fired in methods(embedding_drift(reference, current, rep_config),
                                         rep_config).items():
                counts[scenario][method] = counts[scenario].get(method, 0) + int(fired)
    rates = {s: {m: c / args.repetitions for m, c in by.items()} for s, by in counts.items()}
    names = list(next(iter(rates.values())))
    print(f"\nalarm rate over {args.repetitions} repetitions ({args.size} vs {args.size}):")
    print(f"  {'method':28s}" + "".join(f"{s:>14s}" for s in TARGETS))
    for m in names:
        print(f"  {m:28s}" + "".join(f"{rates[s][m]:14.2f}" for s in TARGETS))
    verdicts = {s: (rates[s]["rule"] <= t if op == "<=" else rates[s]["rule"] >= t)
                for s, (op, t) in TARGETS.items()}
    print("  targets (rule): " + ", ".join(f"{s} {op} {t} -> {'ok' if verdicts[s] else 'MISS'}"
                                           for s, (op, t) in TARGETS.items()))
    write_result("drift_calibration", {
        "repetitions": args.repetitions, "sample_size": args.size, "query_sample_size": half,
        "config": config.model_dump(), "rates": rates,
        "targets": {s: f"{op} {t}" for s, (op, t) in TARGETS.items()},
        "passed": all(verdicts.values())})


if __name__ == "__main__":
    main()
