"""Incremental re-ingest cost on SciFact: unchanged and 1%-edited corpora vs the full ingest.

Three ingests of the real flow into one fresh warehouse, in one process (Prefect's temporary API
server is started by a warm-up run first, so no run pays for it):
  full      - the whole corpus, every chunk embedded
  unchanged - the same file again: target <= 5% of full
  edited    - 1% of documents with one sentence appended: target <= 5% + share of re-embedded
              chunks (of the full run's time)
Usage: python bench/incremental.py [--limit N] [--edit-share 0.01]
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from _common import scifact_parser, scifact_workspace, warm_up_prefect, write_result

from flows.config import load_config
from flows.ingest import ingest_corpus


def edited_copy(source: Path, target: Path, share: float, seed: int = 7) -> int:
    lines = source.read_text(encoding="utf-8").splitlines()
    rng = random.Random(seed)
    chosen = set(rng.sample(range(len(lines)), max(1, round(len(lines) * share))))
    with target.open("w", encoding="utf-8") as handle:
        for i, line in enumerate(lines):
            record = json.loads(line)
            if i in chosen:
                record["text"] += " This abstract was revised in a later edition."
            handle.write(json.dumps(record) + "\n")
    return len(chosen)


def main() -> None:
    args = scifact_parser(__doc__, edit_share=0.01).parse_args()
    source, work = scifact_workspace(args.limit, "embedpipe-bench-")
    edited = work / "edited.jsonl"
    n_edited = edited_copy(source, edited, args.edit_share)
    config = load_config(overrides={"warehouse.path": work / "wh"}, environ={})
    warm_up_prefect(work)

    runs = {}
    for name, path in (("full", source), ("unchanged", source), ("edited", edited)):
        started = time.perf_counter()
        summary = ingest_corpus(str(path), config)
        runs[name] = {"seconds": round(time.perf_counter() - started, 2),
                      "vectors_embedded": summary.vectors_embedded,
                      "chunks": summary.chunks or runs.get("full", {}).get("chunks", 0),
                      "status": summary.status, "stage_seconds": summary.stage_seconds}
    full = runs["full"]["seconds"]
    edited_share = runs["edited"]["vectors_embedded"] / max(runs["full"]["vectors_embedded"], 1)
    unchanged_ratio = runs["unchanged"]["seconds"] / full
    edited_ratio = runs["edited"]["seconds"] / full
    print(f"corpus {source.name}: {runs['full']['chunks']} chunks; {n_edited} documents edited")
    for name, run in runs.items():
        print(f"  {name:10s} {run['seconds']:8.1f} s  {run['seconds'] / full:6.3f} of full  "
              f"embedded {run['vectors_embedded']}")
    print(f"  unchanged/full = {unchanged_ratio:.3f} (target <= 0.05)")
    print(f"  edited/full    = {edited_ratio:.3f} (target <= {0.05 + edited_share:.3f} = 0.05 + "
          f"{edited_share:.3f} re-embedded share)")
    write_result("incremental", {
        "corpus": source.name, "documents_edited": n_edited, "runs": runs,
        "unchanged_ratio": round(unchanged_ratio, 4), "edited_ratio": round(edited_ratio, 4),
        "edited_chunk_share": round(edited_share, 4),
        "passed": unchanged_ratio <= 0.05 and edited_ratio <= 0.05 + edited_share})


if __name__ == "__main__":
    main()
