"""Embed: chunk texts in; L2-normalised float32 vectors out, by the model and backend configured.

`base` is the `Embedder` contract, `backends/` its implementations, `embedding` picks and runs one.
"""
