"""The classes of the exported backends, by backend name (imported only when asked for)."""

from __future__ import annotations


def native_class(backend: str) -> type:
    """The embedder class of an exported backend."""
    if backend.startswith("openvino"):
        from tasks.embed.backends.openvino import OpenVINOEmbedder

        return OpenVINOEmbedder
    from tasks.embed.backends.onnx import OnnxEmbedder

    return OnnxEmbedder
