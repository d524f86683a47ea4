"""A real Prometheus scrapes the dashboard's /metrics, and PromQL returns the active version.

Debian's `prometheus` binary runs on a free loopback port with its data in the test's temporary
directory and a config scraping the dashboard every second; it is stopped afterwards. The
warehouse is made by `embedpipe ingest` (hash model) against the session's Prefect server.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from flows.cli.common import free_port, stop_process_group
from flows.config import load_config
from flows.dashboard.app import create_app
from flows.dashboard.links import PrefectLinks
from tests.conftest import needs_debian_program, run_embedpipe, write_jsonl
from tests.flows.test_dashboard import served
from tests.flows.test_versions import text
from tests.servers import wait_until

PROMETHEUS = Path("/usr/bin/prometheus")
pytestmark = needs_debian_program(PROMETHEUS, "prometheus")


@pytest.fixture(scope="module")
def warehouse(prefect_api, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prometheus")
    corpus = write_jsonl(root / "corpus.jsonl", [{"_id": f"d{i}", "text": text(i)}
                                                 for i in range(40)])
    done = run_embedpipe(["ingest", str(corpus), "--warehouse", str(root / "wh")], prefect_api)
    assert done.returncode == 0, done.stderr
    return root / "wh"


def query(port: int, promql: str) -> list[dict]:
    """The result vector of an instant PromQL query ([] until the first scrape lands)."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
    except OSError:
        return []
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_prometheus_scrapes_the_active_version(warehouse, tmp_path):
    config = load_config(overrides={"warehouse.path": warehouse}, environ={})
    with served(create_app(config, PrefectLinks(lambda: None))) as url:
        port = free_port()
        settings = tmp_path / "prometheus.yml"
        settings.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: embedpipe\n    metrics_path: /metrics\n"
            f"    static_configs:\n      - targets: ['{url.removeprefix('http://')}']\n")
        log = (tmp_path / "prometheus.log").open("w")
        proc = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={settings}",
             f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: query(port, "embedpipe_active_version"), 60,
                       "a Prometheus scrape of /metrics", proc)
            (active,) = query(port, "embedpipe_active_version")
            assert active["metric"]["job"] == "embedpipe" and float(active["value"][1]) == 1
            (up,) = query(port, 'up{job="embedpipe"}')
            assert float(up["value"][1]) == 1
            documents = query(port, "embedpipe_active_documents")
            assert float(documents[0]["value"][1]) == 40
        finally:
            stop_process_group(proc)
            log.close()
