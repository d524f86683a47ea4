"""Named pause points, for crash and concurrency tests of real processes.

With `EMBEDPIPE_PAUSE_AT=<point>` a process prints `embedpipe: paused at <point>` on stderr and
sleeps there, so a test can `kill -9` it at exactly that point, or run a reader beside it.
Points, in ingest order: plan (lock held, nothing written), publish (inside the publishing
transaction, rows inserted, not committed), index (version committed, index not built),
promote (index built, version not active yet); and monitor (a drift check, before it reads
anything). It sleeps `EMBEDPIPE_PAUSE_SECONDS` (default 600), or until the file named by
`EMBEDPIPE_RESUME_FILE` exists (a test takes a part away, then lets the run go on).
Unset, a checkpoint costs one dict lookup.
"""

from __future__ import annotations

import os
import sys
import time

POINTS = ("plan", "publish", "index", "promote")  # the ingest's


def checkpoint(point: str) -> None:
    if os.environ.get("EMBEDPIPE_PAUSE_AT") != point:
        return
    print(f"embedpipe: paused at {point}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + float(os.environ.get("EMBEDPIPE_PAUSE_SECONDS", "600"))
    resume = os.environ.get("EMBEDPIPE_RESUME_FILE")
    while time.monotonic() < deadline and not (resume and os.path.exists(resume)):
        time.sleep(0.1)
