"""Writes that meet another writer's commit: try again for a while.

Versions are written under the writer lock, but lock-free appends (a drift check, a run record,
a logged search) and a version's publish can still meet at the catalog: SQLite refuses a commit
at once with "database is locked" (duckdb/ducklake#1309), DuckLake answers a conflict. Each
attempt is one transaction, rolled back when refused, so it can be run again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import duckdb

BUSY_SECONDS = 120.0  # how long a small write retries a catalog another writer holds


def retrying(write: Callable[[], Any], seconds: float = BUSY_SECONDS) -> Any:
    """`write()`, again after a growing pause while the catalog is busy with another commit.

    `seconds` counts from the first refusal: a long write (a big version's publish) is not
    refused retries by its own length. Other errors, and the last refusal, are raised.
    """
    deadline, pause = None, 0.1
    while True:
        try:
            return write()
        except duckdb.TransactionException as exc:
            if not busy(exc):
                raise
            deadline = deadline or time.monotonic() + seconds
            if time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def busy(exc: BaseException) -> bool:
    """Whether `exc` is the catalog turning a write away because another commit holds it."""
    text = str(exc).lower()
    return isinstance(exc, duckdb.TransactionException) and ("locked" in text
                                                              or "conflict" in text)
