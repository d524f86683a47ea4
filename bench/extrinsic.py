"""Extrinsic quality and bias of the default model, as `embedpipe evaluate --labels` scores them.

On STS-B test's sentences labelled by genre (captions / news / forum; both sentences of each
pair, as `evalsets.load_labelled` reads an STS file): the linear probe's accuracy and macro-F1
beside the majority-class accuracy of the same folds (measured in this run), and k-means
against the genres (V-measure, adjusted Rand). Then every shipped WEAT test: effect size d and
permutation p-value, beside the effect Caliskan et al. published for GloVe (the direction is
what should reproduce; sentence encoders are known to show smaller effects).
Writes bench/results/extrinsic.json.

    .venv/bin/python bench/extrinsic.py
"""

from __future__ import annotations

from collections import Counter

from _common import stsb_test, write_result

from tasks.embed.base import EmbedConfig
from tasks.embed.embedding import embed_texts, load_embedder
from tasks.quality.bias import evaluate_bias, load_tests
from tasks.quality.evalsets import load_labelled
from tasks.quality.extrinsic import clustering, linear_probe


def main() -> None:
    labelled = load_labelled(stsb_test())
    embedder = load_embedder(EmbedConfig(backend="torch"))  # the recorded results are torch fp32
    vectors = embed_texts(labelled.texts, embedder, 64)
    probe = linear_probe(labelled.name, vectors, labelled.labels).metrics
    clusters = clustering(labelled.name, vectors, labelled.labels).metrics
    genres = dict(Counter(labelled.labels))
    print(f"STS-B test sentences by genre: {genres}")
    print(f"  probe accuracy {probe['accuracy']:.4f} (macro-F1 {probe['macro_f1']:.4f}) vs "
          f"majority class {probe['majority_accuracy']:.4f}")
    print(f"  k-means V-measure {clusters['v_measure']:.4f}, adjusted Rand "
          f"{clusters['adjusted_rand']:.4f}")
    bias = evaluate_bias(embedder, 64).metrics
    weat = {}
    for test in load_tests():
        d, p = bias[f"{test.name}_effect"], bias[f"{test.name}_p_value"]
        weat[test.name] = {"effect": d, "p_value": p, "published_glove_effect":
                           test.published_effect,
                           "same_direction": (d > 0) == ((test.published_effect or 0) > 0)}
        print(f"  {test.name:42s} d {d:+.3f} (GloVe {test.published_effect:+.2f}) p {p:.4f}")
    write_result("extrinsic", {"labelled_set": labelled.name, "examples": len(labelled.texts),
                               "genres": genres, "probe": probe, "clusters": clusters,
                               "probe_minus_majority": round(probe["accuracy"]
                                                             - probe["majority_accuracy"], 4),
                               "weat": weat})


if __name__ == "__main__":
    main()
