"""STS-B test: cosine Spearman of the default model through embedpipe's STS evaluator, with the
default backend (`auto`, resolved on this machine) and with torch fp32, side by side.

Target: the published MTEB figure for all-MiniLM-L6-v2, 0.8203, within 0.003, for both.
Usage: python bench/quality_stsb.py
"""

from __future__ import annotations

from _common import stsb_test, write_result

from tasks.embed.backends.exports import export_root
from tasks.embed.backends.loader import load
from tasks.embed.base import EmbedConfig
from tasks.embed.embedding import embed_texts, load_embedder
from tasks.embed.selection import select
from tasks.quality.evalsets import load_sts
from tasks.quality.evaluate import evaluate_sts

PUBLISHED = 0.8203


def main() -> None:
    sts = load_sts(stsb_test())
    default = select(EmbedConfig(), load, export_root(None)).chosen  # what `auto` means here
    rows = {}
    print(f"STS-B test: {len(sts.scores)} pairs; auto chose {default}")
    for backend in dict.fromkeys([default, "torch"]):
        embedder = load_embedder(EmbedConfig(backend=backend))
        result = evaluate_sts(sts.name, embed_texts(sts.sentences1, embedder, 64),
                              embed_texts(sts.sentences2, embedder, 64), sts.scores)
        spearman = result.metrics["spearman"]
        rows[backend] = {"metrics": result.metrics,
                         "difference": round(spearman - PUBLISHED, 4),
                         "passed": abs(spearman - PUBLISHED) <= 0.003}
        print(f"  {backend:14s} spearman {spearman:.4f}  pearson {result.metrics['pearson']:.4f}"
              f"  vs published {PUBLISHED:.4f}: {spearman - PUBLISHED:+.4f} (target within 0.003)")
    write_result("quality_stsb", {"pairs": len(sts.scores), "default_backend": default,
                                  "metrics": rows[default]["metrics"], "backends": rows,
                                  "published_spearman": PUBLISHED,
                                  "difference": rows[default]["difference"],
                                  "passed": all(r["passed"] for r in rows.values())})


if __name__ == "__main__":
    main()
