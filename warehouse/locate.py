"""The location a warehouse name means: a directory, or object storage (`s3://bucket/prefix`).

Kept apart from `location.py` (the contract and the local implementation) so that neither
implementation imports the other: this module is the one place that knows both.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from warehouse.location import LocalLocation, Location, cache_directory, is_object_url
from warehouse.s3 import S3Location


def location_of(where: str | Path | Location, environ: Mapping[str, str] | None = None
                ) -> Location:
    """The location `where` names: `s3://bucket/prefix` or a directory path.

    >>> location_of("/srv/lake").url
    '/srv/lake'
    """
    if isinstance(where, Location):
        return where
    if is_object_url(where):
        return S3Location(str(where), cache_directory(str(where), environ))
    return LocalLocation(Path(where))
