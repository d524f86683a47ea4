"""One writer per warehouse across machines: a PostgreSQL advisory lock in the catalog database.

Input: the catalog URL and the warehouse's name (its resolved path or s3:// URL). Output: a
session-level `pg_try_advisory_lock` on a key derived from that name, held on a connection of
its own for the writer's whole life. PostgreSQL releases it when that connection ends, so a
writer that dies (kill -9, a lost machine) never leaves a stale lock; a file lock could not do
this for a warehouse on object storage, or shared by machines that do not share a filesystem.

Who holds it is told through the holder's `application_name` (pid, host, command), read back
from `pg_stat_activity` with the time its lock connection started.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from warehouse.errors import WarehouseError, WarehouseLocked

_TAG = "embedpipe-writer"
# application_name is cut at 63 bytes by PostgreSQL (NAMEDATALEN - 1): the tag and pid first.
_HOLDER = """
    SELECT a.application_name, to_char(a.backend_start AT TIME ZONE 'UTC',
                                       'YYYY-MM-DD"T"HH24:MI:SS+00:00')
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s
      AND l.objid::bigint = %s
      AND l.objsubid = 1"""


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for the warehouse called `name`.

    >>> lock_key("s3://lake/prod") == lock_key("s3://lake/prod"), -2**63 <= lock_key("x") < 2**63
    (True, True)
    """
    digest = hashlib.sha256(f"embedpipe:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _connect(catalog: str, application_name: str) -> Any:
    import psycopg

    url = urlparse(catalog)
    try:
        return psycopg.connect(
            dbname=url.path.lstrip("/") or "postgres", host=url.hostname or "127.0.0.1",
            port=url.port or 5432, user=url.username and unquote(url.username),
            password=url.password and unquote(url.password),
            application_name=application_name, autocommit=True, connect_timeout=30,
            # a lost server is noticed within a minute, also by the unlock at the end
            keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
    except psycopg.Error as exc:
        detail = str(exc).replace(url.password, "***") if url.password else str(exc)
        raise WarehouseError(f"cannot reach the catalog's PostgreSQL for the writer lock: "
                             f"{' '.join(detail.split())}") from None


@contextmanager
def advisory_lock(catalog: str, name: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the writer lock of warehouse `name`, or raise `WarehouseLocked` naming the holder.

    Args:
        catalog: the PostgreSQL catalog URL (the lock lives in its database).
        name: what identifies the warehouse (every machine must spell it the same way).
        wait_seconds: how long to keep trying before giving up; 0 fails at once.
    """
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:2]])
    me = f"{_TAG} {os.getpid()} {socket.gethostname()} {command}"[:63]
    key = lock_key(name)
    con = _connect(catalog, me)
    deadline = time.monotonic() + wait_seconds
    try:
        while not con.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]:
            if time.monotonic() >= deadline:
                raise WarehouseLocked(_held_message(con, key, name))
            time.sleep(0.2)
    except BaseException:
        con.close()
        raise
    try:
        yield
    finally:
        _release(con, key)


def _release(con: Any, key: int) -> None:
    """Unlock, then close. Closing alone frees the lock only once the server has processed the
    disconnect, which a loaded server may not have done when this process takes the lock again
    (CI: "locked by another writer: pid ?"); the unlock returns once the lock is free. A lost
    connection has released it already."""
    import psycopg

    try:
        con.execute("SELECT pg_advisory_unlock(%s)", [key])
    except psycopg.Error:
        pass
    finally:
        con.close()


def _held_message(con: Any, key: int, name: str) -> str:
    unsigned = key & 0xFFFFFFFFFFFFFFFF  # pg_locks shows the key as two unsigned 32-bit halves
    row = con.execute(_HOLDER, [unsigned >> 32, unsigned & 0xFFFFFFFF]).fetchone()
    pid = host = command = since = "?"
    if row:
        parts = (row[0] or "").split(" ", 3)
        if parts[0] == _TAG and len(parts) >= 3:
            pid, host = parts[1], parts[2]
            command = parts[3] if len(parts) > 3 else "?"
        since = row[1] or "?"
    return (f"warehouse {name} is locked by another writer: pid {pid} on {host} since {since} "
            f"({command}); wait for it to finish, or retry with --wait SECONDS")
