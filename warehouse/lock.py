"""One writer per warehouse: an advisory file lock that says who holds it.

The OS releases a `flock` when its process dies (kill -9 included), so a crashed writer never
leaves a stale lock behind; the JSON inside is only for the message to the next writer.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from warehouse.errors import WarehouseLocked


@contextmanager
def writer_lock(directory: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the warehouse's writer lock, or raise `WarehouseLocked` naming the holder.

    Args:
        directory: the warehouse directory.
        wait_seconds: how long to keep trying before giving up; 0 fails at once.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "writer.lock"
    handle = path.open("a+")
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseLocked(_held_message(path)) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv[:3]),
        }))
        handle.flush()
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock


def _held_message(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        holder = {}
    who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since "
           f"{holder.get('since', '?')} ({holder.get('command', '?')})")
    return (f"warehouse {path.parent} is locked by another writer: {who}; "
            "wait for it to finish, or retry with --wait SECONDS")
