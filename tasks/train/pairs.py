"""Training pairs mined from the corpus, with no labels, and hard negatives for them.

Kinds (`retrain.pairs`):
  log       a logged search -> the document hybrid search returns first for it (BM25 fused
            with the active model: `pseudo_relevant`), with the active model's best other
            document that BM25 does not also rank high as its hard negative (`query_log_pairs`);
            the default, and on SciFact the one kind that made the model better on real queries
            (+0.03 nDCG@10, bench/retrain.py), where the other three made it worse
  title     a document's title -> its first chunk
  adjacent  chunk i -> chunk i+1 of one document
  ict       inverse cloze: one sentence of a document -> the rest of that document (the
            sentence removed), the shape of a question and the passage that answers it

Hard negatives (`retrain.hard_negatives`): for each pair, the positive of another document that
the active model ranks closest to the anchor, skipping likely false negatives (the anchor's own
document, and texts nearly identical to the true positive). Held-out documents (the mined
evaluation set's) never give a pair.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from tasks.embed.base import Embedder
from tasks.embed.embedding import embed_texts
from tasks.index.fusion import reciprocal_rank_fusion

PAIR_KINDS = ("title", "adjacent", "ict", "log")
LABELS = {"title": "title->first chunk", "adjacent": "adjacent chunks",
          "ict": "sentence->rest of its document",
          "log": "logged search->pseudo-relevant document"}
NEAR_DUPLICATE = 0.95  # a candidate negative this close to the positive is likely relevant too


@dataclass(frozen=True)
class Pair:
    kind: str
    doc_id: str
    anchor: str
    positive: str
    negative: str | None = None


def recipe(kinds: Sequence[str], hard_negatives: bool) -> str:
    """What a fine-tune trained on, in words (for the card)."""
    what = ", ".join(LABELS[k] for k in kinds)
    negatives = ("hard negatives mined with the active model plus in-batch negatives"
                 if hard_negatives else "in-batch negatives")
    logged = ("; logged searches pseudo-labelled by hybrid search (BM25 fused with the active "
              "model), held-out searches excluded" if "log" in kinds else "")
    return (f"MultipleNegativesRankingLoss with {negatives}, on {what} pairs; held-out "
            f"documents excluded{logged}")


def mine_pairs(documents: pa.Table, chunks: pa.Table, max_pairs: int, seed: int,
               exclude: set[str] | None = None, counts: dict[str, int] | None = None,
               kinds: Sequence[str] = ("title", "adjacent")
               ) -> list[tuple[str, str]]:
    """(anchor, positive) pairs of `kinds` (see `training_pairs`); `counts`, when given,
    receives how many of each kind were kept (what the version's card says it was trained on).

    >>> docs = pa.table({"doc_id": ["d"], "title": ["T"], "text": ["T\\n\\nA. B."]})
    >>> chunks = pa.table({"doc_id": ["d", "d"], "seq": [0, 1], "text": ["T A.", "B."]})
    >>> mine_pairs(docs, chunks, 10, 0)
    [('T', 'T A.'), ('T A.', 'B.')]
    """
    pairs = training_pairs(documents, chunks, max_pairs, seed, exclude, kinds)
    if counts is not None:
        counts.update(count_kinds(pairs))
    return [(p.anchor, p.positive) for p in pairs]


def count_kinds(pairs: Sequence[Pair]) -> dict[str, int]:
    """How many pairs of each kind, by the kind's label (what the card shows)."""
    return {LABELS[k]: n for k, n in Counter(p.kind for p in pairs).items()}


def training_pairs(documents: pa.Table, chunks: pa.Table, max_pairs: int, seed: int,
                   exclude: set[str] | None = None,
                   kinds: Sequence[str] = ("title", "adjacent")) -> list[Pair]:
    """Pairs of the given kinds from every document not in `exclude`, at most `max_pairs`
    (a seeded sample, in a stable order)."""
    from tasks.quality.mined import sentences

    exclude = exclude or set()
    rng = random.Random(seed)
    by_doc: dict[str, list[tuple[int, str]]] = {}
    for doc_id, seq, text in zip(chunks["doc_id"].to_pylist(), chunks["seq"].to_pylist(),
                                 chunks["text"].to_pylist(), strict=True):
        if doc_id not in exclude:  # held out for evaluation: never trained on
            by_doc.setdefault(doc_id, []).append((seq, text))
    titles = dict(zip(documents["doc_id"].to_pylist(), documents["title"].to_pylist(),
                      strict=True))
    texts = dict(zip(documents["doc_id"].to_pylist(), documents["text"].to_pylist(),
                     strict=True))
    pairs: list[Pair] = []
    for doc_id in sorted(by_doc):
        ordered = [text for _, text in sorted(by_doc[doc_id])]
        title = titles.get(doc_id)
        if "title" in kinds and title and ordered and ordered[0] != title:
            pairs.append(Pair("title", doc_id, title, ordered[0]))
        if "adjacent" in kinds:
            pairs += [Pair("adjacent", doc_id, a, b) for a, b in zip(ordered, ordered[1:],
                                                                     strict=False)]
        if "ict" in kinds:
            parts = sentences(texts.get(doc_id) or "")
            picks = [j for j in range(1, len(parts)) if len(parts[j].split()) >= 6]
            if len(parts) >= 3 and picks:
                j = picks[rng.randrange(len(picks))]
                pairs.append(Pair("ict", doc_id, parts[j], " ".join(parts[:j] + parts[j + 1:])))
    if len(pairs) > max_pairs:
        keep = sorted(random.Random(seed).sample(range(len(pairs)), max_pairs),
                      key=lambda i: (pairs[i].anchor, pairs[i].positive))
        pairs = [pairs[i] for i in keep]
    return pairs


def add_hard_negatives(pairs: list[Pair], embedder: Embedder, batch_size: int = 64
                       ) -> list[Pair]:
    """Each pair with the closest positive of another document as its negative (by the active
    model), skipping near-duplicates of its own positive; pairs with no such text keep none."""
    if len(pairs) < 2:
        return pairs
    anchors = embed_texts([p.anchor for p in pairs], embedder, batch_size)
    positives = embed_texts([p.positive for p in pairs], embedder, batch_size)
    docs = np.array([p.doc_id for p in pairs])
    out = []
    for i, pair in enumerate(pairs):
        scores = positives @ anchors[i]
        scores[docs == pair.doc_id] = -np.inf  # its own document is no negative
        scores[positives @ positives[i] >= NEAR_DUPLICATE] = -np.inf  # likely relevant too
        best = int(np.argmax(scores))
        negative = pairs[best].positive if np.isfinite(scores[best]) else None
        out.append(Pair(pair.kind, pair.doc_id, pair.anchor, pair.positive, negative))
    return out


def pseudo_relevant(lexical: dict[str, list[str]], dense: dict[str, list[str]], rule: str,
                    k: int = 60) -> dict[str, str]:
    """Each logged query's pseudo-relevant document, from rankings of it (best first) by BM25
    (`lexical`) and by the active model (`dense`), with no labels:
      lexical  BM25's top document
      agree    the top document where BM25 and the active model agree on it (others: none)
      fused    the top of their reciprocal rank fusion (what hybrid search returns first)

    >>> pseudo_relevant({"q": ["a", "b"]}, {"q": ["b", "a"]}, "agree")
    {}
    >>> pseudo_relevant({"q": ["a", "b"]}, {"q": ["b", "c"]}, "fused")
    {'q': 'b'}
    """
    out = {}
    for q, words in lexical.items():
        vectors = dense.get(q) or []
        if not words or not vectors:
            continue
        if rule == "lexical":
            out[q] = words[0]
        elif rule == "agree":
            if words[0] == vectors[0]:
                out[q] = words[0]
        elif rule == "fused":
            out[q] = reciprocal_rank_fusion([words, vectors], k)[0][0]
        else:
            raise ValueError(f"unknown pseudo-label rule {rule!r}")
    return out


def query_log_pairs(queries: dict[str, str], positives: dict[str, str], texts: dict[str, str],
                    lexical: dict[str, list[str]] | None = None,
                    dense: dict[str, list[str]] | None = None, skip: int = 3,
                    exclude: set[str] | None = None) -> list[Pair]:
    """Logged searches paired with their pseudo-relevant document (`pseudo_relevant`); with
    both rankings, each also gets a hard negative: the active model's best other document that
    BM25 does not also place in its top `skip` (likely relevant too, not a negative).
    Documents in `exclude` (held out for evaluation) are never a positive or a negative."""
    exclude = exclude or set()
    pairs = []
    for q in sorted(positives):
        doc = positives[q]
        if doc in exclude:
            continue
        negative = None
        if lexical is not None and dense is not None:
            likely = set(lexical.get(q, [])[:skip]) | {doc} | exclude
            negative = next((texts[d] for d in dense.get(q, []) if d not in likely), None)
        pairs.append(Pair("log", doc, queries[q], texts[doc], negative))
    return pairs
