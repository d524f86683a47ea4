"""Links from a run to its page in the Prefect UI, when a Prefect server is found.

Input: a flow-run id (from `runs.flow_run_id` or a version's summary). Output: the URL
`{ui}/runs/flow-run/{id}`, where `ui` is the API URL that `flows.cli.server.find_api()` finds
(PREFECT_API_URL, or the server `embedpipe serve` started here) without its `/api`; None when
no server answers or the id is not a flow-run id. The lookup is cached for a minute, so pages do
not wait on a health check.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from tasks.errors import EmbedpipeError


def find_ui() -> str | None:
    """The Prefect UI's base URL, or None when no server answers."""
    from flows.cli.server import find_api

    try:
        return find_api().rstrip("/").removesuffix("/api")
    except EmbedpipeError:  # ServerError: no server found
        return None


class PrefectLinks:
    """Flow-run links, with the server lookup cached for `ttl` seconds."""

    def __init__(self, find: Callable[[], str | None] = find_ui, ttl: float = 60.0) -> None:
        self._find = find
        self._ttl = ttl
        self._lock = threading.Lock()
        self._ui: str | None = None
        self._checked = float("-inf")  # never checked yet

    def ui(self) -> str | None:
        with self._lock:
            if time.monotonic() - self._checked > self._ttl:
                self._ui = self._find()
                self._checked = time.monotonic()
            return self._ui

    def flow_run(self, flow_run_id: str | None) -> str | None:
        """The UI page of a flow run, or None (no server, or not a run id)."""
        if not flow_run_id:
            return None
        try:
            run = uuid.UUID(str(flow_run_id))
        except ValueError:
            return None
        ui = self.ui()
        return f"{ui}/runs/flow-run/{run}" if ui else None

