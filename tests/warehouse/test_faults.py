"""Fault injection on the warehouse's external parts: the S3 endpoint and the PostgreSQL catalog.

(The Prefect server's is in tests/deployments/test_faults.py, a full disk and kill -9 in
tests/flows/test_crash_safety.py.) Each ingest runs as `embedpipe ingest` in its own process,
paused inside its publish (rows inserted, not committed: warehouse/faults.py); the test takes the
part away, lets the run go on, and checks what an operator is promised: the run fails in one line
naming the part, the active version and its search results are unchanged, the writer lock is
free, the next run completes, and nothing is left behind once `gc` has run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.flows.test_versions import corpus_a, text, write
from tests.servers import PostgresCluster, TcpProxy, create_database, moto_server, wait_until
from tests.warehouse.test_object_storage import AWS, BUCKET, EMBEDPIPE, objects, run, top_hit
from warehouse.lake import connect as lake_connect
from warehouse.lock import warehouse_lock
from warehouse.store import Warehouse

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def s3_proxy(tmp_path_factory) -> Iterator[TcpProxy]:
    """moto's S3 API behind a proxy the test can cut (moto keeps its objects in memory: the
    endpoint goes away and comes back, the bucket survives); AWS_* point this process at it."""
    pytest.importorskip("moto", reason="moto[server] is a dev dependency: pip install -e '.[dev]'")
    with moto_server(tmp_path_factory.mktemp("moto-faults") / "moto.log") as url:
        proxy = TcpProxy(int(url.rsplit(":", 1)[1]))
        saved = {k: os.environ.get(k) for k in [*AWS, "AWS_ENDPOINT_URL"]}
        os.environ.update({**AWS, "AWS_ENDPOINT_URL": proxy.url})
        try:
            import boto3

            boto3.client("s3", endpoint_url=url).create_bucket(Bucket=BUCKET)
            yield proxy
        finally:
            proxy.cut()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture()
def cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL of this test's own, which it restarts."""
    directory = Path(tempfile.mkdtemp(prefix="embedpipe-pg-fault-"))  # see postgres_url
    server = PostgresCluster(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def corpora(root: Path) -> tuple[Path, Path]:
    """Corpus A (20 documents) and B (A with doc01 edited and doc19 deleted)."""
    a = corpus_a()
    b = {**a, "doc01": text(101)}
    del b["doc19"]
    return write(root / "a.jsonl", a), write(root / "b.jsonl", b)


def ingest_losing(part_goes: Callable[[], None], args: list[str], env: dict, root: Path
                  ) -> subprocess.CompletedProcess:
    """Run `embedpipe ARGS`, paused inside its publish; call `part_goes()`, let it go on, and
    return how it ended."""
    log, resume = root / "faulted.log", root / "resume"
    with log.open("w") as handle:
        proc = subprocess.Popen([EMBEDPIPE, *args], env={
            **env, "EMBEDPIPE_PAUSE_AT": "publish", "EMBEDPIPE_RESUME_FILE": str(resume)},
            stdout=subprocess.PIPE, stderr=handle, text=True, start_new_session=True)
    try:
        wait_until(lambda: "paused at publish" in log.read_text(), 300, "pause at publish",
                   proc)
        part_goes()
        resume.touch()
        stdout, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    return subprocess.CompletedProcess(args, proc.returncode, stdout, log.read_text())


def assert_one_line(done: subprocess.CompletedProcess, *fragments: str) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def assert_unchanged(location: str, catalog: str, env: dict, before: dict) -> None:
    """Version 1 is still the active one, answers the same search, and the lock is free."""
    wh = Warehouse(location, catalog)
    assert wh.version().version_id == 1
    assert top_hit(text(19), env) == before  # doc19, from version 1, the same score
    with warehouse_lock(wh):  # free: taken at once (a held one fails fast, wait 0)
        pass


def assert_nothing_left(location: str, catalog: str) -> None:
    """No data file the catalog does not reference (the lake's own check)."""
    con = lake_connect(Warehouse(location, catalog).location, catalog)
    try:
        orphans = con.execute("SELECT count(*) FROM ducklake_delete_orphaned_files('lake', "
                              "dry_run => true, cleanup_all => true)").fetchone()[0]
    finally:
        con.close()
    assert orphans == 0


def test_the_s3_endpoint_lost_mid_publish(s3_proxy, postgres_url, prefect_api, tmp_path):
    location = f"s3://{BUCKET}/fault-{uuid.uuid4().hex[:8]}"
    catalog = create_database(postgres_url, f"lake_{uuid.uuid4().hex[:12]}")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "EMBEDPIPE_EMBED__MODEL": "hash",
           "EMBEDPIPE_WAREHOUSE": location, "EMBEDPIPE_CATALOG": catalog,
           "EMBEDPIPE_CACHE_DIR": str(tmp_path / "cache")}
    path_a, path_b = corpora(tmp_path)
    assert run(["ingest", str(path_a)], env).returncode == 0
    before = top_hit(text(19), env)
    assert (before["doc_id"], before["version_id"]) == ("doc19", 1)

    failed = ingest_losing(s3_proxy.cut, ["ingest", str(path_b)], env, tmp_path)
    assert_one_line(failed, "lost the object store", s3_proxy.url)
    s3_proxy.restore()
    assert_unchanged(location, catalog, env, before)

    rerun = run(["ingest", str(path_b), "--json"], env)
    assert rerun.returncode == 0, rerun.stderr
    published = json.loads(rerun.stdout)
    assert published["status"] == "published"
    assert top_hit(text(19), env)["doc_id"] != "doc19"  # deleted in B, now active
    # What the lost run wrote is swept by gc: data files nothing references, and the index
    # folders of versions that are gone.
    collected = run(["gc", "--keep", "1", "--json"], env)
    assert collected.returncode == 0, collected.stderr
    assert_nothing_left(location, catalog)
    kept = {str(v.version_id) for v in Warehouse(location, catalog).versions()
            if v.status != "expired"}
    prefix = location.removeprefix(f"s3://{BUCKET}/")
    indexed = {key.split("/")[1] for key in objects(prefix) if key.startswith("indexes/")}
    assert indexed == kept == {str(published["version_id"])}


def test_the_postgresql_catalog_restarted_mid_ingest(cluster, prefect_api, tmp_path):
    catalog = create_database(cluster.url, "lake")
    location = str(tmp_path / "wh")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "EMBEDPIPE_EMBED__MODEL": "hash",
           "EMBEDPIPE_WAREHOUSE": location, "EMBEDPIPE_CATALOG": catalog}
    path_a, path_b = corpora(tmp_path)
    assert run(["ingest", str(path_a)], env).returncode == 0
    before = top_hit(text(19), env)

    def restart() -> None:
        cluster.stop(signal.SIGINT)  # a fast shutdown: every session is cut
        cluster.start()

    failed = ingest_losing(restart, ["ingest", str(path_b)], env, tmp_path)
    assert_one_line(failed, f"the catalog at {catalog} failed the commit of version 2",
                    "nothing was published")
    # The advisory lock was the lost session's: free now, without anyone releasing it.
    assert_unchanged(location, catalog, env, before)

    rerun = run(["ingest", str(path_b), "--json"], env)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["status"] == "published"
    assert top_hit(text(19), env)["doc_id"] != "doc19"
    assert run(["gc", "--keep", "1"], env).returncode == 0
    assert_nothing_left(location, catalog)
