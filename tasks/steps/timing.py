"""Seconds per stage of a flow run, recorded by the steps themselves.

A flow opens `stage_timer()` once; every step decorated with `timed(stage)` adds its wall time
to that timer (a context variable, so concurrent runs in one process keep theirs apart). The
recipe stays free of timing code.
"""

from __future__ import annotations

import functools
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class StageTimer:
    """Wall time per stage, in seconds, and the process's peak RSS when each stage ended."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_rss_mb: dict[str, int] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + seconds, 3)
        # ru_maxrss is the high-water mark so far (KiB on Linux): the first stage whose value
        # jumps is the one that needed the memory.
        self.peak_rss_mb[stage] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


_current: ContextVar[StageTimer | None] = ContextVar("embedpipe_stage_timer", default=None)


@contextmanager
def stage_timer(reuse: bool = False) -> Iterator[StageTimer]:
    """A timer for the steps run inside; `reuse`: the one already open, if any (a recipe called
    from another recipe adds to its caller's stages)."""
    timer = (_current.get() if reuse else None) or StageTimer()
    token = _current.set(timer)
    try:
        yield timer
    finally:
        _current.reset(token)


def timed(stage: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Add the decorated step's wall time to the current `stage_timer`, if any."""
    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                timer = _current.get()
                if timer is not None:
                    timer.add(stage, time.perf_counter() - started)
        return wrapper
    return decorate
