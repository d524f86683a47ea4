"""Server time of each dashboard page and endpoint on a full-SciFact warehouse (goal < 200 ms).

The warehouse (built once, then reused): SciFact's first 5,000 documents as version 1, then all
5,183 as version 2, both evaluated on SciFact's BEIR test queries with the real model; each
version's map is drawn from up to 5,000 chunks (UMAP); two drift checks on the active version:
SciFact's last 183 documents (same distribution) and 300 Python docstrings (another domain).
Building takes ~10 min on 2 cores; later runs reuse it.

The app is served by uvicorn in this process; an ASGI wrapper times each request from its
arrival to its last body byte (the server's time, JSON/HTML rendering included), and the round
trip is timed by the client too. Every endpoint is fetched twice to warm up, then `--rounds`
times; the table shows the median and 90th percentile. Search is timed warm (the model loads
on the first query, reported apart).

Usage: python bench/dashboard.py [--warehouse DIR] [--rounds 15] [--build-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from _common import DATA_DIR, scifact_corpus, write_result

from flows.config import EmbedpipeConfig, load_config

DEFAULT_WAREHOUSE = Path(tempfile.gettempdir()) / "embedpipe-bench-dashboard" / "wh"
FIRST = 5000
GOAL_MS = 200.0
QUERY = "vitamin D deficiency and bone fractures"


def bench_config(path: Path) -> EmbedpipeConfig:
    return load_config(overrides={"warehouse.path": path,
                                  "evaluate.beir": DATA_DIR / "scifact"}, environ={})


def build(path: Path, corpus: Path) -> None:
    """Versions 1 and 2 and two drift checks (see the module docstring); `done` marks it."""
    from flows.demo import stdlib_docstrings
    from flows.ingest import ingest_corpus
    from flows.monitor import monitor_drift

    work = path.parent
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    (work / "first.jsonl").write_text("".join(lines[:FIRST]), encoding="utf-8")
    (work / "tail.jsonl").write_text("".join(lines[FIRST:]), encoding="utf-8")
    with (work / "docstrings.jsonl").open("w", encoding="utf-8") as handle:
        for record in stdlib_docstrings(limit=300):
            handle.write(json.dumps(record) + "\n")
    config = bench_config(path)
    for source in (work / "first.jsonl", corpus):
        started = time.perf_counter()
        summary = ingest_corpus(str(source), config)
        print(f"ingest {source.name}: {summary.status} v{summary.version_id} "
              f"({time.perf_counter() - started:.0f} s)")
    for batch in ("tail.jsonl", "docstrings.jsonl"):
        report = monitor_drift(config, str(work / batch))
        print(f"drift check {batch}: {report.headline()}")
    (work / "done").write_text("built\n")


class Timed:
    """ASGI wrapper: seconds from each request's arrival to its last body byte, by path."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seconds: dict[str, list[float]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        key = scope["path"] + ("?" + scope["query_string"].decode()
                               if scope["query_string"] else "")

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.seconds.setdefault(key, []).append(time.perf_counter() - started)

        await self.app(scope, receive, timed_send)


def endpoints(active: int) -> list[str]:
    search = "q=" + QUERY.replace(" ", "+")
    return ["/", "/api/overview", "/versions", "/api/versions", f"/versions/{active}",
            f"/api/versions/{active}", "/quality", "/api/quality", "/drift", "/api/drift",
            "/map", "/api/map", f"/search?{search}", f"/api/search?{search}", "/metrics"]


def fetch(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        size = len(response.read())
    return size, time.perf_counter() - started


def measure(path: Path, rounds: int) -> dict[str, Any]:
    import uvicorn

    from flows.cli.common import free_port
    from flows.dashboard.app import create_app
    from flows.dashboard.links import PrefectLinks
    from warehouse.store import Warehouse

    config = bench_config(path)
    timed = Timed(create_app(config, PrefectLinks(lambda: None)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(timed, host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    active = Warehouse(path).version().version_id
    searchers = timed.app.state.dashboard.searchers  # the app preloads the active model
    while searchers.loaded() != [active]:
        time.sleep(0.05)
    cold_search = fetch(f"{base}/api/search?q=warm+up")[1]
    rows = []
    try:
        for endpoint in endpoints(active):
            for _ in range(2):
                fetch(base + endpoint)
            timed.seconds.pop(endpoint, None)
            trips = [fetch(base + endpoint) for _ in range(rounds)]
            server_ms = sorted(1000 * s for s in timed.seconds[endpoint])
            rows.append({"endpoint": endpoint, "bytes": trips[-1][0],
                         "server_ms_median": round(statistics.median(server_ms), 1),
                         "server_ms_p90": round(server_ms[int(0.9 * (len(server_ms) - 1))], 1),
                         "round_trip_ms_median": round(
                             statistics.median(1000 * t for _, t in trips), 1)})
    finally:
        server.should_exit = True
    return {"cold_search_seconds": round(cold_search, 2), "endpoints": rows}


def lake_facts(path: Path) -> dict[str, Any]:
    from warehouse.store import Warehouse

    con = Warehouse(path).connect()
    try:
        facts = con.execute("""
            SELECT (SELECT count(*) FROM versions), (SELECT max(n_chunks) FROM versions),
                   (SELECT count(*) FROM projections WHERE check_id IS NULL
                      AND version_id = (SELECT max(version_id) FROM versions
                                        WHERE status = 'active')),
                   (SELECT count(DISTINCT check_id) FROM drift_metrics),
                   (SELECT count(*) FROM quality_metrics)""").fetchone()
    finally:
        con.close()
    assert facts is not None
    return dict(zip(["versions", "chunks", "map_points", "drift_checks", "metric_rows"], facts,
                    strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE,
                        help=f"a built warehouse, or where to build one (default "
                             f"{DEFAULT_WAREHOUSE})")
    parser.add_argument("--rounds", type=int, default=15, help="timed fetches per endpoint")
    parser.add_argument("--build-only", action="store_true", help="build and stop")
    args = parser.parse_args()
    path = args.warehouse.absolute()
    if not (path / "catalog.sqlite").exists() or (
            path == DEFAULT_WAREHOUSE and not (path.parent / "done").exists()):
        corpus = scifact_corpus()
        if corpus is None:
            print("skipped: SciFact not found (set EMBEDPIPE_DATA_DIR)")
            return
        if path.exists():
            raise SystemExit(f"{path} holds a half-built warehouse: remove it and run again")
        path.parent.mkdir(parents=True, exist_ok=True)
        build(path, corpus)
    if args.build_only:
        return
    facts = lake_facts(path)
    result = measure(path, args.rounds)
    print(f"warehouse {path}: {facts}")
    print(f"first search (model preloaded at start): {result['cold_search_seconds']:.2f} s")
    print(f"{'endpoint':52s} {'KB':>7s} {'median ms':>10s} {'p90 ms':>8s} {'trip ms':>8s}")
    for row in result["endpoints"]:
        flag = "" if row["server_ms_p90"] < GOAL_MS else "  over the goal"
        print(f"{row['endpoint'][:52]:52s} {row['bytes'] / 1024:7.0f} "
              f"{row['server_ms_median']:10.1f} {row['server_ms_p90']:8.1f} "
              f"{row['round_trip_ms_median']:8.1f}{flag}")
    worst = max(r["server_ms_p90"] for r in result["endpoints"])
    print(f"slowest p90: {worst:.0f} ms (goal < {GOAL_MS:.0f} ms)")
    write_result("dashboard", {"warehouse": facts, "rounds": args.rounds, "goal_ms": GOAL_MS,
                               **result, "slowest_p90_ms": worst, "passed": worst < GOAL_MS})


if __name__ == "__main__":
    main()
