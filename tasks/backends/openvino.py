"""OpenVINO on the CPU, fp32 weights (its int8 was no faster without VNNI: bench/backends.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tasks.backends.native import NativeEmbedder

FILE = "model.xml"


class OpenVINOEmbedder(NativeEmbedder):
    def __init__(self, directory: Path, name: str, location: str, source: Path,
                 threads: int) -> None:
        super().__init__(directory, name, location, source, threads)
        os.environ.setdefault("OPENVINO_TELEMETRY_DISABLE", "1")
        import openvino as ov

        self.compiled = ov.Core().compile_model(str(directory / FILE), "CPU", {
            "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()
        self.inputs = {port.get_any_name() for port in self.compiled.inputs}

    def run(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        result = self.request.infer({k: v for k, v in feed.items() if k in self.inputs})
        return np.asarray(result[self.compiled.outputs[0]])
