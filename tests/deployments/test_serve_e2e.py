"""End to end on a real Prefect server: served deployments, schedules, trigger, drift → retrain.

The server is started by the test session on a free loopback port and stopped afterwards; the
deployments are served by `python -m deployments.serve` in their own process group, killed at
the end even on failure. The hash model keeps it fast; the retrain re-embeds (no fine-tuning).
"""

from __future__ import annotations

import json
import os
import re
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
    corpus = write_jsonl(root / "corpus.jsonl", stdlib_docstrings(limit=300))
    drifted = write_jsonl(root / "incoming.jsonl", cooking_notes(100))
    env = {**os.environ, "PREFECT_API_URL": prefect_api,
           "EMBEDPIPE_WAREHOUSE": str(root / "wh"), "EMBEDPIPE_EMBED__MODEL": "hash",
           "EMBEDPIPE_RETRAIN__STRATEGY": "reembed", "EMBEDPIPE_DRIFT__PERMUTATIONS": "200",
           "EMBEDPIPE_EVALUATE__MINED_QUERIES": "60",
           "EMBEDPIPE_DEPLOY_INGEST_SOURCE": str(corpus),
           "EMBEDPIPE_DEPLOY_MONITOR_SOURCE": str(drifted),
           # one alarm acts here (served default: 2 of the last 3), so one batch shows the loop
           "EMBEDPIPE_DEPLOY_MONITOR_ALARMS_REQUIRED": "1",
           "EMBEDPIPE_DEPLOY_MONITOR_WINDOW": "1",
           "EMBEDPIPE_DEPLOY_INGEST_CRON": "15 3 * * *",
           # the runner looks for runs every second (Prefect's default 10 s is idle test time)
           "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
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
            "    print(json.dumps({'id': str(d.id), 'paused': d.paused, 'crons': "
            "[s.schedule.cron for s in d.schedules]}))\n")
    done = subprocess.run([sys.executable, "-c", code, name], env=env, capture_output=True,
                          text=True, timeout=60)
    return json.loads(done.stdout or "null")


def trigger(env: dict, name: str, *params: str, code: int = 0) -> dict:
    """`embedpipe trigger NAME --wait --json`; `code` 1 for outcomes a script must not ignore
    (a monitor that found drift, a retrain the gate rejected)."""
    args = [x for p in params for x in ("--param", p)]
    done = subprocess.run([EMBEDPIPE, "trigger", name, *args, "--wait", "--json"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == code, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def weather_reports(n: int) -> list[dict]:
    """A third domain: drift against both the corpus and the cooking notes."""
    return [{"_id": f"weather-{i}", "text": f"Station {i} reports {i % 7 + 2} mm of rain, wind "
             f"{i % 30} knots from the {['north', 'south', 'east', 'west'][i % 4]}, pressure "
             f"{990 + i % 40} hPa and a low of {i % 12} degrees overnight."} for i in range(n)]


def retrain_runs(env: dict) -> list[tuple[str, str]]:
    """(state name, message) of every retrain flow run, oldest first, from the Prefect API."""
    code = ("import json\nfrom prefect.client.orchestration import get_client\n"
            "from prefect.client.schemas.filters import FlowFilter, FlowFilterName\n"
            "from prefect.client.schemas.sorting import FlowRunSort\n"
            "with get_client(sync_client=True) as c:\n"
            "    runs = c.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_="
            "['retrain'])), sort=FlowRunSort.START_TIME_ASC)\n"
            "    print(json.dumps([[r.state.name, r.state.message] for r in runs "
            "if r.state and r.state.is_final()]))\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
    return [tuple(x) for x in json.loads(done.stdout or "[]")]


def test_schedules_are_registered_as_configured(served):
    env, _ = served
    assert _deployment(env, "ingest-corpus/ingest")["crons"] == ["15 3 * * *"]
    assert not _deployment(env, "ingest-corpus/ingest")["paused"]
    assert _deployment(env, "monitor-drift/monitor")["crons"] == ["0 * * * *"]
    assert _deployment(env, "retrain/retrain")["crons"] == []
    assert _deployment(env, "evaluate-version/evaluate") is not None
    assert _deployment(env, "gc-warehouse/gc")["crons"] == ["30 3 * * *"]  # nightly


def test_drift_to_retrain_that_can_be_left_running(served):
    """The served loop: ingest 300 documents; a drifted 100-document batch fires a retrain
    through the event, whose candidate holds all 400 and is judged on a set mined from the
    corpus (no labels configured); a second drift within the cooldown trains nothing; a
    rejected retrain says so in its state."""
    env, root = served
    ingest = trigger(env, "ingest")
    assert (ingest["state"], ingest["state_name"]) == ("COMPLETED", "Published")
    kept = Warehouse(root / "wh").version(1).n_documents  # 300 docstrings, less near-twins
    assert kept >= 295 and ingest["message"].startswith(f"published v1: {kept} documents")
    assert ingest["warehouse"]["latest_version"] == {"version_id": 1, "status": "active"}
    wh = Warehouse(root / "wh")
    assert wh.version().version_id == 1

    monitor = trigger(env, "monitor", code=1)  # drift: a script waiting on it is told
    assert (monitor["state"], monitor["state_name"]) == ("COMPLETED", "Drift")
    assert monitor["message"].startswith("drift: MMD p=")
    assert monitor["warehouse"]["last_drift_check"]["drifted"] is True

    # The automation turns embedpipe.drift.detected into a retrain run of this warehouse.
    def retrained() -> bool:
        versions = wh.versions()
        return len(versions) >= 2 and versions[-1].status in ("active", "rejected")

    wait_until(retrained, 300, "retrain run created by the drift automation")
    candidate = wh.versions()[-1]
    assert candidate.message == "retrain (reembed) of version 1"
    # The candidate holds the served corpus plus the drifted batch (300 + 100), not the batch
    # alone, and the gate decided on the mined set, which both versions were scored on.
    assert candidate.status == "active" and candidate.n_documents == kept + 100
    assert "mined:ict-" in candidate.gate["reason"]
    # The final state says what the label-free verdict rested on: the gain and its interval.
    # (The version is promoted a moment before the run reaches its final state.)
    wait_until(lambda: [n for n, _ in retrain_runs(env)][:1] == ["Published"], 120,
               "the retrain run's final state")
    published = retrain_runs(env)[0]
    assert published[0] == "Published" and "mined ndcg@10 +0.000 [+0.000, +0.000]" in \
        published[1]
    mined = {r["evaluator"] for r in wh.metrics(1)} & {r["evaluator"] for r in wh.metrics(2)}
    assert any(e.startswith("mined:") for e in mined)

    # A second drift within the cooldown (retrain.min_interval, a day by default) trains
    # nothing: the retrain run ends Skipped and no version appears.
    weather = write_jsonl(root / "weather.jsonl", weather_reports(100))
    trigger(env, "monitor", f"source={weather}", code=1)
    wait_until(lambda: len(retrain_runs(env)) >= 2, 300, "second retrain run")
    assert retrain_runs(env)[1][0] == "Skipped" and "cooldown" in retrain_runs(env)[1][1]
    assert len(wh.versions()) == 2

    # A retrain the gate rejects is visibly so (state name and message), and `--wait` exits 1.
    twins = write_jsonl(root / "twins.jsonl", [
        {"_id": f"tw{i}", "text": f"{w} one two three four five six seven"}
        for i, w in enumerate(["alpha", "beta"] * 2)] + [
        {"_id": f"tx{i}", "text": f"one two three four five six seven {w}"}
        for i, w in enumerate(["alpha", "beta"] * 2)])
    rejected = trigger(env, "retrain", f"source={twins}", "config.retrain.min_interval=0",
                       "config.gate.max_duplicate_share=0.001", code=1)
    assert rejected["state_name"] == "Rejected"
    assert "rejected v3" in rejected["message"] and "identical vectors" in rejected["message"]
    assert re.search(r"mined ndcg@10 [+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]",
                     rejected["message"])
    names = [name for name, _ in retrain_runs(env)]
    assert names == ["Published", "Skipped", "Rejected"]


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


def test_a_missing_source_is_registered_paused_in_one_line(tmp_path):
    """The shipped schedules pointed at `corpus` and `incoming` relative to wherever serve
    started; the hourly monitor failed every hour, visible only in the server log."""
    from deployments.serve import build_deployments
    from deployments.settings import DeploymentSettings
    from flows.config import load_config

    (tmp_path / "corpus").mkdir()
    settings = DeploymentSettings(ingest_source="corpus", monitor_source="incoming")
    config = load_config(overrides={"warehouse.path": tmp_path / "wh"}, environ={})
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from deployments.serve import build_deployments; "
         "from deployments.settings import DeploymentSettings; from flows.config import "
         "load_config; from pathlib import Path; build_deployments(DeploymentSettings("
         "ingest_source='corpus', monitor_source='incoming'), load_config(overrides={"
         f"'warehouse.path': Path('{tmp_path}') / 'wh'}}, environ={{}}), Path('{tmp_path}'))"],
        capture_output=True, text=True, timeout=120)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"{tmp_path}/incoming does not exist" in warnings[0]
    deployments = {d.name: d for d in build_deployments(settings, config, tmp_path)}
    assert deployments["monitor"].paused and not deployments["ingest"].paused
    assert deployments["ingest"].parameters["source"] == str(tmp_path / "corpus")


def test_serve_port_puts_the_ui_and_trigger_on_that_port(tmp_path):
    """`serve --port N` served a UI that called the API on 4200 ("Can't connect to Server API"),
    and `trigger` did not find the server without a hand-exported PREFECT_API_URL."""
    from urllib.request import urlopen

    from flows.cli.common import api_healthy, free_port

    port = free_port()
    home = tmp_path / "home"
    env = {**os.environ, "EMBEDPIPE_HOME": str(home), "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HF_HUB_OFFLINE": "1"}
    env.pop("PREFECT_API_URL", None)
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([EMBEDPIPE, "serve", "--port", str(port), "--warehouse",
                             str(tmp_path / "wh")], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"

    def listed() -> list[str]:
        done = subprocess.run([EMBEDPIPE, "trigger", "--list", "--json"], env=env,
                              capture_output=True, text=True, timeout=120)
        return [r["short"] for r in json.loads(done.stdout)] if done.returncode == 0 else []

    try:
        wait_until(lambda: api_healthy(api), 120, "embedpipe serve's Prefect server", proc)
        with urlopen(f"http://127.0.0.1:{port}/ui-settings", timeout=30) as response:
            assert json.load(response)["api_url"] == api  # the UI calls the API on N
        # serve records the server once it has seen it healthy (this test may see it first)
        wait_until(lambda: (home / "server.json").exists(), 60, "serve's server record", proc)
        assert json.loads((home / "server.json").read_text())["api_url"] == api
        # trigger finds that server with no PREFECT_API_URL, and sees its deployments
        wait_until(lambda: {"ingest", "monitor", "retrain", "evaluate"} <= set(listed()), 120,
                   "deployments listed through the recorded server", proc)
    finally:
        stop_process_group(proc)
        log.close()


def test_the_retention_serve_sets_is_what_prefect_reads(monkeypatch):
    """`serve` hands its retention to the Prefect server as environment variables. A value
    Prefect refuses (plain seconds for the events retention: it wants ISO 8601) keeps the server
    from starting at all, which is how the soak found it."""
    from datetime import timedelta

    from prefect.settings import Settings

    from flows.cli.server import PREFECT_RETENTION

    for name, value in PREFECT_RETENTION.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.server.events.retention_period == timedelta(days=7)
    vacuum = settings.server.services.db_vacuum
    assert vacuum.retention_period == timedelta(days=30)
    assert set(vacuum.enabled) == {"events", "flow_runs"}


def _serving_pid(warehouse: Path) -> int:
    """The `python -m deployments.serve` process serving `warehouse` (from /proc)."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"deployments.serve" in cmdline and f"EMBEDPIPE_WAREHOUSE={warehouse}".encode() \
                in environ:
            return int(proc.name)
    raise AssertionError(f"no deployments.serve process for {warehouse}")


def test_served_runs_yield_the_cpu_to_the_dashboard(served):
    """On 2 cores the dashboard's pages wait on the CPU while a served run embeds or trains
    (the soak's p95 over 500 ms): the serving process, and so every flow run it starts, runs
    at niceness 10 (`nice` in environments.toml; EMBEDPIPE_DEPLOY_NICE=0 keeps normal priority)."""
    from deployments.settings import load_settings

    _, root = served
    expected = max(10, os.getpriority(os.PRIO_PROCESS, 0))  # pytest itself may run niced
    tasks = Path("/proc") / str(_serving_pid(root / "wh")) / "task"
    # Every thread of the serving process (Linux: niceness is per thread, inherited by the
    # threads and flow-run processes each one starts); field 19 of stat is the niceness.
    nices = {int((t / "stat").read_text().rsplit(")", 1)[1].split()[16]) for t in
             tasks.iterdir()}
    assert nices == {expected}
    assert load_settings({}).nice == 10
    assert load_settings({"EMBEDPIPE_DEPLOY_NICE": "0"}).nice == 0
    # Already lower (a serve started under `nice -n 15`): never raised back.
    done = subprocess.run(["nice", "-n", "15", sys.executable, "-c",
                           "import os; from deployments.serve import lower_priority; "
                           "print(lower_priority(10), os.getpriority(os.PRIO_PROCESS, 0))"],
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["15", "15"]
