"""ONNX Runtime, fp32 (`onnx`) or with int8 weights (`onnx-int8`), on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.backends.native import NativeEmbedder

FILE = "model.onnx"


class OnnxEmbedder(NativeEmbedder):
    def __init__(self, directory: Path, name: str, location: str, source: Path,
                 threads: int) -> None:
        super().__init__(directory, name, location, source, threads)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: the CLI owns the terminal
        self.session = ort.InferenceSession(str(directory / FILE), options,
                                            providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}

    def run(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
