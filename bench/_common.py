"""Shared helpers of the benchmarks: data location, result files, a chunked sample corpus."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
DATA_DIR = Path(os.environ.get("EMBEDPIPE_DATA_DIR", ROOT.parent / "shared" / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def skip(reason: str) -> NoReturn:
    """Say why the benchmark cannot run here and exit 0: absent data is not a failure."""
    print(f"skipped: {reason}")
    raise SystemExit(0)


def bench_parser(doc: str | None, **defaults: Any) -> argparse.ArgumentParser:
    """A parser with one `--name` option per keyword (`mined_queries` → `--mined-queries`),
    typed like its default."""
    parser = argparse.ArgumentParser(description=doc)
    for name, default in defaults.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    return parser


def scifact_parser(doc: str | None, **defaults: Any) -> argparse.ArgumentParser:
    """`bench_parser` with `--limit`, for benchmarks that ingest SciFact or its first N lines."""
    parser = bench_parser(doc, **defaults)
    parser.add_argument("--limit", type=int, default=0, help="first N documents only")
    return parser


def stsb_test() -> Path:
    """STS-B's test file; skips the benchmark when the data is absent."""
    path = DATA_DIR / "stsb" / "sts-test.csv"
    if not path.exists():
        skip(f"STS-B not found at {path} (set EMBEDPIPE_DATA_DIR)")
    return path


def scifact_corpus() -> Path | None:
    path = DATA_DIR / "scifact" / "corpus.jsonl"
    return path if path.exists() else None


def scifact_dir() -> Path:
    """SciFact's directory (corpus, queries, qrels); skips the benchmark when it is absent."""
    scifact = DATA_DIR / "scifact"
    if not (scifact / "corpus.jsonl").exists():
        skip(f"SciFact not found under {scifact} (set EMBEDPIPE_DATA_DIR)")
    return scifact


def scifact_workspace(limit: int, prefix: str) -> tuple[Path, Path]:
    """(SciFact corpus, or its first `limit` lines; a fresh work directory); skips the benchmark
    when the data is absent."""
    import tempfile

    source = scifact_dir() / "corpus.jsonl"
    work = Path(tempfile.mkdtemp(prefix=prefix))
    return first_lines(source, limit, work), work


def warm_up_prefect(work: Path) -> None:
    """Ingest a one-document corpus with the hash embedder under `work`, so that Prefect's
    temporary API server is started before anything is timed."""
    from flows.config import load_config
    from flows.ingest import ingest_corpus

    tiny = work / "warm.jsonl"
    tiny.write_text(json.dumps({"_id": "w", "text": "warm up the Prefect API server"}) + "\n")
    ingest_corpus(str(tiny), load_config(overrides={"warehouse.path": work / "warm",
                                                    "embed.model": "hash"}, environ={}))


def cpu_flags() -> list[str]:
    """The SIMD features that decide CPU inference speed (AVX2, AVX-512 and its VNNI, AMX)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4")))


def machine() -> dict:
    """What the figures were measured on, and how busy it was."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text(
    ).splitlines() if line.startswith("model name")), platform.processor()) \
        if Path("/proc/cpuinfo").exists() else platform.processor()
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "cpu": model,
            "cpu_flags": cpu_flags(), "load_average": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform()}


def write_result(name: str, result: dict) -> Path:
    """Write `result` with the machine it was measured on to bench/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
               "machine": machine(), **result}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def first_lines(source: Path, limit: int, work: Path) -> Path:
    """`source` itself, or a copy of its first `limit` lines (limit 0: the whole file)."""
    if not limit:
        return source
    subset = work / source.name
    with source.open(encoding="utf-8") as handle:
        subset.write_text("".join(line for _, line in zip(range(limit), handle, strict=False)))
    return subset


def ingest_once(source: Path, config: Any) -> float:
    """Ingest `source` into `config`'s warehouse unless it already holds a version (a rerun of a
    bench reuses it); returns the seconds spent (0 when reused)."""
    import time

    from warehouse.store import Warehouse

    if Warehouse(config.warehouse.path).exists():
        return 0.0
    from flows.ingest import ingest_corpus

    started = time.perf_counter()
    ingest_corpus(str(source), config)
    return time.perf_counter() - started
