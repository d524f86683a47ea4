"""Garbage collection of a warehouse and the export cache: `embedpipe gc` and the gc flow.

No Prefect here (the command runs no flow). Each gc expires unpinned versions beyond the newest
`keep` (and gate-rejected ones), deletes their Parquet files, index folders, stored vectors and
fine-tuned models no kept version uses, cleans the lake's old snapshots and files, and deletes
exported copies of models that no longer exist (`tasks/embed/backends/exports.py`).
"""

from __future__ import annotations

from typing import Any

from flows.config import EmbedpipeConfig
from tasks.embed.backends.exports import export_root, prune_exports
from warehouse.maintenance import gc
from warehouse.writer import open_writer


def collect(config: EmbedpipeConfig, keep: int, expire_rejected: bool = True,
            wait: float = 0.0) -> dict[str, Any]:
    """One gc of the configured warehouse and the export cache; what it removed."""
    with open_writer(config.warehouse.open(), wait, create=False) as writer:
        removed = gc(writer, keep, expire_rejected=expire_rejected).as_dict()
    removed["exports_removed"] = prune_exports(export_root(config.embed.export_dir))
    return removed


def headline(removed: dict[str, Any]) -> str:
    """`expired v3, v4; freed 182.0 MB; 2 models, 4 exports removed`"""
    expired = ", ".join(f"v{v}" for v in removed["expired"]) or "nothing"
    return (f"expired {expired}; freed {removed['bytes_freed'] / 1e6:.1f} MB; "
            f"{len(removed['models_removed'])} models, {len(removed['exports_removed'])} "
            "exports removed")
