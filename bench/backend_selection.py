"""What `embed.backend = "auto"` measures on this machine and which backend it picks.

Runs the selection of `tasks/embed/selection.py` afresh (every backend this machine offers, side
by side on the shipped calibration sample: tokens/s, x torch fp32, cosine to torch fp32, batch
invariance) and writes it, with the CPU flags and load average, to
bench/results/backend_selection.json.

    .venv/bin/python bench/backend_selection.py
"""

from __future__ import annotations

from _common import bench_parser, write_result

from tasks.embed.backends.exports import export_root
from tasks.embed.backends.loader import load
from tasks.embed.base import EmbedConfig
from tasks.embed.selection import select


def main() -> None:
    bench_parser(__doc__).parse_args()
    selection = select(EmbedConfig(), load, export_root(None), refresh=True)
    for m in selection.measurements:
        print(f"{m.backend:14s} {m.tokens_per_second:9,.0f} tok/s {m.speedup:5.2f}x "
              f"cos {m.cosine_min:.5f} invariance {m.invariance_min:.6f} "
              f"{'AUTO' if m.backend == selection.chosen else ''} {m.note}")
    write_result("backend_selection", selection.as_dict())


if __name__ == "__main__":
    main()
