"""Named pause points, for crash and concurrency tests of real processes.

With `EMBEDPIPE_PAUSE_AT=<point>` a process prints `embedpipe: paused at <point>` on stderr and
sleeps there, so a test can `kill -9` it at exactly that point, or run a reader beside it.
Points, in ingest order: plan (lock held, nothing written), publish (inside the publishing
transaction, rows inserted, not committed), index (version committed, index not built),
promote (index built, version not active yet). Unset, a checkpoint costs one dict lookup.
"""

from __future__ import annotations

import os
import sys
import time

POINTS = ("plan", "publish", "index", "promote")


def checkpoint(point: str) -> None:
    if os.environ.get("EMBEDPIPE_PAUSE_AT") != point:
        return
    print(f"embedpipe: paused at {point}", file=sys.stderr, flush=True)
    time.sleep(float(os.environ.get("EMBEDPIPE_PAUSE_SECONDS", "600")))
