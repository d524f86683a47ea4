"""OpenVINO on the CPU, fp32 weights (its int8 was no faster without VNNI: bench/backends.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tasks.embed.backends.native import NativeEmbedder

FILE = "model.xml"


class OpenVINOEmbedder(NativeEmbedder):
    def open_graph(self, directory: Path, threads: int) -> set[str]:
        os.environ.setdefault("OPENVINO_TELEMETRY_DISABLE", "1")
        import openvino as ov

        self.compiled = ov.Core().compile_model(str(directory / FILE), "CPU", {
            "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()
        return {port.get_any_name() for port in self.compiled.inputs}

    def run(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        result = self.request.infer(self.feed(ids, mask, types))
        return np.asarray(result[self.compiled.outputs[0]])
