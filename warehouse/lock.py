"""One writer per warehouse: an advisory lock that says who holds it.

With the SQLite catalog it is a file lock, `writer.lock` in the warehouse directory: the OS
releases a `flock` when its process dies (kill -9 included), so a crashed writer never leaves a
stale lock behind; the JSON inside is only for the message to the next writer. With a PostgreSQL
catalog (a warehouse shared by machines, or on object storage, where no file lock reaches) it is
a PostgreSQL advisory lock in the catalog's database (`warehouse/pglock.py`), released the same
way when its holder dies.
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
from typing import TYPE_CHECKING

from warehouse.errors import WarehouseError, WarehouseLocked
from warehouse.lake import is_sqlite, require_shared_catalog

if TYPE_CHECKING:
    from warehouse.store import Warehouse


def warehouse_directory(directory: Path, create: bool) -> Path:
    """`directory` checked to be a warehouse directory (created when `create`).

    Raises:
        WarehouseError: it is a file, or it does not exist and `create` is off.
    """
    if directory.exists() and not directory.is_dir():
        raise WarehouseError(f"--warehouse {directory} is a file, not a warehouse directory")
    if not directory.exists():
        if not create:
            raise WarehouseError(f"no warehouse at {directory}: run `embedpipe ingest SOURCE` "
                                 "first (or pass --warehouse / set EMBEDPIPE_WAREHOUSE)")
        directory.mkdir(parents=True)
    return directory


def check_unlocked(warehouse: Warehouse, wait_seconds: float = 0.0, create: bool = True
                   ) -> None:
    """Fail now, before any slow start-up, if another writer holds the warehouse.

    A probe only (the lock is released at once); the writer takes it for real later. With
    `wait_seconds` the caller means to wait, so nothing is probed.
    """
    if wait_seconds > 0:
        return
    with warehouse_lock(warehouse, 0.0, create=create):
        pass


@contextmanager
def warehouse_lock(warehouse: Warehouse, wait_seconds: float = 0.0, create: bool = True
                   ) -> Iterator[None]:
    """Hold the writer lock of `warehouse`: advisory in PostgreSQL when the catalog is there,
    else the file lock in its directory (see `writer_lock`).

    Raises:
        WarehouseLocked: another writer holds it (after `wait_seconds`), naming the holder.
        WarehouseError: not a warehouse directory; object storage with the SQLite catalog.
    """
    location = warehouse.location
    require_shared_catalog(location, warehouse.catalog)
    if is_sqlite(warehouse.catalog):
        with writer_lock(warehouse.path, wait_seconds, create):
            yield
        return
    from warehouse.pglock import advisory_lock

    if location.is_remote:
        location.local.mkdir(parents=True, exist_ok=True)
    else:
        warehouse_directory(location.local, create)
    with advisory_lock(str(warehouse.catalog), location.url, wait_seconds):
        yield


@contextmanager
def writer_lock(directory: Path, wait_seconds: float = 0.0, create: bool = True
                ) -> Iterator[None]:
    """Hold the file lock of a warehouse directory, or raise `WarehouseLocked` naming the holder.

    Args:
        directory: the warehouse directory (created if missing, unless `create` is off).
        wait_seconds: how long to keep trying before giving up; 0 fails at once.
    """
    warehouse_directory(directory, create)
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
