"""Fine-tune a copy of a model on pairs that need no labels, with in-batch negatives.

Input: training pairs (`tasks/train/pairs.py`: logged searches and the document hybrid search
returns first for them, by default; or titles, neighbouring chunks, sentences of the corpus);
output: a saved SentenceTransformer directory. Every other pair in a batch serves as a negative,
besides a mined hard negative per pair (MultipleNegativesRankingLoss).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.embed.base import resolve_model
from tasks.errors import EmptyCorpus
from tasks.train.pairs import PAIR_KINDS, Pair, mine_pairs, recipe

__all__ = ["PAIR_KINDS", "Pair", "RetrainConfig", "finetune", "mine_pairs", "recipe"]


PairKind = Literal["title", "adjacent", "ict", "log"]


class RetrainConfig(BaseModel):
    """What a retrain does and how long it may take."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Literal["finetune", "reembed"] = "finetune"
    # 48 steps of 32: about four passes over 400 training searches, the recipe that gained
    # +0.034 nDCG@10 on SciFact's real judgements (bench/retrain.py).
    max_steps: int = Field(48, ge=1)
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
    batch_size: int = Field(32, ge=2)  # in-batch negatives: batch_size - 1 per pair
    # Passes over the pairs at most (None: max_steps decides alone): 48 steps are four passes
    # over 400 searches, but thirty over the 50 training searches of a 100-search log.
    max_epochs: float | None = Field(4.0, gt=0)
    learning_rate: float = Field(2e-5, gt=0)
    max_pairs: int = Field(5000, ge=2)
    max_seq_length: int = Field(128, ge=16)  # training truncation; short keeps CPU steps cheap
    # What the pairs are (tasks/train/pairs.py): logged searches -> the document hybrid search
    # returns first (the default: the one kind that made the model better on real queries in
    # bench/retrain.py), title -> first chunk, adjacent chunks, and inverse cloze (a sentence
    # -> the rest of its document: these three made it worse there).
    pairs: list[PairKind] = Field(default_factory=lambda: list[PairKind](["log"]))
    hard_negatives: bool = True  # a mined negative per pair, besides the in-batch ones
    # The query log (`warehouse/query_log.py`): a label-free fine-tune trains on logged
    # searches and is judged on held-out ones; with fewer distinct searches than
    # `log_min_searches` it is skipped (nothing could show it better). `log_held_out`: the
    # share kept for judging (never trained on); `log_max_searches`: the newest ones read.
    log_min_searches: int = Field(100, ge=2)
    log_held_out: float = Field(0.5, gt=0, lt=1)
    log_max_searches: int = Field(5000, ge=2)
    bf16: bool | None = None  # bf16 autocast; None: where the CPU has AMX or AVX-512 BF16
    # With a value, the loss is computed GradCache-style in mini-batches of this size, so a
    # large batch (more in-batch negatives) fits in memory.
    mini_batch_size: int | None = Field(None, ge=1)
    # A general-domain STS file (e.g. STS-B dev) both models are scored on: the candidate may
    # not regress on it beyond the gate's tolerance (see EvaluateConfig.general). None: no guard.
    general_sts: Path | None = None
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


def finetune(model_location: str, pairs: list[tuple[str, str]] | list[Pair],
             config: RetrainConfig, output_dir: Path, device: str = "cpu") -> dict[str, Any]:
    """Train a copy of `model_location` on `pairs`; save it to `output_dir`.

    `device`: "cpu", or "cuda" (bf16 there; `bench/retrain.py --device cuda`).
    Returns training facts (steps, seconds, loss) for the record.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )
    from transformers import TrainerCallback

    from tasks.embed.selection import cpu_flags, native_bf16

    model = SentenceTransformer(resolve_model(model_location), device=device)
    original_length = model.max_seq_length
    model.max_seq_length = min(model.max_seq_length or config.max_seq_length,
                               config.max_seq_length)
    rows = [p if isinstance(p, Pair) else Pair("", "", p[0], p[1]) for p in pairs]
    columns = {"anchor": [r.anchor for r in rows], "positive": [r.positive for r in rows]}
    if any(r.negative for r in rows):  # (anchor, positive, negative) triples
        rows = [r for r in rows if r.negative]
        columns = {"anchor": [r.anchor for r in rows], "positive": [r.positive for r in rows],
                   "negative": [str(r.negative) for r in rows]}
    if len(rows) < 2:
        raise EmptyCorpus(f"{len(rows)} training pairs: nothing to fine-tune on (retrain.pairs "
                          f"{list(config.pairs)})")
    batch = min(config.batch_size, len(rows))
    steps = config.max_steps if config.max_epochs is None else max(1, min(
        config.max_steps, math.ceil(config.max_epochs * (len(rows) // batch))))
    dataset = Dataset.from_dict(columns)
    bf16 = config.bf16 if config.bf16 is not None else (
        device != "cpu" or native_bf16(cpu_flags()))
    started = time.monotonic()

    class TimeBudget(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if time.monotonic() - started > config.max_seconds:
                control.should_training_stop = True
            return control

    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir / "_trainer"), max_steps=steps,
        # A batch no larger than the pairs (whole batches only: a short log still trains).
        per_device_train_batch_size=batch,
        learning_rate=config.learning_rate,
        warmup_steps=0, seed=config.seed, report_to=[], save_strategy="no",
        logging_steps=max(1, steps // 5), use_cpu=device == "cpu", disable_tqdm=True,
        dataloader_drop_last=True, bf16=bf16)
    loss = (CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch_size)
            if config.mini_batch_size else MultipleNegativesRankingLoss(model))
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                         loss=loss, callbacks=[TimeBudget()])
    result = trainer.train()
    model.max_seq_length = original_length  # the saved model keeps its inference limit
    model.save(str(output_dir))
    return {"steps": int(result.global_step), "train_loss": float(result.training_loss),
            "seconds": round(time.monotonic() - started, 1), "pairs": len(rows),
            "bf16": bf16, "hard_negatives": "negative" in columns}
