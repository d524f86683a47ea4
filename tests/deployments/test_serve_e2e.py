"""End to end on a real Prefect server: served deployments, schedules, trigger, drift → retrain.

The server is started by the test session on a free loopback port and stopped afterwards; the
deployments are served by `python -m deployments.serve` in their own process group, killed at
the end even on failure. The hash model keeps it fast; the retrain re-embeds (no fine-tuning).
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

from flows.demo import stdlib_docstrings
from tests.conftest import write_jsonl
from tests.flows.test_monitor_retrain import cooking_notes
from tests.servers import stop_process_group, wait_until
from warehouse.store import Warehouse

pytestmark = pytest.mark.slow
EMBEDPIPE = str(Path(sys.executable).parent / "embedpipe")


@pytest.fixture(scope="module")
def served(prefect_api, tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    corpus = write_jsonl(root / "corpus.jsonl", stdlib_docstrings(limit=150))
    drifted = write_jsonl(root / "incoming.jsonl", cooking_notes(60))
    env = {**os.environ, "PREFECT_API_URL": prefect_api,
           "EMBEDPIPE_WAREHOUSE": str(root / "wh"), "EMBEDPIPE_EMBED__MODEL": "hash",
           "EMBEDPIPE_RETRAIN__STRATEGY": "reembed", "EMBEDPIPE_DRIFT__PERMUTATIONS": "200",
           "EMBEDPIPE_DEPLOY_INGEST_SOURCE": str(corpus),
           "EMBEDPIPE_DEPLOY_MONITOR_SOURCE": str(drifted),
           "EMBEDPIPE_DEPLOY_INGEST_CRON": "15 3 * * *"}
    log = (root / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "deployments.serve"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: _deployment(env, "retrain/retrain") is not None, 120,
                   "served deployments", proc)
        yield env, root
    finally:
        stop_process_group(proc)
        log.close()
        _assert_group_gone(proc.pid)


def _assert_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    os.killpg(pgid, signal.SIGKILL)
    raise AssertionError("processes of the served deployments outlived the test")


def _deployment(env: dict, name: str):
    code = ("import json, sys\nfrom prefect.client.orchestration import get_client\n"
            "from prefect.exceptions import ObjectNotFound\n"
            "with get_client(sync_client=True) as c:\n"
            "    try:\n        d = c.read_deployment_by_name(sys.argv[1])\n"
            "    except ObjectNotFound:\n        print('null'); raise SystemExit\n"
            "    print(json.dumps({'id': str(d.id), 'crons': [s.schedule.cron for s in "
            "d.schedules]}))\n")
    done = subprocess.run([sys.executable, "-c", code, name], env=env, capture_output=True,
                          text=True, timeout=60)
    return json.loads(done.stdout or "null")


def trigger(env: dict, name: str) -> dict:
    done = subprocess.run([EMBEDPIPE, "trigger", name, "--wait", "--json"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_schedules_are_registered_as_configured(served):
    env, _ = served
    assert _deployment(env, "ingest-corpus/ingest")["crons"] == ["15 3 * * *"]
    assert _deployment(env, "monitor-drift/monitor")["crons"] == ["0 * * * *"]
    assert _deployment(env, "retrain/retrain")["crons"] == []
    assert _deployment(env, "evaluate-version/evaluate") is not None


def test_ingest_then_drift_triggers_a_retrain_run(served):
    env, root = served
    ingest = trigger(env, "ingest")
    assert ingest["state"] == "COMPLETED"
    assert ingest["warehouse"]["latest_version"] == {"version_id": 1, "status": "active"}
    wh = Warehouse(root / "wh")
    assert wh.version().version_id == 1

    monitor = trigger(env, "monitor")
    assert monitor["state"] == "COMPLETED"
    assert monitor["warehouse"]["last_drift_check"]["drifted"] is True

    # The automation turns embedpipe.drift.detected into a retrain run of this warehouse.
    def retrained() -> bool:
        versions = wh.versions()
        return len(versions) >= 2 and versions[-1].status in ("active", "rejected")

    wait_until(retrained, 300, "retrain run created by the drift automation")
    candidate = wh.versions()[-1]
    assert candidate.message == "retrain (reembed) of version 1"
    # The candidate holds the served corpus plus the drifted batch (150 + 60), not the batch alone.
    assert candidate.status == "active" and candidate.n_documents == 210
    con = wh.connect()
    drifted = con.execute("SELECT bool_or(drifted) FROM drift_metrics").fetchone()[0]
    assert drifted is True


@pytest.mark.parametrize(("args", "fragment"), [
    (["--param", "config.embed.batch_sise=3"], "batch_sise"),
    (["--param", "config.embed.batch_size=zero"], "embed.batch_size"),
    (["--param", "bogus=1"], "takes no parameter 'bogus'"),
    (["--param", "source=[1, 2]"], "parameter 'source' is invalid"),
])
def test_trigger_checks_parameters_before_creating_a_run(served, args, fragment):
    """A misspelt or mistyped parameter gave a raw PrefectHTTPStatusError, or a run that
    crashed with the cause only in the server log."""
    env, _ = served
    done = subprocess.run([EMBEDPIPE, "trigger", "ingest", *args], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert fragment in done.stderr, done.stderr


def test_trigger_lists_deployments_and_finds_no_server_at_once(served, tmp_path):
    env, _ = served
    listed = subprocess.run([EMBEDPIPE, "trigger", "--list", "--json"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    rows = {r["short"]: r for r in json.loads(listed.stdout)}
    assert set(rows) >= {"ingest", "monitor", "retrain", "evaluate"}
    assert "source" in rows["ingest"]["parameters"] and "kind" in rows["monitor"]["parameters"]
    # No server named and none started by `serve` here: one line at once, no temporary API.
    lonely = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    started = time.monotonic()
    done = subprocess.run([EMBEDPIPE, "trigger", "ingest"], capture_output=True, text=True,
                          timeout=120, env={**lonely, "EMBEDPIPE_HOME": str(tmp_path)})
    assert done.returncode == 2 and "no Prefect server found" in done.stderr
    assert time.monotonic() - started < 30
