"""Fault injection on the Prefect server: killed (SIGKILL) while a served monitor runs.

The server here is this test's own (the session's is shared), started again on the same port
and database after the kill, like a supervisor would. The served monitor is paused inside its
check (warehouse/faults.py) while the server goes away. Promised: `trigger --wait` says in one
line that it lost the server instead of hanging; the interrupted run does not stay Running for
ever, and says why; the next scheduled run happens by itself; the warehouse is unharmed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.demo import stdlib_docstrings
from tests.conftest import write_jsonl
from tests.servers import PrefectServer, stop_process_group, wait_until
from warehouse.lock import warehouse_lock
from warehouse.store import Warehouse

pytestmark = pytest.mark.slow
FINAL = ("COMPLETED", "CRASHED", "FAILED", "CANCELLED")
EMBEDPIPE = str(Path(sys.executable).parent / "embedpipe")


def monitor_runs(env: dict) -> list[dict]:
    """Every monitor-drift flow run: id, state type, name and message, and when it started."""
    code = ("import json\nfrom prefect.client.orchestration import get_client\n"
            "from prefect.client.schemas.filters import FlowFilter, FlowFilterName\n"
            "with get_client(sync_client=True) as c:\n"
            "    runs = c.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_="
            "['monitor-drift'])))\n"
            "    print(json.dumps([{'id': str(r.id), 'type': r.state.type.value if r.state "
            "else None, 'name': r.state.name if r.state else None, 'message': r.state.message "
            "if r.state else None, 'started': r.start_time.timestamp() if r.start_time else "
            "None} for r in runs]))\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    return json.loads(done.stdout) if done.returncode == 0 and done.stdout.strip() else []


def test_the_prefect_server_killed_while_a_served_monitor_runs(tmp_path):
    home = tmp_path / "prefect"
    home.mkdir()
    server = PrefectServer(home)
    server.start()
    docs = stdlib_docstrings(limit=120)
    corpus = write_jsonl(tmp_path / "corpus.jsonl", docs)
    batch = write_jsonl(tmp_path / "batch.jsonl", docs[:60])  # in domain: no drift
    resume = tmp_path / "resume"
    env = {**os.environ, "PREFECT_API_URL": server.url, "EMBEDPIPE_EMBED__MODEL": "hash",
           "EMBEDPIPE_WAREHOUSE": str(tmp_path / "wh"), "EMBEDPIPE_DRIFT__PERMUTATIONS": "200",
           "EMBEDPIPE_HOME": str(tmp_path / "home")}
    served_env = {**env, "EMBEDPIPE_DEPLOY_INGEST_SOURCE": str(corpus),
                  "EMBEDPIPE_DEPLOY_MONITOR_SOURCE": str(batch),
                  "EMBEDPIPE_DEPLOY_INGEST_CRON": "", "EMBEDPIPE_DEPLOY_GC_CRON": "",
                  "EMBEDPIPE_DEPLOY_MONITOR_CRON": "* * * * *",
                  "PREFECT_RUNNER_POLL_FREQUENCY": "1",
                  # every monitor run waits inside its check until the test lets it go on
                  "EMBEDPIPE_PAUSE_AT": "monitor", "EMBEDPIPE_RESUME_FILE": str(resume)}
    ingest = subprocess.run([EMBEDPIPE, "ingest", str(corpus)], env=env, capture_output=True,
                            text=True, timeout=600)
    assert ingest.returncode == 0, ingest.stderr
    log_path = tmp_path / "serve.log"
    log = log_path.open("w")
    serve = subprocess.Popen([sys.executable, "-m", "deployments.serve"], env=served_env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    waiting = None
    try:
        wait_until(lambda: "Your deployments are being served" in log_path.read_text(), 180,
                   "served deployments", serve)
        waiting = subprocess.Popen([EMBEDPIPE, "trigger", "monitor", "--wait", "--json",
                                    "--lost-after", "15"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        wait_until(lambda: "paused at monitor" in log_path.read_text(), 300,
                   "a monitor run paused in its check", serve)
        server.kill()

        # `trigger --wait` gives up in one line (it used to wait for ever).
        _, stderr = waiting.communicate(timeout=300)
        assert waiting.returncode == 2, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and "lost the Prefect server at " + server.url in lines[0], stderr
        assert "Traceback" not in stderr

        resume.touch()  # the run goes on with no server to report to
        time.sleep(5)
        server.start()  # same port, same database
        restarted_at = time.time()

        # The interrupted run does not stay Running: it ends (Crashed or Failed says why, or
        # Completed if it could report once the server was back), and a scheduled run that
        # starts after the restart completes.
        interrupted = re.search(r"\(([0-9a-f-]{36}), last seen", lines[0]).group(1)

        def settled() -> bool:
            runs = {r["id"]: r for r in monitor_runs(env)}
            later = [r for r in runs.values() if (r["started"] or 0) > restarted_at
                     and r["type"] == "COMPLETED"]
            return runs.get(interrupted, {}).get("type") in FINAL and bool(later)

        wait_until(settled, 420, "the interrupted monitor run ended, a new scheduled one ran",
                   serve)
        ended = {r["id"]: r for r in monitor_runs(env)}[interrupted]
        assert ended["type"] == "COMPLETED" or ended["message"], ended  # a reason if not
    finally:
        if waiting is not None and waiting.poll() is None:
            stop_process_group(waiting)
        stop_process_group(serve)
        log.close()
        server.stop()
    wh = Warehouse(tmp_path / "wh")
    assert wh.version().version_id == 1 and wh.version().status == "active"
    with warehouse_lock(wh):  # free
        pass
