"""OpenVINO on the CPU, fp32 weights, at the plugin's default inference precision (bf16 where
the CPU has AMX or AVX-512 BF16) or held to fp32 (`openvino-fp32`)."""

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

        properties: dict[str, object] = {"INFERENCE_NUM_THREADS": threads,
                                         "PERFORMANCE_HINT": "LATENCY"}
        if self.backend == "openvino-fp32":
            properties["INFERENCE_PRECISION_HINT"] = "f32"
        self.compiled = ov.Core().compile_model(str(directory / FILE), "CPU", properties)
        self.request = self.compiled.create_infer_request()
        return {port.get_any_name() for port in self.compiled.inputs}

    def run(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        result = self.request.infer(self.feed(ids, mask, types))
        return np.asarray(result[self.compiled.outputs[0]])
