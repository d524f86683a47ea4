"""The dashboard and /metrics on a real warehouse: every number shown is the lake's.

The warehouse (built once per session, hash model): version 1 (200 documents), version 2 (the
active one: 190 kept, 100 added, one document whose id and title are an XSS attempt, its exact
duplicate and a too-short row quarantined), two drift checks on version 2 (one batch like the
corpus, one of cooking notes), and version 3, which the gate rejects (its vectors are mostly
identical). Each page's JSON and HTML numbers are compared with SQL over `warehouse.connect()`.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient
from typer.testing import CliRunner

from flows.cli import app as cli
from flows.cli.common import answers_ok
from flows.config import EmbedpipeConfig
from flows.dashboard.app import create_app
from flows.dashboard.links import PrefectLinks
from tests.conftest import hash_config, word_order_twins, write_jsonl
from tests.flows.test_monitor_retrain import cooking_notes
from tests.flows.test_versions import text
from warehouse.store import Warehouse

pytestmark = pytest.mark.slow
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
QUERY = "hostile title"  # words only the XSS document has: it must be the top hit
UI = "http://prefect.test"
GRAFANA = Path(__file__).resolve().parents[2] / "deployments" / "grafana" / "embedpipe.json"


@dataclass(frozen=True)
class Lake:
    root: Path
    path: Path
    config: EmbedpipeConfig

    def sql(self, query: str, params: list | None = None, version: int | None = None
            ) -> list[tuple]:
        con = Warehouse(self.path).connect(version)
        try:
            return con.execute(query, params or []).fetchall()
        finally:
            con.close()


def build_lake(root: Path) -> Lake:
    """Two versions, two drift checks, a rejected candidate (see the module docstring)."""
    from flows.ingest import ingest_corpus
    from flows.monitor import monitor_drift

    config = hash_config(root / "wh")
    docs = [{"_id": f"d{i}", "title": f"Doc {i}", "text": text(i)} for i in range(200)]
    assert ingest_corpus(str(write_jsonl(root / "a.jsonl", docs)), config).version_id == 1
    second = docs[:190] + [{"_id": f"e{i}", "title": f"Extra {i}", "text": text(1000 + i)}
                           for i in range(100)]
    hostile = {"_id": XSS, "title": XSS, "text": "A hostile title kagor mimor lodal."}
    second += [hostile, {**hostile, "_id": "hostile-copy"},  # an exact duplicate of it
               {"_id": "short", "title": "x", "text": "tiny"}]  # too short: quarantined
    assert ingest_corpus(str(write_jsonl(root / "b.jsonl", second)), config).version_id == 2
    same = [{"_id": f"s{i}", "title": f"Doc {500 + i}", "text": text(500 + i)}
            for i in range(60)]
    monitor_drift(config, str(write_jsonl(root / "same.jsonl", same)))
    monitor_drift(config, str(write_jsonl(root / "drifted.jsonl", cooking_notes(60))))
    strict = hash_config(root / "wh", **{"gate.max_duplicate_share": 0.1})
    assert ingest_corpus(str(write_jsonl(root / "c.jsonl", word_order_twins())),
                         strict).status == "rejected"
    return Lake(root, root / "wh", config)


_LAKES: dict[str, Lake] = {}


def dashboard_lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The lake above, built once per test session (the browser tests share it)."""
    if "lake" not in _LAKES:
        _LAKES["lake"] = build_lake(tmp_path_factory.mktemp("dashboard"))
    return _LAKES["lake"]


@pytest.fixture(scope="module")
def lake(prefect_harness, tmp_path_factory) -> Lake:
    return dashboard_lake(tmp_path_factory)


@pytest.fixture(scope="module")
def client(lake) -> TestClient:
    config = lake.config.model_copy(update={"gate": lake.config.gate.model_copy(
        update={"tolerances": {"nan_vectors": 0.25, "zero_vectors": 0.0}})})
    return TestClient(create_app(config, PrefectLinks(lambda: UI)))


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The app on uvicorn on a free 127.0.0.1 port, in a thread; yields its base URL."""
    import uvicorn

    from flows.cli.common import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def shown(page: str) -> dict[str, list[str]]:
    """The text of every element marked data-k="key" (several for keys repeated in rows)."""
    values: dict[str, list[str]] = {}
    for key, value in re.findall(r'data-k="([^"]+)"[^>]*>([^<]*)<', page):
        values.setdefault(html.unescape(key), []).append(html.unescape(value).strip())
    return values


def number(text: str) -> float | None:
    text = text.replace(",", "").removeprefix("v").strip()
    return None if text in ("–", "") else float(text)


def figures(page: str) -> dict[str, dict]:
    """The Plotly figures a page embeds, by chart id."""
    return {key: json.loads(body) for key, body in re.findall(
        r'<script type="application/json" data-chart="([^"]+)">(.*?)</script>', page, re.S)}


def test_overview_shows_the_lakes_numbers(lake, client):
    data = client.get("/api/overview").json()
    (active, docs, chunks, index_meta), = lake.sql(
        "SELECT version_id, n_documents, n_chunks, index_meta FROM versions "
        "WHERE status = 'active'")
    assert (data["active"]["version_id"], data["active"]["documents"],
            data["active"]["chunks"]) == (active, docs, chunks) == (2, 291, 291)
    (status, summary, flow_run_id), = lake.sql(
        "SELECT status, summary, flow_run_id FROM runs WHERE flow = 'ingest' "
        "ORDER BY started_at DESC LIMIT 1")
    summary = json.loads(summary)
    ingest = data["last_ingest"]
    assert (ingest["status"], ingest["input_documents"], ingest["kept"]) == (
        status, summary["input_documents"], summary["kept"]) == ("rejected", 4, 4)
    assert ingest["prefect_url"] == f"{UI}/runs/flow-run/{flow_run_id}"

    check = lake.sql("SELECT check_id, metric, value, threshold, alarm, drifted, rule "
                     "FROM drift_metrics ORDER BY checked_at DESC, metric")
    newest = [r for r in check if r[0] == check[0][0]]
    drift = data["drift"]
    assert drift["check_id"] == newest[0][0] and drift["drifted"] == any(r[5] for r in newest)
    assert {s["metric"]: (s["value"], s["threshold"]) for s in drift["statistics"]} == {
        r[1]: (r[2], r[3]) for r in newest}
    assert drift["rule"] == newest[0][6] == "mmd_and_auc, 1 of the last 1"
    assert (drift["window"], drift["alarms_required"]) == (1, 1)
    meta = json.loads(index_meta)
    assert (data["index"]["ef"], data["index"]["recall"], data["index"]["heldout_recall"]) == (
        meta["ef"], meta["recall"], meta["heldout_recall"])
    (gate,), = lake.sql("SELECT gate FROM versions WHERE version_id = 3")
    candidate = data["candidate"]
    assert (candidate["version_id"], candidate["status"], candidate["passed"]) == (
        3, "rejected", False)
    assert candidate["reason"] == json.loads(gate)["reason"]
    assert data["status"] == "red"  # drift was decided: red at a glance

    page = client.get("/").text
    values = shown(page)
    assert number(values["active.version_id"][0]) == 2
    assert [number(values[f"active.{k}"][0]) for k in ("documents", "chunks")] == [docs, chunks]
    assert [number(values[f"ingest.{k}"][0]) for k in ("input_documents", "kept")] == [4, 4]
    assert number(values["index.recall"][0]) == round(meta["recall"], 4)
    for _, name, value, *_ in newest:
        assert values[f"drift.{name}"] == [_format_metric(value)]
    assert values["candidate.reason"] == [json.loads(gate)["reason"]]
    assert f'href="{UI}/runs/flow-run/{flow_run_id}"' in page


def _format_metric(value: float) -> str:
    from flows.dashboard.fmt import metric

    return metric(value)


def test_versions_list_and_pages(lake, client):
    rows = lake.sql("SELECT version_id, status, n_documents, n_chunks, parent_id, gate "
                    "FROM versions ORDER BY version_id DESC")
    listed = client.get("/api/versions").json()["versions"]
    assert [(v["version_id"], v["status"], v["documents"], v["chunks"], v["parent_id"],
             v["gate_passed"]) for v in listed] == [
        (r[0], r[1], r[2], r[3], r[4], json.loads(r[5])["passed"]) for r in rows]
    page = client.get("/versions").text
    for version_id, status, documents, chunks, *_ in rows:
        row = page.split(f'<tr data-version="{version_id}">')[1].split("</tr>")[0]
        assert [number(shown(row)[k][0]) for k in ("documents", "chunks")] == [documents,
                                                                                chunks]
        assert f">{status}</span>" in row

    one = client.get("/api/versions/2").json()
    metrics = {(e, m): v for e, m, v in lake.sql(
        "SELECT evaluator, metric, value FROM quality_metrics WHERE version_id = 2")}
    assert {(m["evaluator"], m["metric"]): m["value"] for m in one["metrics"]} == metrics
    parent = dict(lake.sql("SELECT evaluator || ':' || metric, value FROM quality_metrics "
                           "WHERE version_id = 1"))
    assert all(m["parent"] == parent.get(f"{m['evaluator']}:{m['metric']}")
               for m in one["metrics"])
    reasons = dict(lake.sql("SELECT reason, count(*) FROM quarantine GROUP BY reason",
                            version=2))
    assert one["quarantine"]["by_reason"] == reasons == {"exact_duplicate": 1, "too_short": 1}
    twin = [q for q in one["quarantine"]["examples"] if q["reason"] == "exact_duplicate"][0]
    assert (twin["doc_id"], twin["twin_doc_id"]) == ("hostile-copy", XSS)
    before = {r[0] for r in lake.sql("SELECT doc_id FROM documents", version=1)}
    after = {r[0] for r in lake.sql("SELECT doc_id FROM documents", version=2)}
    counts = one["diff"]["counts"]
    assert (counts["documents_added"], counts["documents_deleted"]) == (
        len(after - before), len(before - after)) == (101, 10)
    (summary,), = lake.sql("SELECT summary FROM runs WHERE version_id = 2 AND flow = 'ingest'")
    assert one["stage_seconds"] == json.loads(summary)["stage_seconds"]

    page = client.get("/versions/2").text
    values = shown(page)
    assert number(values["quarantine.too_short"][0]) == 1
    assert number(values["diff.documents_added"][0]) == 101
    for row in one["metrics"]:
        cell = page.split(f'data-metric="{row["evaluator"]}:{row["metric"]}"')[1]
        assert shown(cell)["value"][0] == _format_metric(row["value"])
    assert str(escape(XSS)) in page and XSS not in page  # the hostile id, as text
    bars = figures(page)["chart-stages"]["data"][0]
    assert dict(zip(bars["y"], bars["x"], strict=True)) == one["stage_seconds"]

    rejected = client.get("/versions/3").text
    (gate,), = lake.sql("SELECT gate FROM versions WHERE version_id = 3")
    assert shown(rejected)["gate.headline"] == [json.loads(gate)["headline"]]
    assert client.get("/versions/99").status_code == 404
    assert client.get("/api/versions/99").json()["error"].startswith("version 99 is not in")


def test_the_card_page_shows_what_embedpipe_card_prints(lake, client):
    result = CliRunner().invoke(cli, ["card", "3", "--json", "--warehouse", str(lake.path)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)["markdown"]
    assert client.get("/api/versions/3/card").json()["markdown"] == printed
    assert printed.startswith("# Version 3 (rejected)")
    page = client.get("/versions/3/card").text
    assert "<h1>Version 3 (rejected)</h1>" in page and "<table>" in page  # rendered Markdown
    assert "<h2>Gate</h2>\n<p>rejected: " in page
    assert 'href="/versions/3/card"' in client.get("/versions/3").text
    assert client.get("/versions/99/card").status_code == 404


def test_quality_draws_every_metric_with_the_gate_band(lake, client):
    data = client.get("/api/quality").json()
    assert data["active_version"] == 2
    lake_rows = lake.sql("SELECT evaluator, metric, version_id, value FROM quality_metrics "
                         "ORDER BY version_id")
    for m in data["metrics"]:
        assert [(p["version_id"], p["value"]) for p in m["points"]] == [
            (v, x) for e, name, v, x in lake_rows if (e, name) == (m["evaluator"], m["metric"])]
    nan = next(m for m in data["metrics"] if m["metric"] == "nan_vectors")
    assert nan["greater_is_better"] is False and nan["band"] == [0.0, 0.25]  # the tolerance

    page = client.get("/quality").text
    charts = figures(page)
    assert len(charts) == len(data["metrics"]) == len({(r[0], r[1]) for r in lake_rows})
    drawn = next(f for f in charts.values() if f["layout"]["title"]["text"].startswith(
        "nan_vectors"))
    band = drawn["layout"]["shapes"][0]
    assert (band["y0"], band["y1"]) == (0.0, 0.25)
    assert drawn["data"][1]["x"] == ["v2"] and drawn["data"][1]["marker"]["symbol"] == "star"


def test_drift_series_thresholds_and_alarms(lake, client):
    data = client.get("/api/drift").json()
    rows = lake.sql("SELECT check_id, metric, value, threshold, alarm, drifted "
                    "FROM drift_metrics ORDER BY checked_at")
    checks = list(dict.fromkeys(r[0] for r in rows))
    assert [c["check_id"] for c in data["checks"]] == checks[::-1] and len(checks) == 2
    for stat in data["statistics"]:
        lake_points = [r for r in rows if r[1] == stat["metric"]]
        assert [(p["check_id"], p["value"], p["alarm"]) for p in stat["points"]] == [
            (r[0], r[2], r[4]) for r in lake_points]
        assert stat["threshold"] == lake_points[-1][3]
    by_check = {c["check_id"]: c for c in data["checks"]}
    for check_id, _, _, _, alarm, drifted in rows:
        assert (by_check[check_id]["alarm"], by_check[check_id]["drifted"]) == (alarm, drifted)

    page = client.get("/drift").text
    charts = figures(page)
    assert len(charts) == len(data["statistics"])
    mmd = next(f for f in charts.values() if f["layout"]["title"]["text"] == "mmd_p_value")
    assert mmd["layout"]["shapes"][0]["y0"] == 0.01  # the threshold line
    alarms = [r[4] for r in rows if r[1] == "mmd_p_value"]
    assert mmd["data"][0]["marker"]["color"] == ["#c92a2a" if a else "#1c7ed6" for a in alarms]


def test_map_reads_the_stored_projection_and_escapes_hover_text(lake, client):
    data = client.get("/api/map").json()
    (points,), = lake.sql("SELECT count(*) FROM projections WHERE version_id = 2 "
                          "AND check_id IS NULL")
    placed = dict(lake.sql("SELECT check_id, count(*) FROM projections WHERE version_id = 2 "
                           "AND check_id IS NOT NULL GROUP BY check_id"))
    assert (data["version_id"], data["points"]) == (2, points)
    assert {c["check_id"]: c["points"] for c in data["checks"]} == placed
    assert len(data["samples"]) == points + sum(placed.values())

    page = client.get("/map").text
    assert number(shown(page)["points"][0]) == points
    traces = figures(page)["chart-map"]["data"]
    assert sum(len(t["x"]) for t in traces) == points + sum(placed.values())
    assert all(t["type"] == "scatter" for t in traces)  # SVG: no WebGL in headless Chromium
    hovers = [h for t in traces for h in t["hovertext"]]
    assert any(html.escape(XSS, quote=False).replace('"', "&#34;") in h for h in hovers)
    assert not any("<script" in h or "<img" in h for h in hovers)
    assert XSS not in page and "<img src=x" not in page
    assert client.get("/api/map?version=1").json()["points"] == 200
    assert client.get("/map?version=99").status_code == 404
    assert client.get("/map?version=two").status_code == 400


def test_the_dashboard_keeps_a_bounded_set_of_searchers_and_catalog_instances(lake,
                                                                              monkeypatch):
    """The soak's dashboard grew ~75 MB in ten minutes: a searcher (index, rows, model) kept
    for every version ever searched, and a DuckDB instance keeping ~160 KB per catalog
    attachment. Searchers: the most recently searched `keep`, the heap trimmed after each is
    dropped; instances: replaced after `MAX_USES` attachments (the memory itself is measured by
    bench/soak.py)."""
    import platform

    from flows.dashboard import memory
    from flows.dashboard.searching import Searchers
    from warehouse.history import MAX_USES, PooledWarehouse

    trims = []
    monkeypatch.setattr(memory, "trim", lambda: trims.append(1) or True)
    wh = PooledWarehouse(lake.path, pool_size=1)
    searchers = Searchers(wh, keep=1)
    for version_id in (1, 2, 1):
        hits = searchers.search("Doc 7", wh.version(version_id), 3)
        assert hits and hits[0].version_id == version_id
        assert searchers.loaded() == [version_id]
    assert len(trims) == 2  # version 1 dropped for 2, then 2 for 1
    # After a promotion the old model's versions are not searched again: closed when idle.
    now = [0.0]
    searchers = Searchers(wh, keep=3, idle_seconds=600, clock=lambda: now[0])
    for at, version_id in ((0.0, 1), (100.0, 2), (650.0, 2)):
        now[0] = at
        searchers.search("Doc 7", wh.version(version_id), 3)
    assert searchers.loaded() == [2] and len(trims) == 3
    if platform.libc_ver()[0] == "glibc":
        assert memory._glibc() is not None  # both calls found (not made: this is pytest's heap)
    pool = PooledWarehouse(lake.path, pool_size=1).pool
    with pool.reader() as first:
        pass
    for _ in range(MAX_USES - 1):
        with pool.reader() as con:
            assert con is first
    # The instance was closed after MAX_USES and its successor made by a thread, not by the
    # next request (~0.15 s each: the soak's slow pages).
    assert pool.replacing is not None
    pool.replacing.join(timeout=60)
    assert pool._idle.qsize() == 1 and pool._created == 1
    with pool.reader() as con:
        assert con is not first
        assert pool._created == 1


def test_the_active_model_is_loaded_before_the_first_search(lake):
    """The soak's first search of each dashboard, and of each promoted model, waited ~0.6 s
    for the model to load. The dashboard warms the active version when it starts (and a newly
    promoted one while people search): opened, model loaded, nothing logged."""
    from flows.dashboard.searching import Searchers
    from warehouse.history import PooledWarehouse

    class Log:
        def __init__(self) -> None:
            self.rows: list[Any] = []

        def record(self, *row: Any, **more: Any) -> None:
            self.rows.append(row)

    wh = PooledWarehouse(lake.path, pool_size=1)
    log, said = Log(), []
    searchers = Searchers(wh, log=log, say=said.append)  # type: ignore[arg-type]
    active = wh.version().version_id
    searchers.warm(wh.version())
    assert searchers.loaded() == [active] and not log.rows and not said
    assert searchers._searchers[active]._embedder is not None  # loaded, not on first use
    searchers.search("Doc 7", wh.version(), 3)
    assert len(log.rows) == 1  # the same searcher; a search is logged, the warm-up was not
    # keep_warm: one look (stop already set) warms the active version of a fresh dashboard.
    stop = threading.Event()
    stop.set()
    fresh = Searchers(wh, log=log, say=said.append)  # type: ignore[arg-type]
    fresh.keep_warm(stop)
    assert fresh.loaded() == [active] and len(log.rows) == 1 and not said
    with TestClient(create_app(lake.config)) as started:  # the app's lifespan warms it
        dash = started.app.state.dashboard  # type: ignore[attr-defined]
        deadline = time.monotonic() + 120
        while dash.searchers.loaded() != [active] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert dash.searchers.loaded() == [active]


def test_search_gives_what_embedpipe_search_gives(lake, client):
    data = client.get("/api/search", params={"q": QUERY, "k": 5}).json()
    cli_run = CliRunner().invoke(cli, ["search", QUERY, "-k", "5", "--json",
                                       "--warehouse", str(lake.path)])
    assert cli_run.exit_code == 0, cli_run.output
    expected = [json.loads(line) for line in cli_run.output.splitlines()]
    assert data["hits"] == expected and expected[0]["doc_id"] == XSS
    page = client.get("/search", params={"q": QUERY, "k": 5}).text
    assert shown(page)["doc_id"][0] == XSS and XSS not in page
    older = client.get("/api/search", params={"q": "Doc 7", "version": 1, "k": 3}).json()
    assert older["version_id"] == 1 and all(h["version_id"] == 1 for h in older["hits"])
    blank = client.get("/api/search", params={"q": "   "})
    assert blank.status_code == 400 and "empty query" in blank.json()["error"]
    assert client.get("/api/search", params={"q": "x", "k": 0}).status_code == 400


def test_metrics_follow_the_lake_and_prometheus_conventions(lake, client):
    text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    value = {name: {tuple(sorted(s.labels.items())): s.value for s in f.samples}
             for name, f in families.items()}
    assert value["embedpipe_active_version"][()] == 2
    by_status = dict(lake.sql("SELECT status, count(*) FROM versions GROUP BY status"))
    assert {k[0][1]: v for k, v in value["embedpipe_versions"].items() if v} == by_status
    assert value["embedpipe_active_documents"][()] == 291
    newest = lake.sql("SELECT metric, value, threshold, alarm, drifted FROM drift_metrics "
                      "WHERE check_id = (SELECT check_id FROM drift_metrics "
                      "ORDER BY checked_at DESC LIMIT 1)")
    assert {k[0][1]: v for k, v in value["embedpipe_drift_statistic"].items()} == {
        r[0]: r[1] for r in newest}
    assert {k[0][1]: v for k, v in value["embedpipe_drift_threshold"].items()} == {
        r[0]: r[2] for r in newest if r[2] is not None}
    assert value["embedpipe_drift_drifted"][()] == int(newest[0][4])
    quality = {(e, m): v for e, m, v in lake.sql(
        "SELECT evaluator, metric, value FROM quality_metrics WHERE version_id = 2")}
    assert {(dict(k)["evaluator"], dict(k)["metric"]): v
            for k, v in value["embedpipe_quality_metric"].items()} == quality
    (summary,), = lake.sql("SELECT summary FROM runs WHERE flow = 'ingest' "
                           "ORDER BY started_at DESC LIMIT 1")
    stages = json.loads(summary)["stage_seconds"]
    assert {k[0][1]: v for k, v in value["embedpipe_last_ingest_stage_seconds"].items()} == \
        stages
    assert value["embedpipe_last_ingest_status"][(("status", "rejected"),)] == 1
    assert 0 <= value["embedpipe_last_drift_check_age_seconds"][()] < 3600
    (meta,), = lake.sql("SELECT index_meta FROM versions WHERE status = 'active'")
    assert value["embedpipe_index_recall"][(("queries", "heldout"),)] == \
        json.loads(meta)["heldout_recall"]

    for family in families.values():  # conventions: prefix, gauges, bounded labels only
        assert family.name.startswith("embedpipe_") and family.type == "gauge"
        assert not family.name.endswith("_total")
        for sample in family.samples:
            assert set(sample.labels) <= {"status", "statistic", "stage", "reason", "outcome",
                                          "queries", "evaluator", "metric"}

    printed = CliRunner().invoke(cli, ["metrics", "--warehouse", str(lake.path)])
    assert printed.exit_code == 0, printed.output
    again = {f.name for f in text_string_to_metric_families(printed.output)}
    assert again == set(families)

    exprs = " ".join(t["expr"] for p in json.loads(GRAFANA.read_text())["panels"]
                     for t in p.get("targets", []))
    assert [name for name in families if not re.search(rf"\b{name}\b", exprs)] == []


def test_links_to_the_prefect_ui_only_when_a_server_is_found(lake, monkeypatch, tmp_path):
    from prefect.settings import PREFECT_API_URL

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("EMBEDPIPE_HOME", str(tmp_path))
    bare = TestClient(create_app(lake.config)).get("/api/overview").json()
    assert all(r["prefect_url"] is None for r in bare["runs"])

    api = str(PREFECT_API_URL.value())  # the test harness's server, as `serve` records one
    (tmp_path / "server.json").write_text(json.dumps({"api_url": api}))
    found = TestClient(create_app(lake.config)).get("/api/overview").json()
    ui = api.removesuffix("/api")
    assert [r["prefect_url"] for r in found["runs"]] == [
        f"{ui}/runs/flow-run/{r['flow_run_id']}" for r in found["runs"]]


def test_served_pages_keep_answering_while_an_ingest_writes(lake, tmp_path):
    from flows.ingest import ingest_corpus

    copy = tmp_path / "wh"
    shutil.copytree(lake.path, copy, ignore=shutil.ignore_patterns("writer.lock"))
    config = hash_config(copy)
    seen: list[tuple[int, int | None]] = []
    stop = threading.Event()
    with served(create_app(config, PrefectLinks(lambda: None))) as url:
        def poll() -> None:
            while not stop.is_set():
                with urllib.request.urlopen(f"{url}/api/overview", timeout=30) as response:
                    seen.append((response.status, json.load(response)["active"]["version_id"]))
                urllib.request.urlopen(f"{url}/metrics", timeout=30).close()

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        more = [{"_id": f"n{i}", "title": f"New {i}", "text": text(3000 + i)} for i in range(40)]
        base = [json.loads(line) for line in (lake.root / "b.jsonl").read_text().splitlines()]
        summary = ingest_corpus(str(write_jsonl(tmp_path / "d.jsonl", base + more)), config)
        time.sleep(0.5)
        stop.set()
        poller.join(timeout=60)
        with urllib.request.urlopen(f"{url}/versions/{summary.version_id}") as response:
            assert response.status == 200
    assert summary.status == "published" and summary.version_id == 4
    assert len(seen) >= 5 and {status for status, _ in seen} == {200}
    versions = [v for _, v in seen]
    assert versions == sorted(versions) and versions[0] == 2 and versions[-1] == 4


def test_cli_serves_and_fails_in_one_line(lake, tmp_path):
    import os
    import socket
    import subprocess
    import sys

    from flows.cli.common import free_port, stop_process_group
    from tests.servers import wait_until

    embedpipe = str(Path(sys.executable).parent / "embedpipe")
    env = {**os.environ, "EMBEDPIPE_HOME": str(tmp_path)}
    port = free_port()
    with (tmp_path / "dashboard.log").open("w") as log:
        proc = subprocess.Popen([embedpipe, "dashboard", "--warehouse", str(lake.path),
                                 "--port", str(port)], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: answers_ok(f"http://127.0.0.1:{port}/metrics"), 90, "dashboard",
                       proc)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as response:
                assert response.status == 200 and b"Overview" in response.read()
        finally:
            stop_process_group(proc)
    assert f"http://127.0.0.1:{port}/" in (tmp_path / "dashboard.log").read_text()

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = subprocess.run([embedpipe, "dashboard", "--warehouse", str(lake.path),
                               "--port", str(taken.getsockname()[1])], env=env,
                              capture_output=True, text=True, timeout=120)
    assert busy.returncode == 2 and busy.stderr.count("\n") == 1
    assert "choose another with --port" in busy.stderr
    missing = subprocess.run([embedpipe, "metrics", "--warehouse", str(tmp_path / "none")],
                             env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no warehouse at" in missing.stderr


def test_a_missing_warehouse_scrapes_as_down_and_pages_say_why(tmp_path):
    app = create_app(hash_config(tmp_path / "nowhere"), PrefectLinks(lambda: None))
    client = TestClient(app)
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    assert list(families) == ["embedpipe_warehouse_up"]
    assert families["embedpipe_warehouse_up"].samples[0].value == 0
    page = client.get("/")
    assert page.status_code == 503 and "no warehouse at" in page.text
    assert client.get("/api/versions").json()["error"].startswith("no warehouse at")
