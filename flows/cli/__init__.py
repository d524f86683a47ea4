"""The `embedpipe` command line: parse, call one library function, print.

Commands live by subject in this package (`ingest`, `query`, `versions`, `monitor`, `server`);
importing it registers them on one Typer app. Heavy libraries (Prefect, torch) are imported
inside the commands that need them: `search`, `versions`, `sql`, `diff` answer without Prefect
and without its API server. Domain errors become one line on stderr and exit code 2; nothing
else is caught.
"""

from __future__ import annotations

import sys

from flows.cli import (  # noqa: F401 - registers commands
    backends,
    dashboard,
    ingest,
    monitor,
    query,
    server,
    versions,
)
from flows.cli.common import app, err

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: run the app, turning domain errors into one-line messages.

    Usage errors are click's (exit 2 with usage); anything else is a bug and keeps its traceback.
    """
    from tasks.errors import EmbedpipeError
    from warehouse.errors import WarehouseError

    try:
        app()
    except (EmbedpipeError, WarehouseError) as exc:
        err.print(f"[red]error:[/red] {one_line(exc)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as exc:
        line = out_of_space(exc) or lost_part(exc)
        if line is None:
            raise
        err.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
        sys.exit(2)


# What a full disk (or a file size limit) says, from the OS, DuckDB, Arrow or SQLite.
_FULL = ("no space left on device", "file too large", "disk quota exceeded",
         "database or disk is full")


def out_of_space(exc: BaseException) -> str | None:
    """One line for an error caused by a full disk or a file-size limit, else None.

    Nothing half-written becomes active when it happens (versions are published in one catalog
    transaction and promoted only after their index is in place; index files are renamed into
    place), so the line says that and that the run can simply be repeated.

    >>> out_of_space(OSError(28, "No space left on device"))[:34]
    'out of disk space (or over a file '
    """
    seen: BaseException | None = exc
    while seen is not None:
        text = " ".join(str(seen).split())
        if any(mark in text.lower() for mark in _FULL):
            return (f"out of disk space (or over a file size limit) while writing: {text[:300]}; "
                    "the active version is unchanged; free space and run it again")
        seen = seen.__cause__ or seen.__context__
    return None


# What a lost S3 endpoint and a lost PostgreSQL catalog say, through DuckDB, libpq or boto
# (in this order: DuckDB's HTTP errors also say "could not connect to server").
_LOST = {"the object store": ("error for http", "could not establish connection",
                              "http get error", "http put error", "http head error",
                              "could not connect to the endpoint", "connection reset"),
         "the PostgreSQL catalog": ("server closed the connection", "terminating connection",
                                    "connection to server", "no connection to the server",
                                    "could not connect to server")}


def lost_part(exc: BaseException) -> str | None:
    """One line for an error caused by a catalog server or an S3 endpoint that went away
    mid-run, naming which (and where, without a password), else None.

    Nothing becomes active without a committed catalog transaction, and the writer lock (a
    lock file's handle, or a PostgreSQL advisory lock of the lost session) went with the
    process or its connection, so the run can simply be repeated once the part is back.

    >>> lost_part(RuntimeError("IO Error: Could not establish connection")).startswith(
    ...     "lost the object store")
    True
    >>> lost_part(RuntimeError("Binder Error: no such column")) is None
    True
    """
    import os

    from warehouse.lake import redact_catalog

    seen: BaseException | None = exc
    while seen is not None:
        text = " ".join(str(seen).split())
        for part, marks in _LOST.items():
            if any(mark in text.lower() for mark in marks):
                where = (os.environ.get("AWS_ENDPOINT_URL") if "object" in part
                         else redact_catalog(os.environ.get("EMBEDPIPE_CATALOG")))
                named = f"{part} at {where}" if where else part
                return (f"lost {named} mid-run: {text[:300]}; the active version is unchanged;"
                        " run it again once it answers")
        seen = seen.__cause__ or seen.__context__
    return None


def one_line(exc: BaseException) -> str:
    """The message of `exc` on one line (a multi-line message is folded)."""
    return " ".join(str(exc).split())


if __name__ == "__main__":
    main()
