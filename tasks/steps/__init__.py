"""Prefect task wrappers of the stage cores, grouped by the flow that runs them.

Kept apart from the cores so that commands which run no flow (search, sql, versions) never
import Prefect. A wrapper adds what Prefect is for — a task run in the UI, retries on the one
step that can fail transiently, progress artifacts — and times its stage; each takes only the
config sections its stage owns, never the whole config.
"""

from __future__ import annotations

import contextlib


def log(message: str) -> None:
    """One line in the current flow or task run's log (nothing outside a run)."""
    from prefect import get_run_logger
    from prefect.exceptions import MissingContextError

    with contextlib.suppress(MissingContextError):
        get_run_logger().info(message)
