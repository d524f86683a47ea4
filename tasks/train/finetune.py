"""Fine-tune a copy of a model on pairs mined from the corpus, with in-batch negatives.

Input: documents (`doc_id`, `title`, `text`) and their chunks; output: training pairs, then a
saved SentenceTransformer directory. Pairs need no labels: a title and its document's first
chunk, and neighbouring chunks of one document, are about the same thing; every other pair in a
batch serves as a negative (MultipleNegativesRankingLoss).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from tasks.embed.base import resolve_model


class RetrainConfig(BaseModel):
    """What a retrain does and how long it may take."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Literal["finetune", "reembed"] = "finetune"
    max_steps: int = Field(20, ge=1)
    # A retrain whose estimated training time is longer is refused before it starts, and
    # training stops at the first step past it.
    max_seconds: float = Field(900.0, gt=0)
    # Seconds between two retrains that train or re-embed (a cooldown): a corpus that keeps
    # drifting would otherwise retrain at every hourly check. 0 switches it off.
    min_interval: float = Field(86_400.0, ge=0)
    # A retrain fired while another writer works (two drift events close together, an ingest)
    # waits up to this long for the writer lock, then meets the cooldown, instead of failing.
    lock_wait_seconds: float = Field(1800.0, ge=0)
    # Seconds per training step at batch 32 x 256 tokens on this kind of CPU, for the estimate
    # until a retrain of this warehouse measured its own (13 s measured on 2 cores).
    step_seconds_at_32x256: float = Field(13.0, gt=0)
    batch_size: int = Field(16, ge=2)  # in-batch negatives: batch_size - 1 per pair
    learning_rate: float = Field(2e-5, gt=0)
    max_pairs: int = Field(5000, ge=2)
    max_seq_length: int = Field(128, ge=16)  # training truncation; short keeps CPU steps cheap
    seed: int = 0


def estimated_seconds(config: RetrainConfig, measured: float | None = None) -> float:
    """Training time of a retrain: steps x seconds per step at its batch size and length.

    `measured`: seconds per step at 32 x 256 measured by an earlier retrain, if any.

    >>> estimated_seconds(RetrainConfig(max_steps=10, batch_size=16, max_seq_length=128))
    32.5
    """
    per_step = (measured or config.step_seconds_at_32x256) * (config.batch_size / 32) * (
        config.max_seq_length / 256)
    return round(config.max_steps * per_step, 1)


def step_seconds_at_32x256(facts: dict[str, Any], config: RetrainConfig) -> float | None:
    """A finished training's seconds per step, scaled to batch 32 x 256 tokens."""
    if not facts.get("steps") or not facts.get("seconds"):
        return None
    scale = (config.batch_size / 32) * (config.max_seq_length / 256)
    return float(facts["seconds"]) / int(facts["steps"]) / scale


TITLE_PAIRS, ADJACENT_PAIRS = "title->first chunk", "adjacent chunks"
RECIPE = ("MultipleNegativesRankingLoss with in-batch negatives, on title->first chunk and "
          "adjacent-chunk pairs; held-out documents excluded")


def mine_pairs(documents: pa.Table, chunks: pa.Table, max_pairs: int, seed: int,
               exclude: set[str] | None = None, counts: dict[str, int] | None = None
               ) -> list[tuple[str, str]]:
    """(anchor, positive) pairs: title -> first chunk, and chunk i -> chunk i+1 of a document.

    `counts`, when given, receives how many pairs of each kind were kept (`title->first chunk`,
    `adjacent chunks`): what the version's card says it was trained on.

    >>> docs = pa.table({"doc_id": ["d"], "title": ["T"], "text": ["T\\n\\nA. B."]})
    >>> chunks = pa.table({"doc_id": ["d", "d"], "seq": [0, 1], "text": ["T A.", "B."]})
    >>> mine_pairs(docs, chunks, 10, 0)
    [('T', 'T A.'), ('T A.', 'B.')]
    """
    by_doc: dict[str, list[tuple[int, str]]] = {}
    exclude = exclude or set()
    for doc_id, seq, text in zip(chunks["doc_id"].to_pylist(), chunks["seq"].to_pylist(),
                                 chunks["text"].to_pylist(), strict=True):
        if doc_id not in exclude:  # held out for evaluation: never trained on
            by_doc.setdefault(doc_id, []).append((seq, text))
    pairs: list[tuple[str, str]] = []
    kinds: list[str] = []
    titles = dict(zip(documents["doc_id"].to_pylist(), documents["title"].to_pylist(),
                      strict=True))
    for doc_id in sorted(by_doc):
        ordered = [text for _, text in sorted(by_doc[doc_id])]
        title = titles.get(doc_id)
        if title and ordered and ordered[0] != title:
            pairs.append((title, ordered[0]))
            kinds.append(TITLE_PAIRS)
        pairs.extend(zip(ordered, ordered[1:], strict=False))
        kinds.extend([ADJACENT_PAIRS] * max(len(ordered) - 1, 0))
    if len(pairs) > max_pairs:
        keep = sorted(random.Random(seed).sample(range(len(pairs)), max_pairs),
                      key=lambda i: pairs[i])
        pairs, kinds = [pairs[i] for i in keep], [kinds[i] for i in keep]
    if counts is not None:
        counts.update({kind: kinds.count(kind) for kind in (TITLE_PAIRS, ADJACENT_PAIRS)})
    return pairs


def finetune(model_location: str, pairs: list[tuple[str, str]], config: RetrainConfig,
             output_dir: Path) -> dict[str, Any]:
    """Train a copy of `model_location` on `pairs`; save it to `output_dir`.

    Returns training facts (steps, seconds, loss) for the record.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    model = SentenceTransformer(resolve_model(model_location), device="cpu")
    original_length = model.max_seq_length
    model.max_seq_length = min(model.max_seq_length or config.max_seq_length,
                               config.max_seq_length)
    dataset = Dataset.from_dict({"anchor": [a for a, _ in pairs],
                                 "positive": [p for _, p in pairs]})
    started = time.monotonic()

    class TimeBudget(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if time.monotonic() - started > config.max_seconds:
                control.should_training_stop = True
            return control

    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir / "_trainer"), max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size, learning_rate=config.learning_rate,
        warmup_steps=0, seed=config.seed, report_to=[], save_strategy="no",
        logging_steps=max(1, config.max_steps // 5), use_cpu=True, disable_tqdm=True,
        dataloader_drop_last=True)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                         loss=MultipleNegativesRankingLoss(model),
                                         callbacks=[TimeBudget()])
    result = trainer.train()
    model.max_seq_length = original_length  # the saved model keeps its inference limit
    model.save(str(output_dir))
    return {"steps": int(result.global_step), "train_loss": float(result.training_loss),
            "seconds": round(time.monotonic() - started, 1), "pairs": len(pairs)}
