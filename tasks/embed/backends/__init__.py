"""Embedding backends behind the one `Embedder` contract: torch and three exported runtimes.

`loader.load(config)` gives the embedder `embed.backend` names. The exported ones (`onnx`,
`onnx-int8`, `openvino`) are built from the torch model on first use (`exports.py`) and then
load without importing torch. The same contract test runs against every backend
(`tests/tasks/embed/test_embed.py`), each must agree with torch (cosine >= 0.99; int8 >= 0.98).
"""
