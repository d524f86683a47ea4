"""Where a warehouse lives: a local directory, or a prefix on object storage mirrored locally.

Input: `--warehouse` as given (a path, or `s3://bucket/prefix`). Output: a `Location` with
`local` (the directory this process reads and writes files in) and the few operations that move
files between `local` and the real home: `upload`, `fetch` (re-download only what changed),
`read_bytes`/`write_bytes`/`exists`/`delete` of single objects.

Why a mirror and not an object-store API everywhere: the index (hnswlib), the BM25 file
(DuckDB) and the model store are read by libraries that want a file path. So every file is
written locally first and uploaded, and a reader fetches a version's files into its cache once.
For a local warehouse `local` *is* the warehouse, and upload/fetch do nothing: local behaviour
is exactly what it was. Only the lake's Parquet data goes to object storage directly (DuckLake's
DATA_PATH through DuckDB's httpfs; see `warehouse/lake.py`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path


class Location(ABC):
    """A warehouse's home; relative names (`indexes/3/meta.json`) use '/' everywhere."""

    is_remote: bool = False
    local: Path  # this machine's copy: the warehouse itself, or a cache of a remote one

    @property
    @abstractmethod
    def url(self) -> str:
        """What names the warehouse: a resolved directory path or `s3://bucket/prefix`."""

    def join(self, *parts: str) -> str:
        """The full name of a file or folder under the location (a path or an s3:// URL)."""
        return "/".join([self.url.rstrip("/"), *parts])

    @abstractmethod
    def read_bytes(self, name: str) -> bytes | None:
        """The object's bytes, or None when there is none."""

    @abstractmethod
    def write_bytes(self, name: str, data: bytes) -> None: ...

    def exists(self, name: str) -> bool:
        return self.read_bytes(name) is not None

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove a file or a whole folder, here and (remote) in the local copy."""

    def remove_local(self, name: str) -> None:
        """Remove `local/name` (a file or a whole folder), if there."""
        path = self.local / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    @abstractmethod
    def upload(self, name: str, last: str | None = None) -> None:
        """Copy `local/name` (a file or a folder) to the real home; `last`: a file of that
        folder uploaded after all others (a reader that sees it sees the rest)."""

    @abstractmethod
    def fetch(self, name: str, marker: str) -> Path:
        """`local/name`, brought up to date: a folder is downloaded again only when its
        `marker` file differs from the home's (absent at home: the local copy is removed)."""


class LocalLocation(Location):
    """A directory on this machine (or a mount every machine sees)."""

    def __init__(self, directory: Path) -> None:
        self.local = directory

    @property
    def url(self) -> str:
        return str(self.local.resolve())

    def read_bytes(self, name: str) -> bytes | None:
        path = self.local / name
        return path.read_bytes() if path.is_file() else None

    def write_bytes(self, name: str, data: bytes) -> None:
        path = self.local / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def delete(self, name: str) -> None:
        self.remove_local(name)

    def upload(self, name: str, last: str | None = None) -> None:
        """Nothing to copy: the directory is the warehouse."""

    def fetch(self, name: str, marker: str) -> Path:
        return self.local / name

    def __repr__(self) -> str:
        return f"LocalLocation({str(self.local)!r})"


def is_object_url(where: str | Path | Location) -> bool:
    """Does `where` name object storage (`s3://…`) rather than a directory?

    >>> is_object_url("s3://lake/prod"), is_object_url("/srv/lake")
    (True, False)
    """
    return isinstance(where, str) and where.startswith("s3://")


def cache_directory(url: str, environ: Mapping[str, str] | None = None) -> Path:
    """This machine's copy of a remote warehouse: `<cache>/warehouses/<hash of url>/`.

    `<cache>` is `EMBEDPIPE_CACHE_DIR`, else `$XDG_CACHE_HOME/embedpipe`, else
    `~/.cache/embedpipe`.

    >>> cache_directory("s3://b/p", {"EMBEDPIPE_CACHE_DIR": "/c"}).as_posix()
    '/c/warehouses/7fb9692596506b4d'
    """
    env = os.environ if environ is None else environ
    if env.get("EMBEDPIPE_CACHE_DIR"):
        root = Path(env["EMBEDPIPE_CACHE_DIR"])
    elif env.get("XDG_CACHE_HOME"):
        root = Path(env["XDG_CACHE_HOME"]) / "embedpipe"
    else:
        root = Path.home() / ".cache" / "embedpipe"
    return root / "warehouses" / hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
