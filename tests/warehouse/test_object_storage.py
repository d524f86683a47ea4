"""A warehouse on object storage shared by processes: moto's S3 API + a real PostgreSQL catalog.

Every `embedpipe` here runs in its own process, as on separate machines: each has its own local
cache (EMBEDPIPE_CACHE_DIR), so whatever a reader finds it fetched from the bucket. Ingests run
the real flow against the session's Prefect server with the deterministic hash model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.flows.test_versions import corpus_a, text, write
from tests.servers import create_database, moto_server, wait_until
from warehouse.errors import WarehouseLocked
from warehouse.lock import warehouse_lock
from warehouse.store import Warehouse

pytestmark = pytest.mark.slow
EMBEDPIPE = str(Path(sys.executable).parent / "embedpipe")
BUCKET = "embedpipe-test"
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret-value",
       "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> Iterator[str]:
    """A moto S3 endpoint with one bucket; the AWS_* variables point this process at it."""
    pytest.importorskip("moto", reason="moto[server] is a dev dependency: pip install -e '.[dev]'")
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        saved = {k: os.environ.get(k) for k in [*AWS, "AWS_ENDPOINT_URL"]}
        os.environ.update({**AWS, "AWS_ENDPOINT_URL": url})
        try:
            import boto3

            boto3.client("s3", endpoint_url=url).create_bucket(Bucket=BUCKET)
            yield url
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def objects(prefix: str) -> list[str]:
    """Keys under `s3://BUCKET/prefix/`, relative to it."""
    import boto3

    listed = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).list_objects_v2(
        Bucket=BUCKET, Prefix=prefix + "/")
    return sorted(o["Key"].removeprefix(prefix + "/") for o in listed.get("Contents", []))


def run(args: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([EMBEDPIPE, *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def machine(env: dict, root: Path, name: str) -> dict:
    """The environment of another 'machine': the same bucket and catalog, its own cache."""
    return {**env, "EMBEDPIPE_CACHE_DIR": str(root / f"cache-{name}")}


@pytest.fixture(scope="module")
def shared(tmp_path_factory, s3, postgres_url, prefect_api):
    """Version 1 (corpus A, 20 documents) ingested into s3://BUCKET/<prefix> by 'machine w'."""
    root = tmp_path_factory.mktemp("shared")
    prefix = f"lake-{uuid.uuid4().hex[:8]}"
    catalog = create_database(postgres_url, f"lake_{uuid.uuid4().hex[:12]}")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "EMBEDPIPE_EMBED__MODEL": "hash",
           "EMBEDPIPE_WAREHOUSE": f"s3://{BUCKET}/{prefix}", "EMBEDPIPE_CATALOG": catalog}
    env.pop("PREFECT_LOGGING_LEVEL", None)
    a = corpus_a()
    b = {**a, "doc01": text(101)}
    del b["doc19"]
    path_a, path_b = write(root / "a.jsonl", a), write(root / "b.jsonl", b)
    done = run(["ingest", str(path_a), "--json"], machine(env, root, "w"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version_id"] == 1
    assert AWS["AWS_SECRET_ACCESS_KEY"] not in done.stdout + done.stderr
    return root, env, prefix, catalog, path_b


def top_hit(query: str, env: dict) -> dict:
    found = run(["search", query, "-k", "1", "--json"], env)
    assert found.returncode == 0, found.stderr
    return json.loads(found.stdout.splitlines()[0])


@pytest.mark.postgres
def test_a_second_machine_searches_what_the_first_ingested(shared):
    root, env, prefix, _, _ = shared
    stored = objects(prefix)
    # Lake data, index files and the card are in the bucket; nothing of the catalog is.
    assert any(k.startswith("data/") and k.endswith(".parquet") for k in stored)
    assert {"indexes/1/meta.json", "indexes/1/index.bin", "indexes/1/chunks.parquet",
            "indexes/1/bm25.duckdb", "cards/1.md"} <= set(stored)
    assert not any("catalog.sqlite" in k or "writer.lock" in k for k in stored)

    reader = machine(env, root, "r")
    hit = top_hit(text(7), reader)
    assert (hit["doc_id"], hit["version_id"]) == ("doc07", 1)
    cached = [p for p in Path(reader["EMBEDPIPE_CACHE_DIR"]).glob("warehouses/*/indexes/1")]
    assert len(cached) == 1  # fetched from the bucket into this machine's cache
    assert sorted(p.name for p in cached[0].iterdir()) == [
        "bm25.duckdb", "chunks.parquet", "index.bin", "meta.json"]
    assert not list(Path(reader["EMBEDPIPE_CACHE_DIR"]).glob("warehouses/*/data"))
    before = (cached[0] / "index.bin").stat().st_ino
    hit = top_hit(text(3), reader)
    assert hit["doc_id"] == "doc03"
    assert (cached[0] / "index.bin").stat().st_ino == before  # unchanged: not downloaded again
    # The SQL sandbox reads the lake's Parquet on s3 too (and still nothing else).
    sql = run(["sql", "SELECT count(*) AS n FROM documents", "--format", "json"], reader)
    assert sql.returncode == 0, sql.stderr
    assert json.loads(sql.stdout) == {"n": 20}
    refused = run(["sql", f"SELECT * FROM read_parquet('s3://{BUCKET}/{prefix}/data/**')"],
                  reader)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr


def test_a_changed_folder_is_fetched_again_an_unchanged_one_is_not(s3, tmp_path):
    from warehouse.locate import location_of

    writer = location_of(f"s3://{BUCKET}/fetch", {"EMBEDPIPE_CACHE_DIR": str(tmp_path / "w")})
    reader = location_of(f"s3://{BUCKET}/fetch", {"EMBEDPIPE_CACHE_DIR": str(tmp_path / "r")})
    assert reader.local != writer.local and reader.is_remote
    (writer.local / "indexes" / "1").mkdir(parents=True)
    (writer.local / "indexes" / "1" / "index.bin").write_bytes(b"first")
    (writer.local / "indexes" / "1" / "meta.json").write_text('{"build": 1}')
    writer.upload("indexes/1", last="meta.json")
    assert reader.fetch("indexes/2", "meta.json").exists() is False  # none stored: none cached
    first = reader.fetch("indexes/1", "meta.json")
    assert (first / "index.bin").read_bytes() == b"first"
    inode = (first / "index.bin").stat().st_ino
    assert (reader.fetch("indexes/1", "meta.json") / "index.bin").stat().st_ino == inode
    (writer.local / "indexes" / "1" / "index.bin").write_bytes(b"rebuilt")
    (writer.local / "indexes" / "1" / "meta.json").write_text('{"build": 2}')
    writer.upload("indexes/1", last="meta.json")
    assert (reader.fetch("indexes/1", "meta.json") / "index.bin").read_bytes() == b"rebuilt"
    writer.delete("indexes/1")
    assert objects("fetch") == [] and not (writer.local / "indexes" / "1").exists()
    assert not reader.fetch("indexes/1", "meta.json").exists()  # gone there: gone here


@pytest.mark.postgres
def test_b_readers_answer_from_the_active_version_while_another_machine_ingests(shared):
    root, env, prefix, _, path_b = shared
    writer_env = {**machine(env, root, "w"), "EMBEDPIPE_PAUSE_AT": "promote"}
    log = root / "paused.log"
    with log.open("w") as handle:
        holder = subprocess.Popen([EMBEDPIPE, "ingest", str(path_b)], env=writer_env,
                                  stdout=subprocess.DEVNULL, stderr=handle,
                                  start_new_session=True)
    try:
        # Paused with version 2 committed and its index uploaded, but not promoted.
        wait_until(lambda: "paused at promote" in log.read_text(), 300, "pause", holder)
        assert "indexes/2/meta.json" in objects(prefix)
        reader = machine(env, root, "r2")
        hit = top_hit(text(19), reader)  # doc19 is gone from version 2, not from 1
        assert (hit["doc_id"], hit["version_id"]) == ("doc19", 1)
        versions = run(["versions", "--json"], reader)
        assert versions.returncode == 0, versions.stderr
        statuses = {v["version_id"]: v["status"] for v in json.loads(versions.stdout)}
        assert statuses == {1: "active", 2: "candidate"}

        # (c) with a real writer: a second one is refused at once, naming the first.
        second = run(["ingest", str(path_b)], machine(env, root, "w2"))
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "locked by another writer" in lines[0], second.stderr
        assert f"pid {holder.pid} " in lines[0] and f"s3://{BUCKET}/{prefix}" in lines[0]
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    # The dead writer's lock went with its connection; an ingest on another machine completes.
    rerun = run(["ingest", str(path_b), "--json", "--wait", "60"], machine(env, root, "w2"))
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["status"] == "published"
    hit = top_hit(text(19), machine(env, root, "r2"))
    assert hit["doc_id"] != "doc19" and hit["version_id"] == json.loads(rerun.stdout)[
        "version_id"]


@pytest.mark.postgres
@pytest.mark.parametrize("where", ["s3", "directory"])
def test_c_a_second_writer_is_refused_by_the_advisory_lock(shared, tmp_path, where):
    root, env, prefix, catalog, path_b = shared
    location = f"s3://{BUCKET}/{prefix}" if where == "s3" else str(tmp_path / "wh")
    with warehouse_lock(Warehouse(location, catalog)):  # this process holds it
        refused = run(["ingest", str(path_b), "--warehouse", location],
                      machine(env, root, "w3"))
        with pytest.raises(WarehouseLocked, match="retry with --wait SECONDS"), \
                warehouse_lock(Warehouse(location, catalog), wait_seconds=0.5):
            pass  # waiting does not help while the holder lives
    assert refused.returncode == 2
    line = refused.stderr.strip()
    assert "\n" not in line and "Traceback" not in refused.stderr
    assert f"warehouse {location} is locked by another writer: pid {os.getpid()} on " in line
    assert "wait for it to finish, or retry with --wait SECONDS" in line
    if where == "directory":
        assert not (tmp_path / "wh" / "writer.lock").exists()  # no file lock with PostgreSQL
    with warehouse_lock(Warehouse(location, catalog)):
        pass  # released when its holder let go


@pytest.fixture()
def cluster(s3):
    """Two Dask worker processes, started after the AWS_* variables are set (they inherit them)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, host="127.0.0.1") as local:
        yield local


@pytest.mark.postgres
def test_d_dask_workers_write_their_parts_to_the_bucket(shared, cluster, topic_corpus,
                                                        postgres_url):
    root, env, _, _, _ = shared
    prefix = f"dask-{uuid.uuid4().hex[:8]}"
    catalog = create_database(postgres_url, f"lake_{uuid.uuid4().hex[:12]}")
    dask_env = {**machine(env, root, "driver"), "EMBEDPIPE_WAREHOUSE": f"s3://{BUCKET}/{prefix}",
                "EMBEDPIPE_CATALOG": catalog,
                "EMBEDPIPE_EMBED__DASK_ADDRESS": cluster.scheduler_address,
                "EMBEDPIPE_EMBED__SHARD_SIZE": "3"}
    done = run(["ingest", str(topic_corpus), "--json"], dask_env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["vectors_embedded"] == 10 and summary["chunks"] == 10  # 4 shards of <= 3
    assert not [k for k in objects(prefix) if k.startswith("staging/")]  # parts read, removed
    cache = Path(dask_env["EMBEDPIPE_CACHE_DIR"])
    assert not list(cache.glob("warehouses/*/staging/*"))  # nothing went through local disk
    wh = Warehouse(f"s3://{BUCKET}/{prefix}", catalog)
    keys, vectors = wh.vectors(wh.version())
    assert len(keys) == 10 and vectors.shape[0] == 10
    hit = top_hit("Tides are the rise and fall of sea levels", dask_env)
    assert hit["doc_id"] == "tides"


def test_e_sqlite_catalog_on_object_storage_is_one_clear_line(s3, topic_corpus):
    env = {**os.environ, "EMBEDPIPE_CATALOG": "sqlite"}
    for args in (["ingest", str(topic_corpus)], ["search", "tides"]):
        result = run([*args, "--warehouse", f"s3://{BUCKET}/sqlite"], env, timeout=120)
        assert result.returncode == 2
        assert result.stderr.strip() == (
            f"error: warehouse s3://{BUCKET}/sqlite is on object storage, where a SQLite catalog "
            "cannot live; pass --catalog postgresql://user@host:port/db")
    assert objects("sqlite") == []  # nothing was written


def test_s3_settings_name_missing_variables_and_hide_keys():
    from warehouse.errors import WarehouseError
    from warehouse.s3 import S3Settings

    with pytest.raises(WarehouseError, match="needs AWS_SECRET_ACCESS_KEY in the environment"):
        S3Settings.from_env({"AWS_ACCESS_KEY_ID": "k"})
    settings = S3Settings.from_env({**AWS, "AWS_ENDPOINT_URL_S3": "https://minio.local:9000"})
    assert AWS["AWS_SECRET_ACCESS_KEY"] not in repr(settings)
    options = settings.duckdb_options()
    assert (options["ENDPOINT"], options["URL_STYLE"], options["USE_SSL"]) == (
        "minio.local:9000", "path", True)
