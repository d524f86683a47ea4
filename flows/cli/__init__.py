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
        full = out_of_space(exc)
        if full is None:
            raise
        err.print(f"[red]error:[/red] {full}", highlight=False, soft_wrap=True)
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


def one_line(exc: BaseException) -> str:
    """The message of `exc` on one line (a multi-line message is folded)."""
    return " ".join(str(exc).split())


if __name__ == "__main__":
    main()
