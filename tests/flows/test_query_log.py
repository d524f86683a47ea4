"""The query log: searches land in the lake's `queries` table, stay bounded, feed drift checks,
and the index's ef follows them (`embedpipe index --retune`) without a rebuild."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import hash_config, write_jsonl
from warehouse import query_log
from warehouse.query_log import QueryLog, SearchConfig
from warehouse.store import Warehouse

pytestmark = pytest.mark.slow

WORDS = ["tide", "moon", "ocean", "salt", "river", "delta", "glacier", "basalt", "granite",
         "quartz", "fern", "moss", "lichen", "oak", "pine", "cedar", "maple", "willow", "heron",
         "finch", "owl", "falcon", "salmon", "trout", "pike", "carp"]


def cli(config_file: Path, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    return result.output


def write_config(path: Path, warehouse: Path, **sections: dict) -> Path:
    lines = [f'[warehouse]\npath = "{warehouse}"\n', '[embed]\nmodel = "hash"\n']
    for name, values in sections.items():
        lines.append(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n"
                                             for k, v in values.items()))
    path.write_text("\n".join(lines))
    return path


def test_cli_searches_are_logged_bounded_and_read_by_a_monitor(prefect_harness, topic_corpus,
                                                               tmp_path):
    from flows.ingest import ingest_corpus
    from flows.monitor import monitor_drift

    config = hash_config(tmp_path / "wh", **{"search.log_max_rows": 5})
    ingest_corpus(str(topic_corpus), config)
    toml = write_config(tmp_path / "embedpipe.toml", tmp_path / "wh",
                        search={"log_max_rows": 5})
    asked = [f"{a} and {b}" for a, b in zip(WORDS[:7], WORDS[7:14], strict=True)]
    for text in asked:
        cli(toml, "search", text, "-k", "3", "--json")
    cli(toml, "search", asked[-1], "--mode", "bm25", "-k", "2")

    logged = json.loads(cli(toml, "queries", "--json", "--limit", "50"))
    assert len(logged) == 5  # search.log_max_rows: the oldest were dropped
    assert [r["text"] for r in logged] == [asked[-1], asked[-1], asked[-2], asked[-3],
                                           asked[-4]]
    assert {r["version_id"] for r in logged} == {1}
    assert [(r["mode"], r["k"]) for r in logged[:2]] == [("bm25", 2), ("vector", 3)]
    assert all(r["origin"] == "cli" and r["latency_ms"] > 0 for r in logged)
    assert all(r["top_score"] is not None for r in logged if r["mode"] == "vector")
    table = cli(toml, "queries")
    assert "glacier" in table and "5 most recent logged searches" in table

    # `drift --queries log`: the first check of the log makes it the reference set.
    report = monitor_drift(config, "log", "queries")
    assert "reference set" in report.note
    stored = Warehouse(tmp_path / "wh").query_reference()
    assert stored is not None and sorted(stored[2]) == sorted(asked[-4:])  # distinct texts

    # A library call records nothing unless asked.
    from flows.search import search

    search(Warehouse(tmp_path / "wh"), "anything at all", k=1)
    assert len(query_log.recent(Warehouse(tmp_path / "wh"), 50)) == 5


def test_a_warehouse_that_cannot_be_written_logs_nothing_and_says_so_once(tmp_path):
    said: list[str] = []
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the warehouse would be")
    log = QueryLog(Warehouse(blocked), SearchConfig(), "cli", say=said.append)
    for _ in range(3):
        log.record("tides", 1, "vector", 10, 0.5, 12.0)
    assert len(said) == 1 and "query log off" in said[0] and str(blocked) in said[0]
    assert not log.enabled


def test_retune_raises_ef_on_logged_queries_without_rebuilding(prefect_harness, tmp_path):
    from flows.ingest import ingest_corpus

    rng = random.Random(7)
    docs = [{"_id": f"d{i}", "text": " ".join(rng.choices(WORDS, k=12))} for i in range(1500)]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", docs)
    # A poor graph tuned to a low target: ef stays at the bottom of the ladder.
    weak = {"index.m": 2, "index.ef_construction": 8, "index.target_recall": 0.3,
            "index.bm25": False}
    ingest_corpus(str(corpus), hash_config(tmp_path / "wh", **weak))
    wh = Warehouse(tmp_path / "wh")
    version = wh.version()
    assert version.index_meta["queries"] == "probes"  # no query set, no log: probes, not chunks
    assert version.index_meta["log_recall"] is None

    log = QueryLog(wh, SearchConfig(log_queries=True), "library")
    for i in range(60):
        log.record(" ".join(rng.choices(WORDS, k=4)) + f" {i}", version.version_id, "vector",
                   10, None, 5.0)
    index_dir = wh.index_dir(version.version_id)
    files = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in index_dir.iterdir()
             if p.name != "meta.json"}

    toml = write_config(tmp_path / "embedpipe.toml", tmp_path / "wh",
                        index={"m": 2, "ef_construction": 8, "target_recall": 0.99,
                               "bm25": False})
    result = json.loads(cli(toml, "index", "--retune", "--json"))
    assert result["recall_before"] < 0.99 and result["ef_after"] > result["ef_before"]
    assert result["changed"] and result["queries"] == 60
    assert result["recall_after"] >= 0.99 or result["ef_after"] == 512
    # Nothing rebuilt: the graph and rows files are the very same files.
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in index_dir.iterdir()
            if p.name != "meta.json"} == files

    meta = Warehouse(tmp_path / "wh").version().index_meta
    assert (meta["ef"], meta["log_recall"], meta["retuned_from"]) == (
        result["ef_after"], result["recall_after"], result["ef_before"])
    card = json.loads(cli(toml, "card", "--json"))
    assert f"{result['recall_after']} on 60 logged searches" in json.dumps(card)
    assert f"ef raised from {result['ef_before']} to {result['ef_after']}" in json.dumps(card)
    metrics = {s.labels.get("queries"): s.value
               for f in text_string_to_metric_families(cli(toml, "metrics"))
               if f.name == "embedpipe_index_recall" for s in f.samples}
    assert metrics["log"] == pytest.approx(result["recall_after"])
    assert "probes" in metrics
    runs = Warehouse(tmp_path / "wh").runs("retune")
    assert len(runs) == 1 and "index files unchanged" in runs[0]["message"]

    # A search now uses the raised ef.
    from tasks.index.storage import open_version_index

    assert open_version_index(wh, wh.version()).index.ef == result["ef_after"]

    # Once the log holds enough queries, a rebuild tunes on them instead of probes.
    toml = write_config(tmp_path / "embedpipe.toml", tmp_path / "wh",
                        index={"m": 2, "ef_construction": 8, "log_min_queries": 50,
                               "bm25": False})
    rebuilt = json.loads(cli(toml, "index", "--json"))
    assert rebuilt["queries"] == "log" and rebuilt["log_queries"] == 60
