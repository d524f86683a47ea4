"""The pipeline's stages, one package each (prep, embed, index, quality, monitor, train), and
the Prefect steps over them (steps); `errors` and the progress channel below are shared by all.

Progress reporting that stages can call without knowing who listens.

The CLI installs a rich progress bar with `reporting(...)`; flows add a Prefect progress artifact.
Default: nobody listens. A context variable (not a module global) carries the listener, so
concurrent runs in one process do not see each other's bars.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# listener(stage, done, total); total UNKNOWN while a stage cannot tell how much is left
Listener = Callable[[str, int, int], None]
UNKNOWN = -1
_listener: ContextVar[Listener | None] = ContextVar("embedpipe_progress", default=None)


def report(stage: str, done: int, total: int) -> None:
    listener = _listener.get()
    if listener is not None:
        listener(stage, done, total)


@contextmanager
def reporting(listener: Listener) -> Iterator[None]:
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)
