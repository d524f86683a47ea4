"""Give memory the dashboard freed back to the system: it runs for weeks beside a served loop.

glibc keeps what a long-lived, threaded process frees in its heaps, one arena per thread that
allocated (up to 8 per core), and returns it only from the top of each heap. So a dropped model
(~90 MB of weights, each retrain's fine-tune) or a retired DuckDB reader does not lower the RSS,
and new allocations land in other arenas: the 2-hour soak saw the dashboard creep from 450 to
501 MB. `limit_arenas` (called once, before the server starts its threads) caps the arenas at
two; `trim` (called after the dashboard drops a searcher or a model) hands free pages back.

Both do nothing where the C library is not glibc (musl, macOS): there the allocator decides.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache
from typing import Any

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
ARENAS = 2


@cache
def _glibc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):  # not glibc
        return None
    return libc


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at `arenas` for the threads started from now on."""
    libc = _glibc()
    return bool(libc and libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Return the heaps' free pages to the system; True when some were returned."""
    libc = _glibc()
    return bool(libc and libc.malloc_trim(0))
