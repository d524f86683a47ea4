"""Real services for tests: a Prefect server on a free loopback port, started and always stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
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


class PrefectServer:
    """`prefect server start` on 127.0.0.1 with its own SQLite database, which a test may kill
    and start again (the same port and database: what a crashed and restarted server is)."""

    def __init__(self, home: Path) -> None:
        self.home, self.port = home, free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> None:
        env = {**os.environ, "PREFECT_HOME": str(self.home),
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
               "PREFECT_LOGGING_LEVEL": "WARNING"}
        env.pop("PREFECT_API_URL", None)
        with (self.home / "server.log").open("a") as log:
            self.proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host",
                                          "127.0.0.1", "--port", str(self.port)], env=env,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        wait_until(lambda: api_healthy(self.url), timeout, "prefect server", self.proc)

    def kill(self) -> None:
        """SIGKILL, the whole process group: no goodbye to its clients."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc)


@contextmanager
def prefect_server(home: Path, startup_timeout: float = 90.0) -> Iterator[str]:
    """A `prefect server start` on 127.0.0.1 with its own SQLite database; yields the API URL."""
    server = PrefectServer(home)
    try:
        server.start(startup_timeout)
        yield server.url
    finally:
        server.stop()


def postgres_bindir() -> Path | None:
    """Directory of PostgreSQL's server binaries (Debian keeps them off PATH), or None."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root, a developer usually does not.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PostgresCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1 that a test may stop and start again (the
    same port and data: what a restart of the catalog server looks like to its clients)."""

    def __init__(self, directory: Path) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise FileNotFoundError("PostgreSQL server binaries not found under "
                                    "/usr/lib/postgresql (apt-get install postgresql)")
        self.bindir, self.directory = bindir, directory
        self.data = directory / "pgdata"
        directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        subprocess.run(_as_postgres_user([str(bindir / "initdb"), "-D", str(self.data), "-A",
                                          "trust", "-U", "postgres", "--no-sync"]),
                       check=True, capture_output=True, timeout=120)
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def ready(self) -> bool:
        return subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p",
                               str(self.port)], capture_output=True).returncode == 0

    def start(self, timeout: float = 60.0) -> None:
        log = (self.directory / "postgres.log").open("a")
        self.proc = subprocess.Popen(_as_postgres_user([
            str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k",
            str(self.directory), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_until(self.ready, timeout, "postgres", self.proc)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """SIGINT: a fast shutdown (sessions are cut, as in `pg_ctl restart -m fast`);
        SIGTERM then SIGKILL: the whole group, whatever it is doing."""
        if self.proc is None:
            return
        if sig == signal.SIGINT and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=60)
        stop_process_group(self.proc)
        self.proc = None


@contextmanager
def postgres_server(directory: Path, startup_timeout: float = 60.0) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields `postgresql://postgres@host:port`."""
    cluster = PostgresCluster(directory)
    cluster.start(startup_timeout)
    try:
        yield cluster.url
    finally:
        cluster.stop()


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


class TcpProxy:
    """A TCP forwarder on a free loopback port to `target_port`, which a test can cut (every
    connection closed, new ones refused) and restore on the same port: a server that went away
    and came back, for servers that keep their state only in memory (moto)."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
