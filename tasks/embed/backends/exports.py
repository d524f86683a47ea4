"""Build the exported copies of a model, once per model and backend, and find them again.

Input: a local SentenceTransformer directory and a backend (`onnx`, `onnx-int8`, `openvino`).
Output: a directory `<root>/<key>-<backend>/` with the graph, `tokenizer.json` and `meta.json`
(the fingerprint, dimension, sequence limit and pooling). The key hashes the source's files, so
a changed or fine-tuned model gets its own export, and an export is never rebuilt for a run.

How (measured in `bench/backends.py`; the reasons are in its results):
- onnx: the BERT body loaded with eager attention, exported by `torch.onnx.export` (the legacy
  exporter, opset 17), then onnxruntime's transformer optimizer fuses Attention, LayerNorm and
  GELU (with the default SDPA attention nothing fuses and ONNX is slower than torch).
- onnx-int8: that graph with int8 weights, per output channel (per-tensor int8 lost up to 10%
  cosine to torch on an AVX2 CPU; per channel stays above 0.98).
- openvino: `openvino.convert_model` of the same body, fp32 weights kept as fp32, run at the
  plugin's default inference precision (bf16 on CPUs with AMX or AVX-512 BF16);
  openvino-fp32: the same graph with inference held to fp32.
Every build is checked against torch on a few texts before it is kept.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tasks import report
from tasks.embed.base import EmbedConfig, fingerprint_directory, runtime_versions
from tasks.errors import ModelError

FORMAT = 1  # bumped when the export recipe changes: older exports are rebuilt
MIN_COSINE = {"onnx": 0.99, "onnx-int8": 0.98, "openvino": 0.99, "openvino-fp32": 0.99}
_CHECK_TEXTS = ["A cat sits on the mat.", "Quarterly revenue grew by four percent.",
                "Vitamin D deficiency is associated with lower bone density in adults.",
                "def parse(argv): return argparse.ArgumentParser().parse_args(argv)"]


def export_root(configured: Path | None) -> Path:
    """Where exports live: the configured directory, $EMBEDPIPE_MODEL_CACHE, or the user cache."""
    if configured is not None:
        return Path(configured)
    env = os.environ.get("EMBEDPIPE_MODEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "embedpipe" / "exports"


def ensure_export(source: Path, backend: str, root: Path) -> Path:
    """The export directory of `source` for `backend`, built now if it does not exist yet.

    Builds take a file lock, so two processes never build the same export twice, and write to a
    staging directory renamed into place, so a crash never leaves half an export.
    """
    directory = _directory(source, backend, root)
    if (directory / "meta.json").exists():
        return directory
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_missing(source, backend, root)


def _directory(source: Path, backend: str, root: Path) -> Path:
    return root / f"{fingerprint_directory(source, {'export': FORMAT})}-{backend}"


def _build_missing(source: Path, backend: str, root: Path) -> Path:
    """Build the export unless it exists (the caller holds the lock)."""
    directory = _directory(source, backend, root)
    if (directory / "meta.json").exists():
        return directory
    if backend == "onnx-int8":  # quantized from the fp32 export: that one first
        _build_missing(source, "onnx", root)
    staging = root / f".{directory.name}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    stage = f"export {backend} (once per model)"
    report(stage, 0, 1)  # about 25 s: the progress bar says why the first run waits
    try:
        with _quiet():
            build(source, backend, staging)
        staging.rename(directory)
        report(stage, 1, 1)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def prune_exports(root: Path) -> list[str]:
    """Delete exports whose source model directory no longer exists (a fine-tuned model that
    `gc` removed: each retrain otherwise leaves ~90 MB per backend here), and staging
    directories of builds whose process is gone. Returns the names removed.

    Exports of a model that still exists are kept, whichever warehouse uses it: the cache is
    shared, and an export is content-addressed, so keeping a used one is always right.
    """
    if not root.is_dir():
        return []
    removed = []
    with (root / ".lock").open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # no build runs while we look
        for directory in sorted(p for p in root.iterdir() if p.is_dir()):
            if directory.name.startswith("."):  # .<name>.<pid>: a build, or a dead one's leftover
                pid = directory.name.rsplit(".", 1)[-1]
                gone = not (pid.isdigit() and _alive(int(pid)))
            else:
                try:
                    gone = not Path(json.loads((directory / "meta.json").read_text())
                                    ["source"]).exists()
                except (OSError, ValueError, KeyError):
                    gone = True  # no readable meta: half an export from before staging
            if gone:
                shutil.rmtree(directory, ignore_errors=True)
                removed.append(directory.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        return True
    return True


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters' tracer warnings and advice go to nobody: the export is checked instead."""
    import logging
    import warnings

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def build(source: Path, backend: str, out: Path) -> dict[str, Any]:
    """Export `source` for `backend` into `out`; returns the meta written there.

    Raises:
        ModelError: the model has no fast tokenizer, uses pooling other than mean or CLS, or the
            export disagrees with torch beyond the backend's bound.
    """
    from tasks.embed.backends.torch import SentenceTransformerEmbedder

    started = time.monotonic()
    reference = SentenceTransformerEmbedder(EmbedConfig(model=str(source)))
    if not (source / "tokenizer.json").exists():
        raise ModelError(f"{source}: no tokenizer.json (a fast tokenizer); backend {backend} "
                         "needs one: use backend torch")
    shutil.copy(source / "tokenizer.json", out / "tokenizer.json")
    pooling = _pooling(reference, backend)
    if backend.startswith("openvino"):  # one IR; openvino-fp32 holds inference to fp32
        _openvino(source, out)
    elif backend == "onnx-int8":  # quantized from the fp32 export (`_build_missing` made it)
        _quantize(_directory(source, "onnx", out.parent) / "model.onnx", out / "model.onnx")
    else:
        _onnx(source, out)
    tokenizer = reference.tokenizer
    meta = {"format": FORMAT, "backend": backend,
            "fingerprint": fingerprint_directory(source, reference.identity(backend)),
            "dimension": reference.dimension, "max_seq_length": reference.max_seq_length,
            "pooling": pooling, "pad_id": int(tokenizer.pad_token_id or 0),
            "pad_token": str(tokenizer.pad_token or "[PAD]"), "source": str(source),
            "built_seconds": round(time.monotonic() - started, 1), "versions": runtime_versions()}
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    _check(reference, out, backend, source)
    return meta


def _pooling(reference: Any, backend: str) -> str:
    modules = reference.modules
    if len(modules) < 2 or modules[1] != "Pooling":
        raise ModelError(f"backend {backend} supports Transformer + Pooling models; this one is "
                         f"{modules}: use backend torch")
    config = reference.model[1].get_config_dict()
    # sentence-transformers 5+ says `pooling_mode: "mean"`; older configs set one flag each.
    mode = config.get("pooling_mode") or next(
        (m for m in ("mean", "cls") if config.get(f"pooling_mode_{m}_token"
                                                  if m == "cls" else "pooling_mode_mean_tokens")),
        None)
    if mode in ("mean", "cls"):
        return str(mode)
    raise ModelError(f"backend {backend} supports mean or CLS pooling; this model pools with "
                     f"{mode or config}: use backend torch")


def _body(source: Path, attention: str | None) -> Any:
    """The transformer as a module (ids, mask, types) -> last hidden state."""
    import torch
    from transformers import AutoModel

    kwargs: dict[str, Any] = {"attn_implementation": attention} if attention else {}
    model = AutoModel.from_pretrained(str(source), **kwargs).eval()

    class Body(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    return Body().eval(), model.config


def _example() -> tuple[Any, Any, Any]:
    import torch

    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102, 0, 0],
                        [101, 2178, 2028, 2003, 2936, 2084, 2008, 102]])
    return ids, (ids != 0).long(), torch.zeros_like(ids)


def _onnx(source: Path, out: Path) -> None:
    import torch
    from onnxruntime.transformers.optimizer import optimize_model

    body, config = _body(source, "eager")  # eager attention: the pattern the optimizer fuses
    raw = out / "raw.onnx"
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(body, _example(), str(raw), opset_version=17, dynamo=False,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["last_hidden_state"], do_constant_folding=True,
                          dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                        "token_type_ids": axes, "last_hidden_state": axes})
    if getattr(config, "model_type", "") == "bert":
        optimized = optimize_model(str(raw), model_type="bert", opt_level=0,
                                   num_heads=int(config.num_attention_heads),
                                   hidden_size=int(config.hidden_size))
        optimized.save_model_to_file(str(out / "model.onnx"))
        raw.unlink()
    else:  # no fusion recipe for this architecture: the plain graph still runs
        raw.rename(out / "model.onnx")


def _quantize(fp32: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # DefaultTensorType: shape inference cannot type the fused com.microsoft ops.
    quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def _openvino(source: Path, out: Path) -> None:
    import openvino as ov
    import torch

    no_openvino_telemetry()
    body, _ = _body(source, None)
    ids, mask, types = _example()
    with torch.no_grad():
        model = ov.convert_model(body, example_input={
            "input_ids": ids, "attention_mask": mask, "token_type_ids": types},
            input=[("input_ids", [-1, -1], ov.Type.i64),
                   ("attention_mask", [-1, -1], ov.Type.i64),
                   ("token_type_ids", [-1, -1], ov.Type.i64)])
    ov.save_model(model, str(out / "model.xml"), compress_to_fp16=False)


def no_openvino_telemetry() -> None:
    """Nothing leaves the machine: OpenVINO's converter reports every conversion to Google
    Analytics from a forked process unless a consent file in the user's home says no (or CI
    is set). Without a network that child hangs in getaddrinfo and the exiting process waits
    for it for ever: the soak found served runs that had ended but whose processes stayed
    (~650 MB each). The converter's modules get OpenVINO's own no-op telemetry instead."""
    from openvino.tools.ovc import convert_impl, telemetry_stub, telemetry_utils, utils

    for module in (convert_impl, telemetry_utils, utils):
        module.tm = telemetry_stub  # type: ignore[attr-defined]


def _check(reference: Any, directory: Path, backend: str, source: Path) -> None:
    from tasks.embed.backends.registry import native_class

    exported = native_class(backend)(directory, str(source), str(source), source, 2)
    a = reference.encode(_CHECK_TEXTS, 8)
    b = exported.encode(_CHECK_TEXTS, 8)
    cosine = float(np.min(np.sum(a * b, axis=1)))
    if cosine < MIN_COSINE[backend]:
        raise ModelError(f"the {backend} export of {source} disagrees with torch (cosine "
                         f"{cosine:.4f} < {MIN_COSINE[backend]}); it was not kept")
