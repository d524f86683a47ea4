"""ONNX Runtime, fp32 (`onnx`) or with int8 weights (`onnx-int8`), on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.embed.backends.native import NativeEmbedder

FILE = "model.onnx"


class OnnxEmbedder(NativeEmbedder):
    def open_graph(self, directory: Path, threads: int) -> set[str]:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: the CLI owns the terminal
        self.session = ort.InferenceSession(str(directory / FILE), options,
                                            providers=["CPUExecutionProvider"])
        return {i.name for i in self.session.get_inputs()}

    def run(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        return self.session.run(None, self.feed(ids, mask, types))[0]
