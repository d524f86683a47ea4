"""Regressions found by hostile use, through the real flows and the real CLI.

Each test names the finding it reproduces. Plumbing runs with the deterministic hash model;
the CLI runs as a user runs it (a subprocess), because exit codes and one-line errors are the
contract.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.config import load_config
from tests.conftest import write_jsonl
from tests.flows.test_versions import text
from tests.servers import wait_until
from warehouse.store import Warehouse

pytestmark = pytest.mark.slow
EMBEDPIPE = str(Path(sys.executable).parent / "embedpipe")


def run(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([EMBEDPIPE, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "EMBEDPIPE_EMBED__MODEL": "hash", **(env or {})})


def one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("error: "), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr


def hash_config(path: Path, **overrides):
    return load_config(overrides={"warehouse.path": path, "embed.model": "hash", **overrides},
                       environ={})


def test_repeated_text_does_not_break_the_index(prefect_harness, tmp_path):
    """One document of a paragraph pasted thousands of times gave 10,826 chunks with 6
    distinct texts: index recall 0.0 at ef=512, a promoted version, and a search for another
    document's exact title returned a wrong hit."""
    from flows.ingest import ingest_corpus
    from flows.search import search

    paragraph = ("Log line: service restarted after a heartbeat timeout on the primary node. "
                 "Operators were paged and acknowledged the alert. ") * 3
    docs = [{"_id": f"doc{i}", "title": f"Topic {i} " + text(i, 3), "text": text(i)}
            for i in range(30)]
    docs.append({"_id": "pasted", "title": "pasted log", "text": paragraph * 2000})
    summary = ingest_corpus(str(write_jsonl(tmp_path / "c.jsonl", docs)),
                            hash_config(tmp_path / "wh"))
    assert summary.status == "published" and summary.chunks > 500
    assert summary.index["distinct"] < 40  # one ANN entry per distinct chunk text
    assert summary.index["recall"] >= 0.99
    wh = Warehouse(tmp_path / "wh")
    for i in (3, 17, 29):
        hit = search(wh, docs[i]["title"] + " " + docs[i]["text"], k=1)[0]
        assert hit.doc_id == f"doc{i}"


def test_a_first_version_is_gated_too(prefect_harness, tmp_path):
    """The gate said `passed (0 metrics compared)` for any first version; now the absolute
    checks (vectors, index recall) apply to it as well."""
    from flows.ingest import ingest_corpus

    docs = [{"_id": f"d{i}", "text": text(i)} for i in range(20)]
    summary = ingest_corpus(str(write_jsonl(tmp_path / "c.jsonl", docs)),
                            hash_config(tmp_path / "wh"))
    assert summary.status == "published"
    gate = Warehouse(tmp_path / "wh").version(1).gate
    assert gate["passed"] and gate["failures"] == []
    assert gate["headline"] == "passed"


@pytest.fixture(scope="module")
def expired(prefect_api, tmp_path_factory):
    """A warehouse whose version 1 was expired by gc (versions 2 and 3 remain)."""
    root = tmp_path_factory.mktemp("expired")
    env = {"PREFECT_API_URL": prefect_api}
    for i in range(3):
        path = write_jsonl(root / f"v{i}.jsonl", [{"_id": f"d{j}", "text": text(10 * i + j)}
                                                  for j in range(5)])
        done = run("ingest", str(path), "--warehouse", str(root / "wh"), env=env)
        assert done.returncode == 0, done.stderr
    done = run("gc", "--keep", "2", "--warehouse", str(root / "wh"))
    assert done.returncode == 0 and "expired versions: 1" in done.stdout, done.stderr
    return root / "wh"


@pytest.mark.parametrize("args", [
    ["sql", "SELECT count(*) FROM documents", "--version", "1"],
    ["diff", "1", "3"],
    ["search", "anything", "--version", "1"],
    ["promote", "1", "--force"],
    ["rollback", "1"],
])
def test_an_expired_version_is_one_clear_line(expired, args):
    """`sql --version N` and `diff` on an expired version died with `No snapshot found`;
    `search` and `promote --force` pointed at a command that did not exist."""
    one_line_error(run(*args, "--warehouse", str(expired)), "version 1 was expired",
                   "readable versions: 2, 3")


def test_a_rejected_version_needs_force_on_rollback_too(expired):
    # rollback suggested --force, which it lacked; now both commands take it
    done = run("rollback", "--help")
    assert "--force" in done.stdout


def test_warehouse_paths_that_are_files_or_typos(tmp_path):
    """`gc`/`ingest --warehouse FILE` gave a FileExistsError traceback; `gc` on a mistyped path
    silently created an empty warehouse."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a warehouse")
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"_id": "a", "text": text(1)}])
    one_line_error(run("gc", "--warehouse", str(a_file)), "is a file")
    one_line_error(run("ingest", str(corpus), "--warehouse", str(a_file)), "is a file")
    one_line_error(run("pin", "1", "--warehouse", str(tmp_path / "typo")), "no warehouse at")
    one_line_error(run("gc", "--warehouse", str(tmp_path / "typo")), "no warehouse at")
    assert not (tmp_path / "typo").exists()


def test_an_empty_query_is_refused(expired):
    """An empty query returned results."""
    one_line_error(run("search", "   ", "--warehouse", str(expired)), "empty query")


def test_a_slow_temporary_api_is_one_line(tmp_path):
    """Under load the temporary Prefect API timed out with a 57-line traceback."""
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"_id": "a", "text": text(1)}])
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    done = subprocess.run([EMBEDPIPE, "ingest", str(corpus), "--warehouse", str(tmp_path / "wh")],
                          capture_output=True, text=True, timeout=120,
                          env={**env, "EMBEDPIPE_API_STARTUP_SECONDS": "0.01",
                               "EMBEDPIPE_EMBED__MODEL": "hash"})
    one_line_error(done, "temporary Prefect API did not start")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_takes_the_temporary_api_along(tmp_path):
    """kill -9 of an ingest left the temporary Prefect API server (~230 MB) running."""
    corpus = write_jsonl(tmp_path / "c.jsonl", [{"_id": "a", "text": text(1)}])
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    log = (tmp_path / "err.log").open("w")
    proc = subprocess.Popen([EMBEDPIPE, "ingest", str(corpus), "--warehouse",
                             str(tmp_path / "wh")], stdout=subprocess.DEVNULL, stderr=log,
                            env={**env, "EMBEDPIPE_PAUSE_AT": "plan",
                                 "EMBEDPIPE_EMBED__MODEL": "hash"})
    try:
        wait_until(lambda: "paused at plan" in (tmp_path / "err.log").read_text(), 240,
                   "ingest paused", proc)
        servers = _children(proc.pid)
        assert servers, "the ingest started no temporary API"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in servers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in servers)
    finally:
        for pid in _children(proc.pid):
            os.kill(pid, signal.SIGKILL)
        log.close()


def test_secrets_stay_out_of_flow_parameters_and_deployments(tmp_path):
    """`serve` copied the whole config, with a PostgreSQL catalog password, into deployment
    parameters stored in the Prefect database and shown in its UI."""
    from deployments.serve import build_deployments
    from deployments.settings import DeploymentSettings

    secret = "s3cr3t-pw"
    config = load_config(overrides={"warehouse.path": tmp_path / "wh", "warehouse.catalog":
                                    f"postgresql://ann:{secret}@127.0.0.1:5432/lake"}, environ={})
    assert secret not in json.dumps(config.model_dump(mode="json"))  # what a flow run records
    assert config.warehouse.catalog and secret in config.warehouse.catalog  # what code uses
    settings = DeploymentSettings(ingest_source=str(tmp_path), monitor_source=str(tmp_path))
    for deployment in build_deployments(settings, config):
        dumped = json.dumps(deployment.model_dump(mode="json"), default=str)
        assert secret not in dumped and "ann:" not in dumped
