"""`embed.backend = "auto"`: measure the backends on this machine once, pick the fastest faithful.

Input: a model (its fingerprint) and this machine. Output: a `Selection`, the table measured
(tokens/s, x torch, cosine to torch fp32, batch invariance) and the backend chosen, cached per
machine and model like the exports (`<cache>/backends/<model>-<machine>.json`).

Faithful means both:
- cosine to the torch fp32 reference >= `MIN_COSINE` for every calibration text, and
- batch-invariant: a text embedded alone and inside a batch of 64 mixed texts agree to
  cosine >= `MIN_INVARIANCE` (dynamic int8 quantizes activations per batch and fails this:
  query vectors, embedded alone, would carry other noise than the documents').

Throughput is measured side by side in one process on a fixed calibration sample shipped with
the package (`data/calibration.json`: 240 texts of 3-300 words), the fastest run of two.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks import report
from tasks.embed.base import (
    CONCRETE_BACKENDS,
    EmbedConfig,
    Embedder,
    fingerprint_directory,
    normalize_rows,
    resolve_model,
    runtime_versions,
)
from tasks.errors import ModelError

MIN_COSINE = 0.999
MIN_INVARIANCE = 0.9999
BATCH = 64
CALIBRATION = Path(__file__).with_name("data") / "calibration.json"
FORMAT = 1  # bumped when the measurement changes: older cached tables are measured again
# CPU features that decide which backends are fast (and whether bf16 runs natively).
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")


@dataclass(frozen=True)
class Measurement:
    backend: str
    tokens_per_second: float
    speedup: float  # x torch fp32, measured in the same run
    cosine_min: float  # to torch fp32, over every calibration text
    invariance_min: float  # alone vs inside a batch of 64, over the sampled texts
    faithful: bool
    note: str = ""  # why a backend was not measured or not faithful


@dataclass(frozen=True)
class Selection:
    chosen: str
    measurements: list[Measurement]
    machine: dict[str, Any]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "machine": self.machine, "seconds": self.seconds,
                "backends": [asdict(m) for m in self.measurements]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Selection:
        return cls(data["chosen"], [Measurement(**m) for m in data["backends"]],
                   data["machine"], float(data["seconds"]))


def cpu_flags() -> list[str]:
    """The CPU features of `FLAGS` this machine has (Linux: /proc/cpuinfo; else none)."""
    line = next((x for x in _cpuinfo() if x.startswith("flags")), "")
    present = set(line.partition(":")[2].split())
    return [f for f in FLAGS if f in present]


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is part of the install
        return False
    return bool(torch.cuda.is_available())


def native_bf16(flags: list[str]) -> bool:
    """Does a CPU with these flags compute bf16 natively (AMX or AVX-512 BF16)?"""
    return bool({"amx_bf16", "avx512_bf16"} & set(flags))


def candidates(flags: list[str], cuda: bool) -> list[str]:
    """The backends worth measuring here: bf16 only where the CPU computes it natively."""
    bf16 = native_bf16(flags)
    return [b for b in CONCRETE_BACKENDS
            if (b != "torch-bf16" or bf16) and (b != "cuda-fp16" or cuda)]


def machine() -> dict[str, Any]:
    """What decides the measurement: the CPU, its features, the runtimes' versions."""
    cpu = next((x.partition(":")[2].strip() for x in _cpuinfo() if x.startswith("model name")),
               platform.processor())
    return {"cpu": cpu, "flags": cpu_flags(), "cuda": cuda_available(),
            "runtime": runtime_versions()}


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def cache_path(root: Path, model_fingerprint: str, facts: dict[str, Any]) -> Path:
    key = hashlib.sha256(json.dumps([FORMAT, facts], sort_keys=True).encode()).hexdigest()[:16]
    return root.parent / "backends" / f"{model_fingerprint}-{key}.json"


def calibration_texts() -> list[str]:
    return list(json.loads(CALIBRATION.read_text(encoding="utf-8"))["texts"])


def select(config: EmbedConfig, load: Callable[[EmbedConfig], Embedder], root: Path,
           refresh: bool = False) -> Selection:
    """The backend `auto` means for `config.model` on this machine, measured once and cached.

    `load` builds an embedder for a concrete backend (the loader; exports are built once).
    The cache is keyed by the model's files (hashed, not loaded): a cached answer costs no
    model load.
    """
    facts = machine()
    model_key = fingerprint_directory(Path(resolve_model(config.model)), {"selection": FORMAT})
    path = cache_path(root, model_key, facts)
    if path.exists() and not refresh:
        return Selection.from_dict(json.loads(path.read_text()))
    reference = load(config.model_copy(update={"backend": "torch"}))
    selection = measure(config, load, reference, facts)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(selection.as_dict(), indent=2))
    staging.replace(path)
    return selection


def measure(config: EmbedConfig, load: Callable[[EmbedConfig], Embedder], reference: Embedder,
            facts: dict[str, Any]) -> Selection:
    """Measure every candidate side by side; the fastest faithful one is chosen."""
    started = time.monotonic()
    texts = calibration_texts()
    tokens = sum(len(ids) for ids in reference.tokenizer(texts, truncation=True,
                                                          max_length=reference.max_seq_length
                                                          )["input_ids"])
    truth = reference.encode(texts, BATCH)
    backends = candidates(facts["flags"], facts["cuda"])
    stage = "measure backends (once per machine and model)"
    measured: dict[str, tuple[float, float, float]] = {}
    notes: dict[str, str] = {}
    for done, backend in enumerate(backends):
        report(stage, done, len(backends))
        try:
            embedder = reference if backend == "torch" else load(
                config.model_copy(update={"backend": backend}))
        except (ModelError, ImportError, OSError, RuntimeError) as exc:  # not chosen, said why
            notes[backend] = f"not available: {' '.join(str(exc).split())[:120]}"
            continue
        vectors, seconds = _timed(embedder, texts)
        cosine = float(np.min(np.sum(normalize_rows(vectors) * normalize_rows(truth), axis=1)))
        measured[backend] = (tokens / seconds, cosine, invariance(embedder, texts))
    report(stage, len(backends), len(backends))
    base = measured.get("torch", (1.0, 1.0, 1.0))[0]
    rows = []
    for backend in backends:
        if backend not in measured:
            rows.append(Measurement(backend, 0.0, 0.0, 0.0, 0.0, False, notes[backend]))
            continue
        speed, cosine, invariant = measured[backend]
        faithful = cosine >= MIN_COSINE and invariant >= MIN_INVARIANCE
        note = "" if faithful else (f"cosine {cosine:.5f} < {MIN_COSINE}" if cosine < MIN_COSINE
                                    else f"batch invariance {invariant:.5f} < {MIN_INVARIANCE}")
        rows.append(Measurement(backend, round(speed, 1), round(speed / base, 3),
                                round(cosine, 6), round(invariant, 6), faithful, note))
    return Selection(choose(rows), rows, facts, round(time.monotonic() - started, 1))


def choose(rows: list[Measurement]) -> str:
    """The fastest faithful backend; torch (the reference) when none is."""
    faithful = [r for r in rows if r.faithful]
    return max(faithful, key=lambda r: r.tokens_per_second).backend if faithful else "torch"


def invariance(embedder: Embedder, texts: list[str], sample: int = 8) -> float:
    """Min cosine between texts embedded alone and the same texts inside one batch of 64
    mixed texts (long and short together, so the batch pads them)."""
    batch = texts[:BATCH]
    together = normalize_rows(embedder.encode(batch, BATCH))
    picks = np.linspace(0, len(batch) - 1, sample).astype(int)
    alone = normalize_rows(np.vstack([embedder.encode([batch[i]], 1) for i in picks]))
    return float(np.min(np.sum(alone * together[picks], axis=1)))


def _timed(embedder: Embedder, texts: list[str]) -> tuple[np.ndarray, float]:
    """Vectors of `texts` and the seconds of the faster of two runs (after one warm-up batch)."""
    embedder.encode(texts[:8], 8)
    best = float("inf")
    vectors = np.zeros((0, 0), dtype=np.float32)
    for _ in range(2):
        start = time.perf_counter()
        vectors = embedder.encode(texts, BATCH)
        best = min(best, time.perf_counter() - start)
    return vectors, best
