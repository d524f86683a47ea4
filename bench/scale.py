"""Scale: 100k, 300k and 1M synthetic documents on one machine, in bounded memory.

A deterministic generator writes short documents (a few % exact and near duplicates), ingested
with the hash embedder (the model is not what is measured here) in a separate process per run,
so peak RSS (`resource.getrusage`, children) is the ingest's own. For each size: wall time per
stage, time per document, peak RSS, warehouse bytes; then an unchanged re-ingest and a 1%-edited
one, and search latency on the result. Goals: 1M documents under 4 GB peak RSS, time per
document at 1M within 1.3x of that at 100k, unchanged re-ingest under 2% of the full ingest.
An ingest whose RSS passes `--rss-cap-gb` (default 16: the machine has 24) is stopped and
recorded as such, with its RSS over time, rather than taking the machine down. Results are
written after each size, so a long run that is stopped keeps what it measured.
Writes bench/results/scale.json.

    .venv/bin/python bench/scale.py [--sizes 100000,300000,1000000] [--root DIR] [--rss-cap-gb 16]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import ROOT, machine, write_result

WORDS = [f"{a}{b}{c}" for a in ("ka", "lo", "mi", "ne", "su", "ta", "vo", "zu", "pe", "ri")
         for b in ("ber", "dal", "fen", "gor", "hil", "jun", "kas", "lim", "mor", "nix")
         for c in ("", "a", "o", "is", "um")]


def generate(path: Path, n: int, seed: int = 0, edit_share: float = 0.0) -> int:
    """`n` documents of 30-80 words as JSONL: 2% exact and 2% near duplicates of earlier ones.

    `edit_share`: that share of documents gets one sentence appended (a 1% edit run).
    """
    rng = random.Random(seed)
    edits = random.Random(seed + 1)
    kept: list[str] = []
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            roll = rng.random()
            if kept and roll < 0.02:
                text = kept[rng.randrange(len(kept))]  # exact duplicate
            elif kept and roll < 0.04:
                words = kept[rng.randrange(len(kept))].split()
                words[rng.randrange(len(words))] = rng.choice(WORDS)  # one word changed
                text = " ".join(words)
            else:
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 80))) + "."
                if len(kept) < 50_000:
                    kept.append(text)
            if edit_share and edits.random() < edit_share:
                text += " This record was revised in a later edition."
            out.write(json.dumps({"_id": f"doc{i:07d}", "title": f"Record {i}",
                                  "text": text}) + "\n")
    return n


class OverCap(Exception):
    """The ingest passed the RSS cap and was stopped."""


def ingest(source: Path, warehouse: Path, cap_kb: int) -> dict:
    """One `embedpipe ingest --json` in its own process: its summary, wall time and peak RSS.

    Raises:
        OverCap: its RSS passed `cap_kb` (it is killed; the message has the RSS timeline).
    """
    # The hash embedder's vectors are uniform on the sphere: the hardest case for HNSW (no
    # cluster structure), where recall@10 0.99 needs ef > 512 at 100k and ef 512 reaches 0.91
    # at 1M. The recall target is about real embeddings; here 0.9 lets the versions be
    # promoted, so that the unchanged re-ingest compares with an active version as in
    # production.
    env = {**os.environ, "EMBEDPIPE_EMBED__MODEL": "hash", "EMBEDPIPE_MAP__METHOD": "pca",
           "EMBEDPIPE_INDEX__TARGET_RECALL": "0.9",
           "HF_HUB_OFFLINE": "1", "PREFECT_LOGGING_LEVEL": "CRITICAL"}
    started = time.perf_counter()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "embedpipe"), "ingest",
                             str(source), "--warehouse", str(warehouse), "--json"], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_kb = 0
    timeline: list[tuple[float, int]] = []  # (seconds, MB) every 10 s
    while proc.poll() is None:  # the ingest process's own high-water mark (VmHWM)
        peak_kb = max(peak_kb, _hwm_kb(proc.pid))
        elapsed = time.perf_counter() - started
        if not timeline or elapsed - timeline[-1][0] >= 10:
            timeline.append((round(elapsed), peak_kb // 1024))
        if peak_kb > cap_kb:
            proc.kill()
            proc.wait()
            raise OverCap(f"stopped after {elapsed:.0f} s at {peak_kb // 1024} MB; peak RSS "
                          f"(s, MB): {timeline}")
        time.sleep(0.5)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ingest of {source} failed: {stderr.strip()[-2000:]}")
    summary = json.loads(stdout)
    return {"wall_seconds": round(wall, 1), "peak_rss_mb": round(peak_kb / 1024),
            "status": summary["status"], "input": summary["input_documents"],
            "kept": summary["kept"], "chunks": summary["chunks"],
            "embedded": summary["vectors_embedded"], "stage_seconds": summary["stage_seconds"],
            "stage_peak_rss_mb": summary.get("stage_peak_rss_mb"),
            "peak_rss_mb_over_time": timeline}


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def search_latency(warehouse: Path, queries: int = 200) -> dict:
    from flows.search import Searcher
    from warehouse.store import Warehouse

    wh = Warehouse(warehouse)
    searcher = Searcher(wh, wh.versions()[-1].version_id)  # the newest, active or not
    rng = random.Random(1)
    texts = [" ".join(rng.choice(WORDS) for _ in range(6)) for _ in range(queries)]
    searcher.search(texts[0])
    times = []
    for text in texts:
        started = time.perf_counter()
        searcher.search(text, k=10)
        times.append((time.perf_counter() - started) * 1e3)
    times.sort()
    return {"p50_ms": round(times[len(times) // 2], 2),
            "p95_ms": round(times[int(len(times) * 0.95)], 2)}


def bytes_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--root", type=Path, default=Path("/tmp/embedpipe-scale"))
    parser.add_argument("--rss-cap-gb", type=float, default=16.0)
    parser.add_argument("--result-name", default="scale", help="bench/results/NAME.json")
    parser.add_argument("--reingest-max", type=int, default=300_000,
                        help="larger sizes get no 1%%-edited re-ingest")
    args = parser.parse_args()
    cap_kb = int(args.rss_cap_gb * 1024 * 1024)
    args.root.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for n in [int(x) for x in args.sizes.split(",")]:
        source, edited = args.root / f"corpus-{n}.jsonl", args.root / f"edited-{n}.jsonl"
        if not source.exists():
            generate(source, n)
            generate(edited, n, edit_share=0.01)
        warehouse = args.root / f"wh-{n}"
        shutil.rmtree(warehouse, ignore_errors=True)  # a full ingest starts from nothing
        try:
            full = ingest(source, warehouse, cap_kb)
        except OverCap as exc:
            print(f"{n:>9,d} docs: {exc}", flush=True)
            results[str(n)] = {"over_rss_cap": str(exc)}
            write_result(args.result_name, {"results": results, "machine_at_end": machine()})
            break
        row: dict = {"full": full,
                     "seconds_per_1000_documents": round(1000 * full["wall_seconds"] / n, 3)}
        unchanged = ingest(source, warehouse, cap_kb)
        row.update(unchanged=unchanged,
                   unchanged_share_of_full=round(unchanged["wall_seconds"]
                                                 / full["wall_seconds"], 4))
        if n <= args.reingest_max:
            row.update(edited_1pct=ingest(edited, warehouse, cap_kb))
        row.update(warehouse_bytes=bytes_of(warehouse), search=search_latency(warehouse))
        results[str(n)] = row
        per_k = row["seconds_per_1000_documents"]
        again = (f"unchanged {row['unchanged']['wall_seconds']} s "
                 f"({row['unchanged_share_of_full']:.1%}); " + (
                     f"1% edited {row['edited_1pct']['wall_seconds']} s; "
                     if "edited_1pct" in row else ""))
        print(f"{n:>9,d} docs: full {full['wall_seconds']:.0f} s ({per_k} s/1k docs), "
              f"peak {full['peak_rss_mb']} MB, status {full['status']}; {again}"
              f"{row['warehouse_bytes'] / 1e9:.2f} GB; search p50 {row['search']['p50_ms']} ms",
              flush=True)
        write_result(args.result_name, {"results": results, "machine_at_end": machine()})
    sizes = sorted((k for k in results if "full" in results[k]), key=int)
    if len(sizes) > 1:
        slope = results[sizes[-1]]["seconds_per_1000_documents"] / \
            results[sizes[0]]["seconds_per_1000_documents"]
        print(f"time per document at {int(sizes[-1]):,d} vs {int(sizes[0]):,d}: {slope:.2f}x "
              "(goal <= 1.3)")
    else:
        slope = None
    write_result(args.result_name, {"results": results, "machine_at_end": machine(),
                                    "time_per_document_slope": slope and round(slope, 3)})


if __name__ == "__main__":
    main()
