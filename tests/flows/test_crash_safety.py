"""Real processes: kill -9 mid-ingest, a second writer, a reader during a write.

Each ingest runs as `embedpipe ingest` in its own process (talking to one real Prefect server),
paused at a named checkpoint (see warehouse/faults.py) and then killed or left to finish.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.flows.test_versions import corpus_a, text, write
from tests.servers import wait_until
from warehouse.faults import POINTS
from warehouse.lake import connect as lake_connect
from warehouse.store import Warehouse

pytestmark = pytest.mark.slow
EMBEDPIPE = str(Path(sys.executable).parent / "embedpipe")


def run(args: list[str], env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([EMBEDPIPE, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def start_paused(args: list[str], env: dict, point: str, log: Path) -> subprocess.Popen:
    """Start `embedpipe ARGS` and return once it is paused at `point`."""
    handle = log.open("w")
    proc = subprocess.Popen([EMBEDPIPE, *args], env={**env, "EMBEDPIPE_PAUSE_AT": point},
                            stdout=subprocess.DEVNULL, stderr=handle, start_new_session=True)
    wait_until(lambda: f"paused at {point}" in log.read_text(), 240, f"pause at {point}", proc)
    return proc


@pytest.fixture(scope="module")
def base(tmp_path_factory, prefect_api):
    """A warehouse with version 1 (corpus A), and corpus B (3 edited, 2 deleted, 4 added)."""
    root = tmp_path_factory.mktemp("crash")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "EMBEDPIPE_EMBED__MODEL": "hash"}
    env.pop("PREFECT_LOGGING_LEVEL", None)  # as a user has it: the CLI quiets Prefect itself
    a = corpus_a()
    b = {**a, "doc01": text(101), "doc02": text(102), "doc03": text(103)}
    del b["doc18"], b["doc19"]
    b.update({f"new{i}": text(200 + i) for i in range(4)})
    path_a, path_b = write(root / "a.jsonl", a), write(root / "b.jsonl", b)
    done = run(["ingest", str(path_a), "--warehouse", str(root / "v1")], env)
    assert done.returncode == 0, done.stderr
    return root, env, path_b


def fresh_copy(base_root: Path, name: str) -> Path:
    target = base_root / name
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(base_root / "v1", target, ignore=shutil.ignore_patterns("writer.lock"))
    return target


def assert_intact(wh_path: Path, env: dict) -> None:
    wh = Warehouse(wh_path)
    assert wh.version().version_id == 1  # the active version did not move
    for v in wh.versions():
        con = wh.connect(v.version_id)
        dupes = con.execute("SELECT count(*) - count(DISTINCT chunk_id) FROM chunks").fetchone()
        assert dupes[0] == 0, f"duplicate chunk ids in version {v.version_id}"
    hit = run(["search", text(19), "-k", "1", "--json", "--warehouse", str(wh_path)], env)
    assert hit.returncode == 0, hit.stderr
    assert json.loads(hit.stdout.splitlines()[0])["doc_id"] == "doc19"  # v1's own index


@pytest.mark.parametrize("point", POINTS)
def test_kill_9_leaves_the_active_version_intact_and_rerun_completes(base, point):
    root, env, path_b = base
    wh_path = fresh_copy(root, f"kill-{point}")
    args = ["ingest", str(path_b), "--warehouse", str(wh_path)]
    proc = start_paused(args, env, point, root / f"kill-{point}.log")
    if point == "publish":
        # A reader beside a writer that is mid-publish sees the last published version.
        sql = run(["sql", "SELECT count(*) AS n FROM documents", "--format", "json",
                   "--warehouse", str(wh_path)], env)
        assert sql.returncode == 0, sql.stderr
        assert json.loads(sql.stdout) == {"n": 20}
        hit = run(["search", text(19), "-k", "1", "--json", "--warehouse", str(wh_path)], env)
        assert hit.returncode == 0, hit.stderr
        first = json.loads(hit.stdout.splitlines()[0])
        assert (first["doc_id"], first["version_id"]) == ("doc19", 1)  # deleted in B, not yet
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert_intact(wh_path, env)

    rerun = run([*args, "--json"], env)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["status"] == "published"
    wh = Warehouse(wh_path)
    active = wh.version()
    assert active.n_documents == 22 and active.version_id == summary["version_id"]
    con = wh.connect()
    dupes = con.execute("SELECT count(*) - count(DISTINCT chunk_id) FROM chunks").fetchone()
    assert dupes[0] == 0
    # Every Parquet file on disk is referenced by the catalog: nothing orphaned by the kill.
    rw = lake_connect(wh_path)
    orphans = rw.execute("SELECT count(*) FROM ducklake_delete_orphaned_files('lake', "
                         "dry_run => true, cleanup_all => true)").fetchone()[0]
    rw.close()
    assert orphans == 0


def test_second_writer_fails_fast_naming_the_holder(base):
    root, env, path_b = base
    wh_path = fresh_copy(root, "locked")
    args = ["ingest", str(path_b), "--warehouse", str(wh_path)]
    holder = start_paused(args, env, "plan", root / "locked.log")
    try:
        started = time.monotonic()
        second = run(args, env)
        assert second.returncode == 2
        assert "locked by another writer: pid" in second.stderr
        assert f"pid {holder.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        assert time.monotonic() - started < 120  # failed fast: did not wait for the holder
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)


def test_a_full_disk_fails_in_one_line_and_publishes_nothing(base):
    """No space left mid-ingest (the process under a small RLIMIT_FSIZE: every write past
    it fails with EFBIG, as on a full disk; no mount rights needed)."""
    root, env, path_b = base
    wh_path = fresh_copy(root, "full")
    # Room for the catalog (200 KB), its WAL and the new Parquet files, not for the version's
    # BM25 index file (about 1.8 MB): the write fails while the index is written.
    limit = 1 << 20

    def small_disk() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, do not kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    args = ["ingest", str(path_b), "--warehouse", str(wh_path)]
    full = subprocess.run([EMBEDPIPE, *args], env=env, capture_output=True, text=True,
                          timeout=300, preexec_fn=small_disk)
    assert full.returncode == 2, full.stderr
    errors = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "out of disk space" in errors[0], full.stderr
    assert "Traceback" not in full.stderr
    assert_intact(wh_path, env)
    rerun = run([*args, "--json"], env)  # the lock is free: the next run completes
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["status"] == "published"
