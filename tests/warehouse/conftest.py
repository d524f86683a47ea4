"""Warehouse contract tests run against both catalogs: embedded SQLite and a real PostgreSQL."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.servers import create_database, postgres_bindir, postgres_server


@pytest.fixture(scope="session")
def postgres_url():
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs it: apt-get install postgresql)")
    # Under /tmp itself: pytest's own temp dirs are private to root, and the server runs as
    # the postgres user when the tests run as root.
    directory = Path(tempfile.mkdtemp(prefix="embedpipe-pg-"))
    try:
        with postgres_server(directory) as url:
            yield url
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog(request) -> str | None:
    """None for the embedded SQLite catalog, else the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    url = request.getfixturevalue("postgres_url")
    return create_database(url, f"lake_{uuid.uuid4().hex[:12]}")
