"""Soak: `embedpipe serve` left running for hours with compressed schedules, measured every minute.

What runs (all on 127.0.0.1, under a fresh work directory):
- `embedpipe serve` (a Prefect server and the five deployments) over a small warehouse of
  Python docstrings, with the real model and the served defaults, except the schedules: ingest
  every `--ingest-every` minutes over a corpus that changes a little before each one (a few
  documents edited, added, dropped), monitor every minute over a batch that is in-domain most of
  the time and out of domain for 4 minutes every 20 (a drift episode: the served 2-of-3 alarm
  rule fires the retrain), gc every 15 minutes keeping 3 versions, a retrain cooldown of 15
  minutes, and Prefect's retention of runs and events at an hour (checked every 5 minutes) so
  the soak sees it act;
- `embedpipe dashboard` over the same warehouse, and a reader requesting one of its pages, a
  search or /metrics every 2 seconds.
Sampled every minute: RSS, open files and threads of every long-lived process it started (the
Prefect server, the runner, `serve` itself, the dashboard) and how many processes are alive;
disk used by the warehouse, Prefect's home, the export cache; files and snapshots of the lake;
flow runs by flow and final state; the reader's latency p50/p95 over the minute; load average.

    python bench/soak.py                 # 2 hours
    python bench/soak.py --minutes 10    # a quick look

Writes bench/results/soak.json and bench/results/soak.png (each series over time). It is a
bench: it prints and records what it saw, and says which of the goals held (RSS at the end within
10% or 50 MB of its value after 15 minutes, no failed run, dashboard p95 under 500 ms).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import quote_plus
from urllib.request import Request, urlopen

from _common import RESULTS, bench_parser, write_result

BIN = Path(sys.executable).parent
PAGES = ["/", "/versions", "/quality", "/drift", "/search?q={query}", "/metrics"]
WORDS = ["parse", "socket", "thread", "encode", "file", "path", "date", "regular expression",
         "compress", "dictionary", "iterator", "timeout", "logging", "decimal", "queue"]
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
STUCK_SECONDS = 900
EPISODE_LENGTH = 4  # minutes of drifting batches in every `--episode-every`


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def docstrings() -> list[dict[str, str]]:
    from flows.demo import stdlib_docstrings

    return stdlib_docstrings(limit=600)


def off_domain(minute: int, n: int) -> list[dict[str, str]]:
    """Weather reports: nothing like a docstring (a drift the monitor must see)."""
    rng = random.Random(minute)
    winds = ["north", "south", "east", "west"]
    return [{"_id": f"weather-{minute}-{i}", "text": f"Station {rng.randrange(900)} reports "
             f"{rng.randrange(2, 40)} mm of rain, wind {rng.randrange(30)} knots from the "
             f"{rng.choice(winds)}, pressure {rng.randrange(960, 1040)} hPa and a low of "
             f"{rng.randrange(-5, 15)} degrees overnight."} for i in range(n)]


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    """Atomically (a served run may be reading the previous file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(path)


class Source:
    """The corpus the scheduled ingest reads and the batch the monitor reads, changing."""

    def __init__(self, work: Path, docs: int, episode_every: int) -> None:
        pool = docstrings()
        self.corpus, self.spare = pool[:docs], pool[docs:]
        self.corpus_file, self.batch_file = work / "corpus.jsonl", work / "incoming.jsonl"
        self.rng, self.episode_every = random.Random(0), episode_every
        self.edits = 0
        write_jsonl(self.corpus_file, self.corpus)
        self.batch(0)

    def change_corpus(self) -> None:
        """Edit 3 documents, add 2 from the spare pool, drop 1: a little each time."""
        self.edits += 1
        for doc in self.rng.sample(self.corpus, 3):
            doc["text"] += f" (Revised in edit {self.edits}.)"
        for _ in range(2):
            if self.spare:
                self.corpus.append(self.spare.pop())
        self.corpus.pop(self.rng.randrange(len(self.corpus)))
        write_jsonl(self.corpus_file, self.corpus)

    def batch(self, minute: int) -> bool:
        """This minute's batch; True during a drift episode."""
        drifting = minute % self.episode_every >= self.episode_every - EPISODE_LENGTH
        rows = off_domain(minute, 60) if drifting else random.Random(minute).sample(
            self.corpus, 60)
        write_jsonl(self.batch_file, rows)
        return drifting


class Reader(threading.Thread):
    """Requests a dashboard page, a search or /metrics every 2 s; keeps (time, page, ms, ok).

    Searches are a word, or the first words of a docstring (as someone would paraphrase what
    they look for): a few hundred distinct searches in the log, what a served retrain learns
    from and is judged on (`retrain.log_min_searches`)."""

    def __init__(self, base: str, phrases: list[str] | None = None) -> None:
        super().__init__(daemon=True)
        self.base, self.stop = base, threading.Event()
        self.queries = WORDS + (phrases or [])
        self.seen: list[tuple[float, str, float, bool]] = []

    def run(self) -> None:
        rng = random.Random(1)
        while not self.stop.wait(2.0):
            page = rng.choice(PAGES)
            url = self.base + page.format(query=quote_plus(rng.choice(self.queries)))
            started = time.monotonic()
            try:
                with urlopen(Request(url), timeout=30) as response:
                    response.read()
                    ok = response.status == 200
            except (URLError, OSError):
                ok = False
            self.seen.append((time.time(), page.split("?")[0],
                              (time.monotonic() - started) * 1000, ok))


def role(proc: Any) -> str:
    """A long-lived process's part, from its command line."""
    cmd = " ".join(proc.cmdline())
    if "prefect server start" in cmd or "prefect" in cmd and "uvicorn" in cmd:
        return "prefect-server"
    if "deployments.serve" in cmd:
        return "runner"
    if " serve " in cmd + " ":
        return "embedpipe-serve"
    if " dashboard " in cmd + " ":
        return "dashboard"
    return "flow-run"


def processes(roots: list[subprocess.Popen]) -> dict[str, Any]:
    """RSS (MB), open files and threads of each long-lived process, how many are alive, and
    the RSS of flow-run processes older than `STUCK_SECONDS` (no run here takes that long)."""
    import psutil

    found: dict[str, dict[str, float]] = {}
    alive, stuck = 0, []
    for root in roots:
        try:
            tree = [psutil.Process(root.pid), *psutil.Process(root.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in tree:
            try:
                with proc.oneshot():
                    part, rss = role(proc), proc.memory_info().rss / 2**20
                    fds, threads = proc.num_fds(), proc.num_threads()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            alive += 1
            if part == "flow-run":  # short-lived: counted, and flagged when it lingers
                if time.time() - proc.create_time() > STUCK_SECONDS:
                    stuck.append(round(rss, 1))
                continue
            name = part if part not in found else f"{part}-{proc.pid}"
            found[name] = {"rss_mb": round(rss, 1), "fds": fds, "threads": threads}
    return {"alive": alive, "by_role": found, "stuck_runs_rss_mb": stuck}


def disk_mb(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a file deleted while we walk
                total += os.lstat(os.path.join(root, name)).st_size
    return round(total / 1e6, 1)


def lake(warehouse: Path) -> dict[str, int]:
    """Parquet files on disk, snapshots and live data files in the catalog (read-only)."""
    files = sum(1 for _ in warehouse.rglob("*.parquet"))
    catalog = warehouse / "catalog.sqlite"
    if not catalog.exists():
        return {"parquet_files": files, "snapshots": 0, "catalog_data_files": 0}
    db = sqlite3.connect(f"{catalog.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        snapshots = db.execute("SELECT count(*) FROM ducklake_snapshot").fetchone()[0]
        live = db.execute("SELECT count(*) FROM ducklake_data_file WHERE end_snapshot IS NULL"
                          ).fetchone()[0]
    except sqlite3.Error:
        snapshots = live = -1
    finally:
        db.close()
    return {"parquet_files": files, "snapshots": snapshots, "catalog_data_files": live}


def prefect_rows(home: Path) -> dict[str, int]:
    """Rows of the Prefect database's growing tables (read-only; -1 where unreadable)."""
    path = home / "prefect.db"
    tables = ("events", "event_resources", "flow_run", "task_run", "log")
    if not path.exists():
        return dict.fromkeys(tables, 0)
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        counts = {}
        for table in tables:
            try:
                counts[table] = db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            except sqlite3.Error:
                counts[table] = -1
        return counts
    finally:
        db.close()


def flow_runs(api: str, known: dict[str, dict[str, str]]) -> None:
    """Add the newest 200 flow runs (flow, state, message) to `known`, by id: runs Prefect's
    retention later deletes stay counted."""
    def post(path: str, body: dict[str, Any]) -> Any:
        request = Request(api + path, data=json.dumps(body).encode(), method="POST",
                          headers={"Content-Type": "application/json"})
        with urlopen(request, timeout=30) as response:
            return json.load(response)

    try:
        flows = {f["id"]: f["name"] for f in post("/flows/filter", {"limit": 50})}
        for run in post("/flow_runs/filter", {"limit": 200, "sort": "EXPECTED_START_TIME_DESC"}):
            state = run.get("state") or {}
            if state.get("type") not in FINAL:
                continue
            known[run["id"]] = {"flow": flows.get(run["flow_id"], "?"),
                                "state": state.get("name", "?"), "type": state.get("type", "?"),
                                "message": (state.get("message") or "")[:300]}
    except (URLError, OSError, ValueError):
        pass


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"soak: {what} not ready after {seconds:.0f} s")
        time.sleep(1)


def answers(url: str) -> bool:
    try:
        with urlopen(url, timeout=5) as response:
            return response.status == 200
    except (URLError, OSError):
        return False


def stop(proc: subprocess.Popen) -> None:
    """SIGINT first (`serve` stops its children on it), then SIGKILL to the group."""
    for sig, grace in ((signal.SIGINT, 60), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def environment(work: Path, source: Source, args: Any) -> dict[str, str]:
    env = {**os.environ, "EMBEDPIPE_HOME": str(work / "home"),
           "PREFECT_HOME": str(work / "prefect"), "EMBEDPIPE_MODEL_CACHE": str(work / "exports"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HF_HUB_OFFLINE": "1",
           "EMBEDPIPE_DEPLOY_INGEST_SOURCE": str(source.corpus_file),
           "EMBEDPIPE_DEPLOY_INGEST_CRON": f"*/{args.ingest_every} * * * *",
           "EMBEDPIPE_DEPLOY_MONITOR_SOURCE": str(source.batch_file),
           "EMBEDPIPE_DEPLOY_MONITOR_CRON": "* * * * *",
           "EMBEDPIPE_DEPLOY_GC_CRON": f"*/{args.gc_every} * * * *",
           "EMBEDPIPE_DEPLOY_GC_KEEP": "3",
           "EMBEDPIPE_RETRAIN__MIN_INTERVAL": str(args.cooldown_minutes * 60),
           # Prefect's retention of runs at the minimum it accepts, and of events the same,
           # checked every 5 minutes: its database should stop growing after the first hour.
           "PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD": "3660",
           "PREFECT_SERVER_EVENTS_RETENTION_PERIOD": "PT3660S",  # ISO 8601, not seconds
           "PREFECT_SERVER_SERVICES_DB_VACUUM_LOOP_SECONDS": "300"}
    env.pop("PREFECT_API_URL", None)
    return env


def embedpipe(env: dict[str, str], *args: str, timeout: float = 900) -> Any:
    """The JSON the command printed last, or {"stderr": …} when it printed none."""
    done = subprocess.run([str(BIN / "embedpipe"), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"stderr": done.stderr[-500:]}


def served(env: dict[str, str]) -> bool:
    listed = embedpipe(env, "trigger", "--list", "--json", timeout=60)
    return isinstance(listed, list) and "gc" in {row["short"] for row in listed}


def sample(minute: int, roots: list[subprocess.Popen], work: Path, env: dict[str, str],
           reader: Reader, since: float, runs: dict[str, dict[str, str]], api: str
           ) -> dict[str, Any]:
    flow_runs(api, runs)
    window = [r for r in reader.seen if r[0] >= since]
    latencies = [ms for _, _, ms, _ in window]
    return {"minute": minute, "time": round(time.time()), "load": os.getloadavg()[0],
            "processes": processes(roots),
            "disk_mb": {"warehouse": disk_mb(work / "wh"), "prefect_home": disk_mb(
                work / "prefect"), "exports": disk_mb(work / "exports"),
                "embedpipe_home": disk_mb(work / "home")},
            "lake": lake(work / "wh"), "prefect_rows": prefect_rows(work / "prefect"),
            "runs": dict(Counter(f"{r['flow']}:{r['state']}" for r in runs.values())),
            "requests": len(window), "request_errors": sum(not ok for *_, ok in window),
            "latency_ms": {"p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95)},
            "slow_requests": [[round(t - since, 1), page, round(ms)] for t, page, ms, _ in window
                              if ms > 250]}


def verdict(samples: list[dict[str, Any]], runs: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The goals: RSS at the end within 10% or 50 MB of the 15-minute value, no failed or
    crashed run, dashboard p95 under 500 ms in every minute."""
    base = next((s for s in samples if s["minute"] >= 15), samples[0])
    end = samples[-1]
    rss = {}
    for name, now in end["processes"]["by_role"].items():
        then = base["processes"]["by_role"].get(name)
        if then:
            grew = now["rss_mb"] - then["rss_mb"]
            rss[name] = {"at_15_min": then["rss_mb"], "at_end": now["rss_mb"],
                         "held": grew <= max(0.10 * then["rss_mb"], 50.0)}
    failed = [r for r in runs.values() if r["type"] in ("FAILED", "CRASHED")]
    p95 = [s["latency_ms"]["p95"] for s in samples if s["latency_ms"]["p95"] is not None]
    stuck = max((len(s["processes"]["stuck_runs_rss_mb"]) for s in samples), default=0)
    return {"rss": rss, "rss_held": all(r["held"] for r in rss.values()),
            "stuck_run_processes_max": stuck,
            "failed_runs": failed, "no_failed_runs": not failed,
            "dashboard_p95_max_ms": max(p95, default=None),
            "dashboard_p95_held": bool(p95) and max(p95) < 500}


def chart(samples: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s["minute"] for s in samples]
    fig, axes = plt.subplots(2, 4, figsize=(20, 8), constrained_layout=True)
    names = sorted({n for s in samples for n in s["processes"]["by_role"]})

    def series(ax: Any, title: str, lines: dict[str, list[Any]]) -> None:
        for label, values in lines.items():
            ax.plot(minutes, values, label=label)
        ax.set_title(title)
        ax.set_xlabel("minutes")
        ax.legend(fontsize=7)

    series(axes[0][0], "RSS (MB)", {n: [s["processes"]["by_role"].get(n, {}).get("rss_mb")
                                        for s in samples] for n in names})
    series(axes[0][1], "open files", {n: [s["processes"]["by_role"].get(n, {}).get("fds")
                                          for s in samples] for n in names})
    series(axes[0][2], "disk (MB)", {k: [s["disk_mb"][k] for s in samples]
                                     for k in samples[0]["disk_mb"]})
    series(axes[1][0], "lake", {k: [s["lake"][k] for s in samples] for k in samples[0]["lake"]})
    series(axes[1][1], "dashboard + search latency (ms)", {
        q: [s["latency_ms"][q] for s in samples] for q in ("p50", "p95")})
    states = sorted({k for s in samples for k in s["runs"]})
    series(axes[1][2], "flow runs by final state (cumulative)", {
        k: [s["runs"].get(k, 0) for s in samples] for k in states})
    series(axes[0][3], "Prefect database rows", {
        k: [s.get("prefect_rows", {}).get(k) for s in samples]
        for k in samples[-1].get("prefect_rows", {})})
    series(axes[1][3], "threads", {n: [s["processes"]["by_role"].get(n, {}).get("threads")
                                       for s in samples] for n in names})
    fig.suptitle("embedpipe serve soak: every series per minute")
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = bench_parser(__doc__, minutes=120, ingest_every=5, gc_every=15, episode_every=20,
                          cooldown_minutes=15, docs=300, sample_seconds=60)
    parser.add_argument("--keep-work", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="embedpipe-soak-"))
    source = Source(work, args.docs, args.episode_every)
    env = environment(work, source, args)
    port, dash_port = free_port(), free_port()
    api = f"http://127.0.0.1:{port}/api"
    env_api = {**env, "PREFECT_API_URL": api}
    print(f"soak: work directory {work}; Prefect UI http://127.0.0.1:{port}/", flush=True)
    serve = start([str(BIN / "embedpipe"), "serve", "--port", str(port), "--warehouse",
                   str(work / "wh")], env, work / "serve.log")
    roots = [serve]
    reader = Reader(f"http://127.0.0.1:{dash_port}",
                    [" ".join(d["text"].split()[:8]) for d in source.corpus])
    samples: list[dict[str, Any]] = []
    runs: dict[str, dict[str, str]] = {}
    try:
        wait_for(lambda: served(env_api), 240, "served deployments")
        seeded = embedpipe(env_api, "trigger", "ingest", "--wait", "--json")
        print(f"soak: first ingest {seeded.get('state_name')}: {seeded.get('message')}",
              flush=True)
        dashboard = start([str(BIN / "embedpipe"), "dashboard", "--port", str(dash_port),
                           "--warehouse", str(work / "wh")], env, work / "dashboard.log")
        roots.append(dashboard)
        wait_for(lambda: answers(f"http://127.0.0.1:{dash_port}/metrics"), 120, "dashboard")
        reader.start()
        started = time.monotonic()
        # Ctrl-C or `kill` ends the soak early; what was sampled is still written.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for minute in range(args.minutes + 1):
            # Wake 30 s into each wall-clock minute: the next minute's batch (and, before an
            # ingest, the corpus) are in place half a minute before the schedules fire.
            time.sleep(max(0.0, 60 - (time.time() - 30) % 60) if args.sample_seconds == 60
                       else args.sample_seconds)
            upcoming = int(time.time() // 60) + 1
            drifting = source.batch(minute + 1)
            if upcoming % args.ingest_every == 0:
                source.change_corpus()
            since = time.time() - args.sample_seconds
            samples.append(sample(minute, roots, work, env, reader, since, runs, api))
            last = samples[-1]
            print(f"soak: {minute:3d} min  load {last['load']:.2f}  alive "
                  f"{last['processes']['alive']} (stuck "
                  f"{len(last['processes']['stuck_runs_rss_mb'])})  RSS " + " ".join(
                      f"{n} {p['rss_mb']:.0f}" for n, p in last["processes"]["by_role"].items())
                  + f"  wh {last['disk_mb']['warehouse']:.0f} MB  prefect "
                  f"{last['disk_mb']['prefect_home']:.0f} MB  p95 {last['latency_ms']['p95']} ms"
                  f"  runs {sum(last['runs'].values())}{'  (drift batch)' if drifting else ''}",
                  flush=True)
            if time.monotonic() - started > args.minutes * 60:
                break
    except KeyboardInterrupt:
        print(f"soak: stopped early, after {len(samples)} samples", flush=True)
    finally:
        reader.stop.set()
        for proc in reversed(roots):
            stop(proc)
    time.sleep(2)
    leftovers = processes(roots)["alive"]
    result = {"settings": vars(args), "sampled_minutes": len(samples), "work": str(work),
              "verdict": verdict(samples, runs),
              "processes_alive_after_stop": leftovers,
              "runs_by_flow_and_state": dict(Counter(f"{r['flow']}:{r['state']}"
                                                     for r in runs.values())),
              "samples": samples}
    write_result("soak", result)
    chart(samples, RESULTS / "soak.png")
    print(json.dumps({k: result["verdict"][k] for k in ("rss_held", "stuck_run_processes_max",
                                                         "no_failed_runs",
                                                         "dashboard_p95_max_ms",
                                                         "dashboard_p95_held")}))
    if not args.keep_work:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
