"""Benchmark: the pipeline's own path for one partition against the simplest correct loop, on one demo server.

    python benchmarks/extract.py                      # N = 100,000, 300,000 and 1,000,000 activities, every dataset
    python benchmarks/extract.py --activities 200000 --datasets contactActivities orders

The demo account's server runs in its own process on loopback with no pacing. Every measurement runs in a fresh
child process, so its peak RSS (ru_maxrss from wait4) is its own. For each dataset it measures:

- pipeline: fetch, shape and write to DuckDB through the project's own code (extract + DuckDBWarehouse), no Dagster;
- floor: requests, json.loads, one polars frame, one DuckDB insert (the simplest correct loop);
- dagster: the same asset materialized by Dagster (the run overhead, reported separately);

and the request count against the minimum the paging allows. `--paced` adds the pacing check: 1 request a second
against a server with injected latency, where wall time should be close to requests x 1 s. Prints a table and
writes JSON (default benchmarks/results/latest.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

DAY = date(2026, 11, 20)
ACCOUNT = {"contacts": 100_000, "orders-per-day": 5_000, "events-per-day": 50_000, "devices": 20_000}
CURSOR_DEPTH = 50_000
V1_PAGE, ACTIVITY_PAGE = 500, 1000
RESULTS = Path(__file__).resolve().parent / "results"


# --- workers (each runs in its own child process) ------------------------------------------------------------


def worker_pipeline(url: str, dataset: str, workdir: Path) -> dict:
    from esputnik_assets.source.client import EsputnikClient
    from esputnik_assets.source.extract import extract
    from esputnik_assets.source.paging import ActivityWindowing
    from esputnik_assets.source.windows import LocalWindow
    from esputnik_assets.specs import DATASETS
    from esputnik_assets.warehouse.base import DayGuard, day_bounds
    from esputnik_assets.warehouse.duckdb import DuckDBWarehouse
    from esputnik_assets.contracts import load_contracts
    from esputnik_assets.specs import WriteMode

    spec = DATASETS[dataset]
    window = LocalWindow.for_days(DAY, DAY + timedelta(days=1))
    client = EsputnikClient(url, "demo-key", requests_per_second=0)
    warehouse = DuckDBWarehouse(str(workdir / "pipeline.duckdb"))
    started = time.perf_counter()
    [spooled] = extract(
        client, spec.source, [spec], window=window if spec.source.date_window else None, timezone="UTC",
        spool_dir=workdir, windowing=ActivityWindowing(window_row_limit=CURSOR_DEPTH),
    )  # fmt: skip
    contract = load_contracts()[dataset]
    if spec.write_mode is WriteMode.REPLACE_DAYS:
        confirmed = DayGuard(allow_empty_days=True, allow_smaller_days=True)
        result = warehouse.replace_days(spec, contract, spooled, day_bounds(window, "UTC"), confirmed)
    else:
        result = warehouse.upsert(spec, contract, spooled)
    seconds = time.perf_counter() - started
    spooled.discard()
    return {"rows": result.rows_written, "seconds": seconds, "requests": client.stats.requests,
            "windows": spooled.read["windows"]}  # fmt: skip


def worker_floor(url: str, dataset: str, workdir: Path) -> dict:
    """The simplest correct loop: page, json.loads, one polars frame, one DuckDB insert."""
    import duckdb
    import polars as pl
    import requests

    from esputnik_assets.specs import DATASETS

    source = DATASETS[dataset].source
    session = requests.Session()
    session.auth = ("", "demo-key")
    rows: list[dict] = []
    requests_made = 0
    started = time.perf_counter()
    if source.name == "contactActivities":  # hourly windows stay under the cursor's depth
        for hour in range(24):
            frm, to = f"{DAY}T{hour:02d}:00:00", f"{DAY}T{hour:02d}:59:59"
            cursor = None
            while True:
                params = {"dateFrom": frm, "dateTo": to if hour < 23 else f"{DAY + timedelta(days=1)}T00:00:00",
                          "maxrows": ACTIVITY_PAGE, **({"offset": cursor} if cursor else {})}  # fmt: skip
                page = json.loads(session.get(f"{url}{source.path}", params=params, timeout=60).content)
                requests_made += 1
                rows.extend(page)
                if len(page) < ACTIVITY_PAGE:
                    break
                cursor = page[-1]["offset"]
    else:
        paths = [source.path.replace("{type}", v) for v, _ in source.variants] or [source.path]
        dated = {"dateFrom": f"{DAY}T00:00:00", "dateTo": f"{DAY + timedelta(days=1)}T00:00:00"} if source.date_window else {}
        for path in paths:
            start = 1
            while True:
                params = {**dated, "startindex": start, "maxrows": V1_PAGE}
                page = json.loads(session.get(f"{url}{path}", params=params, timeout=60).content)
                requests_made += 1
                rows.extend(page)
                if len(page) < V1_PAGE:
                    break
                start += V1_PAGE
    frame = pl.DataFrame(rows, infer_schema_length=None)
    with duckdb.connect(str(workdir / "floor.duckdb")) as con:
        con.register("frame", frame.to_arrow())
        con.execute("CREATE TABLE t AS SELECT * FROM frame")
    return {"rows": frame.height, "seconds": time.perf_counter() - started, "requests": requests_made, "windows": 0}


def worker_dagster(url: str, dataset: str, workdir: Path) -> dict:
    import dagster as dg

    from esputnik_assets.assets.raw import build_raw_assets
    from esputnik_assets.keys import IO_MANAGER_KEY
    from esputnik_assets.source.resource import EsputnikResource
    from esputnik_assets.warehouse.io_manager import DuckDBIOManager

    partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01")
    assets = build_raw_assets([dataset], partitions, dg.BackfillPolicy.multi_run(31))
    resources = {
        "esputnik": EsputnikResource(api_key="demo-key", api_url=url, max_requests_per_second=0),
        IO_MANAGER_KEY: DuckDBIOManager(path=str(workdir / "dagster.duckdb")),
    }
    started = time.perf_counter()
    result = dg.materialize(assets, resources=resources, partition_key=str(DAY), instance=dg.DagsterInstance.ephemeral())
    seconds = time.perf_counter() - started
    [event] = result.get_asset_materialization_events()
    meta = event.event_specific_data.materialization.metadata
    return {"rows": meta["rows_written"].value, "seconds": seconds, "requests": meta["http_requests"].value, "windows": 0}


WORKERS = {"pipeline": worker_pipeline, "floor": worker_floor, "dagster": worker_dagster}


def run_worker(kind: str, url: str, dataset: str) -> dict:
    """One measurement in a fresh process; peak RSS from the kernel's accounting of that process."""
    with tempfile.TemporaryDirectory(prefix="esputnik-bench-") as workdir:
        out = Path(workdir) / "result.json"
        child = subprocess.Popen(
            [sys.executable, __file__, "--worker", kind, "--url", url, "--dataset", dataset, "--workdir", workdir,
             "--result", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise RuntimeError(f"{kind} {dataset} failed:\n{child.stderr.read().decode()[-3000:]}")
        result = json.loads(out.read_text())
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    result["rows_per_second"] = result["rows"] / result["seconds"] if result["seconds"] else 0.0
    return result


# --- the demo server in its own process --------------------------------------------------------------------------


class Server:
    def __init__(self, activities: int, *, latency: float = 0.0) -> None:
        args = [sys.executable, "-m", "esputnik_assets.demo.cli", "--port", "0", "--activities-per-day", str(activities),
                "--activity-cursor-depth", str(CURSOR_DEPTH), "--latency", str(latency)]  # fmt: skip
        for knob, value in ACCOUNT.items():
            args += [f"--{knob}", str(value)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        self.url = line.strip().rsplit(" ", 1)[-1]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def minimum_requests(dataset: str, rows: int) -> int:
    """What the paging allows at the least: the full pages, plus one closing (short or empty) page per window.

    A window is one day of activities, one dated read, one full scan, or one message type (whose own row count,
    from the demo account's truth, decides its pages).
    """
    from esputnik_assets.demo import DemoAccount
    from esputnik_assets.specs import DATASETS

    source = DATASETS[dataset].source
    if source.name == "contactActivities":
        return rows // ACTIVITY_PAGE + 1
    if source.variants:
        account = DemoAccount(**{k.replace("-", "_"): v for k, v in ACCOUNT.items()})
        per_type = account.rows("messages").group_by("type").len().get_column("len")
        return sum(n // V1_PAGE + 1 for n in per_type) + len(source.variants) - per_type.len()
    return rows // V1_PAGE + 1


def measure(datasets: list[str], activities: list[int], with_dagster: bool) -> list[dict]:
    rows: list[dict] = []
    for n in activities:
        server = Server(n)
        try:
            todo = datasets if n == activities[0] else [d for d in datasets if d == "contactActivities"]
            for dataset in todo:
                run_worker("pipeline", server.url, dataset)  # warm the server's day cache: both sides pay the same
                pipeline = run_worker("pipeline", server.url, dataset)
                floor = run_worker("floor", server.url, dataset)
                dagster = run_worker("dagster", server.url, dataset) if with_dagster else None
                minimum = minimum_requests(dataset, pipeline["rows"])
                row = {
                    "dataset": dataset, "activities_per_day": n, "rows": pipeline["rows"],
                    "pipeline": pipeline, "floor": floor, "dagster": dagster,
                    "throughput_ratio": pipeline["rows_per_second"] / floor["rows_per_second"],
                    "requests": pipeline["requests"], "minimum_requests": minimum,
                    "requests_over_minimum": pipeline["requests"] / minimum - 1,
                    "dagster_overhead_seconds": dagster["seconds"] - pipeline["seconds"] if dagster else None,
                }  # fmt: skip
                rows.append(row)
                print_row(row)
        finally:
            server.close()
    return rows


def paced(activities: int, latency: float, concurrency: int, rate: float) -> dict:
    """A paced account whose answers come `latency` late: concurrent windows keep wall time near requests / rate."""
    server = Server(activities, latency=latency)
    try:
        code = (
            "import json, time; from datetime import date, timedelta\n"
            "from esputnik_assets.source.client import EsputnikClient\n"
            "from esputnik_assets.source.paging import ActivityWindowing, ReadStats, read_activity\n"
            "from esputnik_assets.source.windows import LocalWindow\n"
            "from esputnik_assets.specs import ACTIVITY\n"
            f"client = EsputnikClient({server.url!r}, 'demo-key', requests_per_second={rate})\n"
            f"day = date.fromisoformat({str(DAY)!r}); window = LocalWindow.for_days(day, day + timedelta(days=1))\n"
            f"windowing = ActivityWindowing(concurrency={concurrency})\n"
            "started = time.perf_counter()\n"
            "pages = read_activity(client, 'contactActivities', ACTIVITY.path, ACTIVITY.answer_schema, window, windowing)\n"
            "rows = sum(page.height for page in pages)\n"
            "print(json.dumps({'seconds': time.perf_counter() - started, 'requests': client.stats.requests, 'rows': rows}))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    finally:
        server.close()
    result = json.loads(out)
    ideal = result["requests"] / rate
    result |= {"latency": latency, "concurrency": concurrency, "rate": rate, "wall_over_requests_per_rate": result["seconds"] / ideal}
    print(
        f"paced {rate:g} req/s, answers {latency}s late, {concurrency} windows at once: {result['requests']} requests "
        f"in {result['seconds']:.1f} s = {result['wall_over_requests_per_rate']:.3f} x (requests / rate = {ideal:.1f} s)"
    )
    return result


HEADER = (
    f"{'dataset':<18} {'N act/day':>9} {'rows':>9} | {'pipe s':>7} {'pipe r/s':>9} {'pipe MiB':>8} | "
    f"{'floor s':>7} {'floor r/s':>9} {'floor MiB':>9} | {'ratio':>5} | {'req':>5} {'min':>5} {'over':>6} | {'dagster+s':>9}"
)


def print_row(row: dict) -> None:
    p, f, d = row["pipeline"], row["floor"], row["dagster"]
    overhead = f"{row['dagster_overhead_seconds']:9.2f}" if d else f"{'-':>9}"
    print(
        f"{row['dataset']:<18} {row['activities_per_day']:>9,} {row['rows']:>9,} | {p['seconds']:7.2f} "
        f"{p['rows_per_second']:9,.0f} {p['peak_rss_mib']:8.0f} | {f['seconds']:7.2f} {f['rows_per_second']:9,.0f} "
        f"{f['peak_rss_mib']:9.0f} | {row['throughput_ratio']:5.2f} | {row['requests']:>5} {row['minimum_requests']:>5} "
        f"{row['requests_over_minimum']:6.1%} | {overhead}",
        flush=True,
    )


def main() -> None:
    from esputnik_assets.contracts import DATASET_NAMES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activities", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--datasets", nargs="+", default=[d for d in DATASET_NAMES if d != "orderItems"])
    parser.add_argument("--no-dagster", action="store_true", help="skip the Dagster-run overhead measurement")
    parser.add_argument("--paced", action="store_true", help="also check wall time at 1 request/s with latency")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.result.write_text(json.dumps(WORKERS[args.worker](args.url, args.dataset, args.workdir)))
        return

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(HEADER)
    rows = measure(args.datasets, sorted(args.activities), not args.no_dagster)
    report = {
        "machine": {"arch": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "account": ACCOUNT | {"cursor_depth": CURSOR_DEPTH},
        "results": rows,
        "paced": [paced(40_000, 2.5, 4, 1.0), paced(100_000, 0.5, 8, 10.0)] if args.paced else [],
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
