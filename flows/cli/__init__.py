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


def one_line(exc: BaseException) -> str:
    """The message of `exc` on one line (a multi-line message is folded)."""
    return " ".join(str(exc).split())


if __name__ == "__main__":
    main()
