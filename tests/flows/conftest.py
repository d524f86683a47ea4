"""Flow tests share one Prefect test harness (a temporary API server costs 10-25 s)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    """A real Prefect server for tests that run `embedpipe` in subprocesses (URL of its API)."""
    from tests.servers import prefect_server

    with prefect_server(tmp_path_factory.mktemp("prefect-home")) as url:
        yield url
