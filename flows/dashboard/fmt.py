"""How numbers, times and corpus text look on the pages: the Jinja environment and its filters.

Input: values from the page data (ints, floats, naive-UTC datetimes, seconds, strings).
Output: short readable strings ("1,234", "0.6522", "3.2e-05", "5 min ago", "2026-05-01 12:00
UTC"). Autoescape is on for every template: corpus text is data, never markup.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).parent / "templates"
MISSING = "–"


def environment() -> jinja2.Environment:
    """The templates' environment: autoescape on, the filters below registered."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=num, metric=metric, ago=ago, when=when, secs=secs, short=short,
                       g=g)
    return env


def num(value: Any) -> str:
    """A count with thousands separators.

    >>> num(5183), num(None)
    ('5,183', '–')
    """
    if value is None:
        return MISSING
    return f"{int(value):,}"


def metric(value: Any) -> str:
    """A metric value: four decimals, whole numbers as such, tiny ones in scientific notation.

    >>> metric(0.65217), metric(291.0), metric(1.0), metric(6.7e-69), metric(None)
    ('0.6522', '291', '1.0000', '6.70e-69', '–')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    value = float(value)
    if value.is_integer() and abs(value) > 1:
        return f"{int(value):,}"
    if value != 0 and abs(value) < 0.001:
        return f"{value:.2e}"
    return f"{value:,.4f}"


def g(value: Any) -> str:
    """A setting as written: shortest form.

    >>> g(0.01), g(0.55)
    ('0.01', '0.55')
    """
    return MISSING if value is None else f"{float(value):g}"


def secs(value: Any) -> str:
    """A duration in seconds.

    >>> secs(1.234), secs(75.0)
    ('1.23 s', '75.0 s')
    """
    if value is None:
        return MISSING
    value = float(value)
    return f"{value:.2f} s" if value < 10 else f"{value:,.1f} s"


def ago(seconds: Any) -> str:
    """An age in the largest sensible unit.

    >>> ago(42), ago(300), ago(7200), ago(200000)
    ('42 s ago', '5 min ago', '2 h ago', '2 d ago')
    """
    if seconds is None:
        return MISSING
    s = max(0.0, float(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{int(s // size)} {unit} ago"
    return f"{int(s)} s ago"


def when(value: datetime | None) -> str:
    """A lake time (naive UTC) with its zone.

    >>> when(datetime(2026, 5, 1, 12, 0, 7))
    '2026-05-01 12:00:07 UTC'
    """
    return MISSING if value is None else f"{value:%Y-%m-%d %H:%M:%S} UTC"


def short(fingerprint: str | None, length: int = 12) -> str:
    """The start of a fingerprint or id (the full one is in the title attribute)."""
    return MISSING if not fingerprint else fingerprint[:length]
