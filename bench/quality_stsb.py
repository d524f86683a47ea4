"""STS-B test: cosine Spearman of the default model through embedpipe's STS evaluator.

Target: the published MTEB figure for all-MiniLM-L6-v2, 0.8203, within 0.003.
Usage: python bench/quality_stsb.py
"""

from __future__ import annotations

from _common import stsb_test, write_result

from tasks.embed.base import EmbedConfig
from tasks.embed.embedding import embed_texts, load_embedder
from tasks.quality.evalsets import load_sts
from tasks.quality.evaluate import evaluate_sts

PUBLISHED = 0.8203


def main() -> None:
    sts = load_sts(stsb_test())
    embedder = load_embedder(EmbedConfig(backend="torch"))  # the recorded results are torch fp32
    result = evaluate_sts(sts.name, embed_texts(sts.sentences1, embedder, 64),
                          embed_texts(sts.sentences2, embedder, 64), sts.scores)
    spearman = result.metrics["spearman"]
    print(f"STS-B test: {len(sts.scores)} pairs")
    print(f"  spearman {spearman:.4f}  pearson {result.metrics['pearson']:.4f}")
    print(f"  published {PUBLISHED:.4f}  difference {spearman - PUBLISHED:+.4f} (target within "
          "0.003)")
    write_result("quality_stsb", {"pairs": len(sts.scores), "metrics": result.metrics,
                                  "published_spearman": PUBLISHED,
                                  "difference": round(spearman - PUBLISHED, 4),
                                  "passed": abs(spearman - PUBLISHED) <= 0.003})


if __name__ == "__main__":
    main()
