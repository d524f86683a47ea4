"""Real services for tests: a Prefect server on a free loopback port, started and always stopped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from flows.cli.common import answers_ok, api_healthy, free_port, stop_process_group

BIN = Path(sys.executable).parent


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        time.sleep(0.3)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


@contextmanager
def running(proc: subprocess.Popen, log: IO[str], ready: Callable[[], bool], timeout: float,
            what: str) -> Iterator[None]:
    """Wait until `ready()` for a server started in its own session; on exit stop its whole
    process group and close its log."""
    try:
        wait_until(ready, timeout, what, proc)
        yield
    finally:
        stop_process_group(proc)
        log.close()


@contextmanager
def prefect_server(home: Path, startup_timeout: float = 90.0) -> Iterator[str]:
    """A `prefect server start` on 127.0.0.1 with its own SQLite database; yields the API URL."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("w")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    with running(proc, log, lambda: api_healthy(url), startup_timeout, "prefect server"):
        yield url


def postgres_bindir() -> Path | None:
    """Directory of PostgreSQL's server binaries (Debian keeps them off PATH), or None."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root, a developer usually does not.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres_server(directory: Path, startup_timeout: float = 60.0) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields `postgresql://postgres@host:port`."""
    bindir = postgres_bindir()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL server binaries not found under /usr/lib/postgresql "
                                "(apt-get install postgresql)")
    data = directory / "pgdata"
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    subprocess.run(_as_postgres_user([str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                                      "-U", "postgres", "--no-sync"]),
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    log = (directory / "postgres.log").open("w")
    proc = subprocess.Popen(_as_postgres_user([
        str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(directory),
        "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def ready() -> bool:
        return subprocess.run([str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                              capture_output=True).returncode == 0

    with running(proc, log, ready, startup_timeout, "postgres"):
        yield f"postgresql://postgres@127.0.0.1:{port}"


def create_database(url: str, name: str) -> str:
    """CREATE DATABASE `name` on the server at `url`; returns the database's URL."""
    host_port = url.rsplit("@", 1)[1]
    host, port = host_port.split(":")
    subprocess.run(["psql", "-h", host, "-p", port, "-U", "postgres", "-v", "ON_ERROR_STOP=1",
                    "-c", f'CREATE DATABASE "{name}"'], check=True, capture_output=True,
                   timeout=60)
    return f"{url}/{name}"


@contextmanager
def moto_server(log_path: Path, startup_timeout: float = 60.0) -> Iterator[str]:
    """moto's S3 API on 127.0.0.1 (in memory, nothing leaves the machine); yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    with running(proc, log, lambda: answers_ok(f"{url}/moto-api/"), startup_timeout,
                 "moto server"):
        yield url
