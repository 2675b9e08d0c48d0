"""Benchmark: what a Dagster run of this project costs beyond its work, side by side with Dagster's own trivial run.

    python benchmarks/run_overhead.py                                # the current tree, 3 repetitions
    python benchmarks/run_overhead.py --commit fb3db7a               # that commit ("before") against the current tree
    python benchmarks/run_overhead.py --tree old=/path/a --tree new=/path/b --parts trivial day imports

Every tree runs with this interpreter (sys.executable) and `PYTHONPATH=<tree>`, so its code is the one imported,
by the CLI and by Dagster's step subprocesses alike; `--commit REV` checks REV out (labelled "before") into a
throwaway `git worktree` and removes it afterwards. Each measured run goes through the CLI in a fresh process
with a fresh DAGSTER_HOME and a fresh DuckDB file, against the demo account served by its own process on loopback
(no pacing). Parts:

- trivial: Dagster's own trivial run, one `@dg.asset` returning 1 (`dagster asset materialize`);
- day: a near-empty day, `esputnik/broadcasts` for one partition (a single request); ratio = day / trivial;
- big-day: `esputnik/contactActivities` for one day of an account sized to 300,000 activities (peak RSS);
- backfill: every asset, raw and metric, for 3 days in one run (`dagster job execute -j esputnik_daily` with the
  partition-range tags, what a backfill under the multi-run policy and the daily schedule launch); ratio = wall
  time / the sum of its steps' own work (STEP_START to STEP_SUCCESS in the run's event log);
- day-forkserver, backfill-forkserver: the same runs with Dagster's default executor configured for the
  `forkserver` start method and the project's definitions module preloaded; only for trees before the project's
  own executor (`esputnik_assets/executor.py`), which forks a run's steps that way by default and works a one-step
  run in the CLI process;
- imports: in fresh processes, `-X importtime` of loading the definitions (self time by top-level package) and
  the RSS after each import of a fixed sequence (dagster, polars, duckdb, sqlglot, sklearn, google.cloud.bigquery,
  the demo, our definitions).

Runs are interleaved (A, B, A, B ...) and each ratio pairs runs taken moments apart, so machine load moves both
sides alike; the table gives the median and the min of N repetitions. Memory is each process's high-water mark
(VmHWM), read from /proc every 50 ms for the CLI process and each process under it: the CLI (run orchestration)
and the largest step process are reported apart; `tree max` is the kernel's own maximum over the whole tree
(ru_maxrss from wait4), a check on the polling; `work_peak_mib` is the larger of the two (the process that
did the work, also when a one-step run works in the CLI process). Prints a side-by-side table and writes JSON
(default benchmarks/results/run-overhead-latest.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from base64 import b64encode
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DAY = date(2026, 11, 20)
BACKFILL_DAYS = 3
BIG_ACCOUNT = {"contacts": 100_000, "orders-per-day": 5_000, "events-per-day": 50_000, "devices": 20_000}
POLL_SECONDS = 0.05
NEUTRAL = Path(tempfile.gettempdir())  # the working folder of every child: `python -c` puts it first on sys.path
TRIVIAL_MODULE = '''"""Dagster's own trivial run: one asset returning 1."""
import dagster as dg


@dg.asset
def trivial() -> int:
    return 1


defs = dg.Definitions(assets=[trivial])
'''
FORKSERVER_PRELOAD = ["dagster", "esputnik_assets.definitions"]
# The code location's own entry (environment -> Definitions), the same call in every tree whatever its signature.
BUILD_DEFINITIONS = "import os; os.environ['ESPUTNIK_DEMO'] = 'true'; esputnik_assets.definitions.defs.load_fn()"
IMPORT_STAGES = [
    ("dagster", "import dagster"),
    ("+ polars", "import polars"),
    ("+ duckdb", "import duckdb"),
    ("+ requests", "import requests"),
    ("+ sqlglot", "import sqlglot"),
    ("+ sklearn", "import sklearn.linear_model"),
    ("+ google.cloud.bigquery", "import google.cloud.bigquery"),
    ("+ dagster_gcp", "import dagster_gcp"),
    ("+ the demo", "import esputnik_assets.demo.server"),
    ("+ our definitions (import)", "import esputnik_assets.definitions"),
    ("+ our definitions (built)", BUILD_DEFINITIONS),
]


# --- the trees ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    label: str
    path: Path
    commit: str


def commit_of(path: Path) -> str:
    found = subprocess.run(["git", "-C", str(path), "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return (found.stdout.strip() or "unknown") + ("+dirty" if dirty else "")


def throwaway_worktree(stack: ExitStack, revision: str) -> Tree:
    """REV checked out into a temporary `git worktree`, removed when the benchmark ends."""
    folder = Path(tempfile.mkdtemp(prefix="esputnik-bench-tree-"))
    repo = str(HERE.parent)
    subprocess.run(["git", "-C", repo, "worktree", "add", "--detach", str(folder), revision], check=True,
                   capture_output=True)  # fmt: skip
    stack.callback(subprocess.run, ["git", "-C", repo, "worktree", "remove", "--force", str(folder)], check=False)
    stack.callback(shutil.rmtree, folder, ignore_errors=True)
    return Tree("before", folder, commit_of(folder))


def tree_env(tree: Tree, extra_path: Path | None = None, **variables: str) -> dict[str, str]:
    """The tree's code first on the path; no ESPUTNIK_* or DAGSTER_* setting of the caller leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESPUTNIK_", "DAGSTER_", "BIGQUERY_", "PYTHON"))}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (tree.path, extra_path) if p)
    return env | variables


def check_imports_from(tree: Tree) -> None:
    """The tree's own esputnik_assets is the one imported, not an installed copy."""
    code = "import esputnik_assets; print(esputnik_assets.__file__)"
    probe = subprocess.run([sys.executable, "-c", code], env=tree_env(tree), cwd=NEUTRAL, capture_output=True,
                           text=True, check=True).stdout.strip()  # fmt: skip
    if not Path(probe).resolve().is_relative_to(tree.path.resolve()):
        raise SystemExit(f"tree {tree.label}: esputnik_assets is imported from {probe}, not from {tree.path}")


# --- one measured process tree -------------------------------------------------------------------------------------


def read_proc(pid: int) -> tuple[int, int, int] | None:
    """(parent pid, VmRSS KiB, VmHWM KiB) of a live process, None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    kib = lambda name: int(fields.get(name, "0 kB").split()[0])  # noqa: E731 (zombies have no Vm lines)
    return int(fields["PPid"]), kib("VmRSS"), kib("VmHWM")


def process_kind(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "resource_tracker" in cmdline:
        return "helper"
    if "forkserver" in cmdline:
        return "forkserver"  # the server and the steps forked from it; told apart by their parent below
    return "step" if "multiprocessing" in cmdline else "other"


def run_measured(argv: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Run argv to its end; wall time and the high-water RSS of it and each process under it, polled from /proc."""
    log = cwd / "cli.log"
    started = time.time()
    with log.open("wb") as sink:
        child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)
    seen: dict[int, dict] = {}  # pid -> {parent, kind, hwm}
    tree_rss_peak = 0
    while True:
        waited, status, usage = os.wait4(child.pid, os.WNOHANG)
        if waited:
            break
        parents = {pid: info for pid in (int(e.name) for e in os.scandir("/proc") if e.name.isdigit())
                   if (info := read_proc(pid))}  # fmt: skip
        members, grew = {child.pid}, True
        while grew:  # the CLI process and every process under it
            below = {pid for pid, (parent, _, _) in parents.items() if parent in members} - members
            members |= below
            grew = bool(below)
        total = 0
        for pid in members:
            parent, rss, hwm = parents.get(pid, (0, 0, 0))
            record = seen.setdefault(pid, {"parent": parent, "kind": None, "hwm": 0})
            if record["kind"] in (None, "other") and pid != child.pid:  # "other" until a forked child has exec'd
                record["kind"] = process_kind(pid)
            record["hwm"] = max(record["hwm"], hwm, rss)
            total += rss
        tree_rss_peak = max(tree_rss_peak, total)
        time.sleep(POLL_SECONDS)
    wall = time.time() - started
    exit_code = os.waitstatus_to_exitcode(status)
    forkservers = {pid for pid, r in seen.items() if r["kind"] == "forkserver" and r["parent"] == child.pid}
    steps = [r["hwm"] for pid, r in seen.items()
             if r["kind"] == "step" or (r["kind"] == "forkserver" and pid not in forkservers)]  # fmt: skip
    mib = lambda kib: round(kib / 1024, 1)  # noqa: E731
    return {
        "exit_code": exit_code, "started": started, "wall_seconds": round(wall, 2),
        "cli_peak_mib": mib(seen.get(child.pid, {"hwm": 0})["hwm"]),
        "step_peak_mib": mib(max(steps, default=0)), "step_processes": len(steps),
        "work_peak_mib": mib(max([*steps, seen.get(child.pid, {"hwm": 0})["hwm"]])),  # a one-step run works in the CLI
        "forkserver_peak_mib": mib(max((seen[p]["hwm"] for p in forkservers), default=0)) if forkservers else None,
        "tree_rss_sum_peak_mib": mib(tree_rss_peak), "tree_max_mib": mib(usage.ru_maxrss),
        "log_tail": log.read_text(errors="replace")[-3000:],
    }  # fmt: skip


# --- the run's own account of its time (the event log in the DAGSTER_HOME) -----------------------------------


def run_events(dagster_home: Path) -> list[dict]:
    """Every event of the home's one run, in order: type, step key, time (seconds since the epoch)."""
    import sqlite3

    [db] = [p for p in (dagster_home / "history" / "runs").glob("*.db") if p.name != "index.db"]
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT dagster_event_type, step_key, event FROM event_logs ORDER BY id").fetchall()
    return [{"type": t, "step": s, "at": json.loads(e)["timestamp"]} for t, s, e in rows]


def phases(events: list[dict], started: float, wall: float) -> dict:
    """Where the run's wall time went, from its events: CLI start-up, each step's launch, load, work, and the end."""
    first = lambda kind: next((e["at"] for e in events if e["type"] == kind), None)  # noqa: E731
    steps: dict[str, dict] = {}
    for e in events:
        if e["step"] and e["type"] in ("STEP_WORKER_STARTING", "STEP_WORKER_STARTED", "RESOURCE_INIT_STARTED",
                                       "STEP_START", "STEP_SUCCESS", "STEP_FAILURE"):  # fmt: skip
            steps.setdefault(e["step"], {}).setdefault(e["type"], e["at"])
    per_step = {}
    for key, at in steps.items():
        end = at.get("STEP_SUCCESS", at.get("STEP_FAILURE"))
        loaded = at.get("RESOURCE_INIT_STARTED", at.get("STEP_START"))
        span = lambda a, b: round(b - a, 3) if a is not None and b is not None else None  # noqa: E731
        per_step[key] = {
            "launch": span(at.get("STEP_WORKER_STARTING"), at.get("STEP_WORKER_STARTED")),  # interpreter + dagster
            "load": span(at.get("STEP_WORKER_STARTED"), loaded),  # the code location's definitions + plan
            "resources": span(loaded, at.get("STEP_START")),
            "work": span(at.get("STEP_START"), end),
        }
    total = lambda part: round(sum(s[part] or 0 for s in per_step.values()), 2)  # noqa: E731
    run_start, run_end = first("PIPELINE_START"), first("PIPELINE_SUCCESS") or first("PIPELINE_FAILURE")
    return {
        "success": first("PIPELINE_SUCCESS") is not None,
        "cli_startup": round(run_start - started, 2) if run_start else None,  # imports, definitions, planning
        "after_run": round(started + wall - run_end, 2) if run_end else None,
        "steps": len(per_step),
        "sum_launch": total("launch"), "sum_load": total("load"), "sum_resources": total("resources"),
        "sum_work": total("work"), "per_step": per_step,
    }  # fmt: skip


# --- the demo account, served by its own process ----------------------------------------------------------------


class DemoServer:
    """esputnik-sandbox from the benchmark's own tree, on a free loopback port."""

    def __init__(self, folder: Path, activities: int | None = None) -> None:
        ready = folder / "ready.json"
        args = [sys.executable, "-m", "esputnik_assets.demo.cli", "--port", "0", "--ready-file", str(ready)]
        if activities:
            args += ["--activities-per-day", str(activities)]
            for knob, value in BIG_ACCOUNT.items():
                args += [f"--{knob}", str(value)]
        own_tree = Tree("bench", HERE.parent, "")
        self.process = subprocess.Popen(args, env=tree_env(own_tree), cwd=NEUTRAL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the demo server did not start")
            time.sleep(0.1)
        self.url = json.loads(ready.read_text())["url"]

    def warm(self, day: date) -> None:
        """Build the day's activities before anything is timed (the server caches a day once built)."""
        query = f"dateFrom={day}T00:00:00&dateTo={day}T00:59:59&maxrows=1"
        request = urllib.request.Request(f"{self.url}/v2/contacts/activity?{query}")
        request.add_header("Authorization", "Basic " + b64encode(b":demo-key").decode())
        urllib.request.urlopen(request, timeout=600).read()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


# --- the parts ---------------------------------------------------------------------------------------------------


def forkserver_config() -> str:
    start = {"forkserver": {"preload_modules": FORKSERVER_PRELOAD}}
    return json.dumps({"execution": {"config": {"multiprocess": {"start_method": start}}}})


def cli_run(tree: Tree, part: str, servers: dict[str, DemoServer], scratch: Path) -> dict:
    """One measured CLI run of a part, in fresh folders; its figures and its phases from the run's own events."""
    folder = Path(tempfile.mkdtemp(prefix=f"{part}-", dir=scratch))
    home = folder / "dagster_home"
    home.mkdir()
    cli = [sys.executable, "-m", "dagster"]
    if part == "trivial":
        (folder / "trivial_defs.py").write_text(TRIVIAL_MODULE)
        argv, env = cli + ["asset", "materialize", "-m", "trivial_defs", "--select", "trivial"], tree_env(tree, folder)
    else:
        server = servers["big" if part == "big-day" else "default"]
        env = tree_env(
            tree, ESPUTNIK_API_URL=server.url, ESPUTNIK_API_KEY="demo-key", ESPUTNIK_MAX_REQUESTS_PER_SECOND="0",
            ESPUTNIK_DUCKDB_PATH=str(folder / "warehouse.duckdb"),
        )
        if part.startswith("backfill"):
            first = DAY - timedelta(days=BACKFILL_DAYS - 1)
            tags = {"dagster/asset_partition_range_start": str(first), "dagster/asset_partition_range_end": str(DAY)}
            argv = cli + ["job", "execute", "-m", "esputnik_assets", "-j", "esputnik_daily", "--tags", json.dumps(tags)]
        else:
            selected = "esputnik/contactActivities" if part == "big-day" else "esputnik/broadcasts"
            argv = cli + ["asset", "materialize", "-m", "esputnik_assets", "--select", selected]
            argv += ["--partition", str(DAY)]
        if part.endswith("-forkserver"):  # `-c` takes a YAML file, and JSON is YAML; `job execute` has no --config-json
            (folder / "forkserver.json").write_text(forkserver_config())
            argv += ["-c", str(folder / "forkserver.json")]
    env["DAGSTER_HOME"] = str(home)
    measured = run_measured(argv, env, folder)
    if not measured["exit_code"]:
        measured |= phases(run_events(home), measured["started"], measured["wall_seconds"])
    if measured["exit_code"] or not measured["success"]:
        raise SystemExit(f"{tree.label} {part} failed (exit {measured['exit_code']}):\n{measured['log_tail']}")
    del measured["log_tail"], measured["started"]
    shutil.rmtree(folder, ignore_errors=True)
    return measured


def import_profile(tree: Tree) -> dict:
    """Fresh processes: RSS and seconds after each import stage, and -X importtime of loading our definitions."""
    stages = "import json, time\nrss = lambda: int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
    stages += "out = [('python', rss(), 0.0)]\n"
    for label, statement in IMPORT_STAGES:
        if statement == BUILD_DEFINITIONS:
            stages += "import esputnik_assets.definitions\n"
        stages += f"t = time.perf_counter(); {statement}; out.append(({label!r}, rss(), time.perf_counter() - t))\n"
    stages += "print(json.dumps(out))\n"
    staged = subprocess.run([sys.executable, "-c", stages], env=tree_env(tree), cwd=NEUTRAL, capture_output=True,
                            text=True)  # fmt: skip
    if staged.returncode:
        raise SystemExit(f"import stages failed in {tree.label}:\n{staged.stderr[-3000:]}")
    steps, previous = [], 0.0
    for label, rss, seconds in json.loads(staged.stdout):
        steps.append({"stage": label, "rss_mib": round(rss, 1), "added_mib": round(rss - previous, 1),
                      "seconds": round(seconds, 2)})  # fmt: skip
        previous = rss
    load = f"import esputnik_assets.definitions; {BUILD_DEFINITIONS}"
    timed = subprocess.run([sys.executable, "-X", "importtime", "-c", load], env=tree_env(tree), cwd=NEUTRAL,
                           capture_output=True, text=True)  # fmt: skip
    lines = [(len(m.group(3)) // 2, m.group(4), int(m.group(1)) / 1e6, int(m.group(2)) / 1e6)
             for m in re.finditer(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", timed.stderr)]  # fmt: skip
    by_package: dict[str, float] = {}
    for _, name, own, _ in lines:
        by_package[name.split(".")[0]] = by_package.get(name.split(".")[0], 0.0) + own
    edges: dict[str, float] = {}  # "our module -> the package it imports first": cumulative seconds
    ancestors: list[str] = []
    for depth, name, _, cumulative in reversed(lines):  # -X importtime lists a module after its imports
        ancestors[depth:] = [name]
        parent = ancestors[depth - 1] if depth else ""
        if parent.startswith("esputnik_assets") and not name.startswith("esputnik_assets"):
            edges[f"{parent} -> {name}"] = round(cumulative, 3)
    ranked = sorted(by_package.items(), key=lambda kv: -kv[1])
    return {
        "rss_by_import": steps,
        "importtime_modules": len(lines),
        "importtime_total_seconds": round(sum(by_package.values()), 2),
        "importtime_by_package_seconds": {k: round(v, 3) for k, v in ranked[:15]},
        "our_imports_cumulative_seconds": dict(sorted(edges.items(), key=lambda kv: -kv[1])[:15]),
    }


# --- the report --------------------------------------------------------------------------------------------------

FIGURES = {  # part -> figures worth a column
    "trivial": ("wall_seconds", "cli_startup", "sum_launch", "sum_work", "after_run", "cli_peak_mib", "step_peak_mib"),
    "day": ("wall_seconds", "cli_startup", "sum_launch", "sum_load", "sum_work", "after_run", "cli_peak_mib",
            "step_peak_mib", "work_peak_mib"),
    "day-forkserver": ("wall_seconds", "sum_launch", "sum_load", "sum_work", "cli_peak_mib", "step_peak_mib",
                       "forkserver_peak_mib"),
    "big-day": ("wall_seconds", "sum_work", "cli_peak_mib", "step_peak_mib", "work_peak_mib", "tree_max_mib"),
    "backfill": ("wall_seconds", "steps", "cli_startup", "sum_launch", "sum_load", "sum_work", "step_peak_mib",
                 "tree_rss_sum_peak_mib"),
    "backfill-forkserver": ("wall_seconds", "steps", "sum_launch", "sum_load", "sum_work", "step_peak_mib",
                            "forkserver_peak_mib", "tree_rss_sum_peak_mib"),
}  # fmt: skip
RATIOS = {  # name -> (numerator (part, figure), denominator (part, figure), target)
    "day / trivial (wall)": (("day", "wall_seconds"), ("trivial", "wall_seconds"), 1.6),
    "day work RSS / trivial step RSS": (("day", "work_peak_mib"), ("trivial", "step_peak_mib"), None),
    "day-forkserver / trivial (wall)": (("day-forkserver", "wall_seconds"), ("trivial", "wall_seconds"), 1.6),
    "backfill wall / sum of step work": (("backfill", "wall_seconds"), ("backfill", "sum_work"), 2.0),
    "backfill-forkserver wall / sum of step work": (
        ("backfill-forkserver", "wall_seconds"), ("backfill-forkserver", "sum_work"), 2.0),
}  # fmt: skip


def summarize(runs: list[dict]) -> dict:
    """Median and min of each figure over the repetitions; ratios taken within a repetition first."""
    out: dict[str, dict] = {}
    for part, names in FIGURES.items():
        taken = [r[part] for r in runs if part in r]
        if taken:
            out[part] = {
                n: {"median": round(statistics.median(t[n] for t in taken), 2), "min": min(t[n] for t in taken)}
                for n in names if all(t.get(n) is not None for t in taken)
            }
    for name, ((top_part, top), (bottom_part, bottom), target) in RATIOS.items():
        pairs = [r[top_part][top] / r[bottom_part][bottom] for r in runs if top_part in r and bottom_part in r]
        if pairs:
            out[name] = {"median": round(statistics.median(pairs), 2), "min": round(min(pairs), 2), "target": target}
    return out


def print_table(trees: list[Tree], summaries: dict[str, dict], repeat: int) -> None:
    width = 20
    print(f"\n{'median (min) of ' + str(repeat):<48}" + "".join(f"{t.label[:width]:>{width}}" for t in trees))
    print(f"{'commit':<48}" + "".join(f"{t.commit[:width]:>{width}}" for t in trees))
    rows = [(f"{part}: {name}", part, name) for part, names in FIGURES.items() for name in names]
    rows += [(f"{name}{f' (target <= {t})' if (t := RATIOS[name][2]) else ''}", name, None) for name in RATIOS]
    for title, key, name in rows:
        cells = []
        for tree in trees:
            found = summaries[tree.label].get(key, {})
            value = found.get(name) if name else found
            cells.append(f"{value['median']:g} ({value['min']:g})" if value else "-")
        if any(c != "-" for c in cells):
            print(f"{title:<48}" + "".join(f"{c:>{width}}" for c in cells))


def print_imports(profiles: dict[str, dict]) -> None:
    for label, profile in profiles.items():
        print(f"\n{label}: RSS by import (MiB, cumulative / added / seconds)")
        for stage in profile["rss_by_import"]:
            rss, added, seconds = stage["rss_mib"], stage["added_mib"], stage["seconds"]
            print(f"  {stage['stage']:<30} {rss:>7.1f} {added:>+7.1f} {seconds:>6.2f}")
        print(f"{label}: -X importtime of loading the definitions, {profile['importtime_modules']} modules, "
              f"{profile['importtime_total_seconds']} s; self time by package:")  # fmt: skip
        print("  " + ", ".join(f"{k} {v:.2f}" for k, v in profile["importtime_by_package_seconds"].items()))
        print(f"{label}: our modules' imports of other packages, cumulative seconds:")
        for edge, seconds in profile["our_imports_cumulative_seconds"].items():
            print(f"  {edge:<70} {seconds:6.2f}")


def write_report(args: argparse.Namespace, trees: list[Tree], runs: dict, profiles: dict, backfill_repeat: int) -> dict:
    """The JSON report of what was measured so far; returns the summaries."""
    summaries = {label: summarize(taken) for label, taken in runs.items()}
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {"arch": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_end": round(os.getloadavg()[0], 2)},
        "trees": [{"label": t.label, "commit": t.commit} for t in trees],
        "day": str(DAY), "backfill_days": BACKFILL_DAYS, "big_day_activities": args.big_activities,
        "repeat": args.repeat, "backfill_repeat": backfill_repeat, "forkserver_preload": FORKSERVER_PRELOAD,
        "summary": summaries, "runs": runs, "imports": profiles,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return summaries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH", help="a code tree to measure")
    parser.add_argument("--commit", metavar="REV", help="also measure REV, first, as 'before' (a throwaway worktree)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backfill-repeat", type=int, help="repetitions of the backfill parts (default: --repeat)")
    parser.add_argument("--parts", nargs="+", default=["trivial", "day", "day-forkserver", "big-day", "backfill",
                        "backfill-forkserver", "imports"], choices=[*FIGURES, "imports"])  # fmt: skip
    parser.add_argument("--big-activities", type=int, default=300_000, help="activities a day of the big-day account")
    parser.add_argument("--out", type=Path, default=RESULTS / "run-overhead-latest.json")
    args = parser.parse_args()
    parts = [p for p in FIGURES if p in args.parts]
    if any(p != "trivial" for p in parts) and "trivial" not in parts:
        parts.insert(0, "trivial")  # every ratio pairs with Dagster's own run of the same repetition
    backfill_repeat = args.backfill_repeat if args.backfill_repeat is not None else args.repeat

    with ExitStack() as stack:
        trees = [throwaway_worktree(stack, args.commit)] if args.commit else []
        for given in args.tree or ["current=" + str(HERE.parent)]:
            label, _, path = given.partition("=")
            trees.append(Tree(label, Path(path).resolve(), commit_of(Path(path))))
        for tree in trees:
            check_imports_from(tree)
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="esputnik-run-overhead-")))
        servers: dict[str, DemoServer] = {}
        if any(p != "trivial" for p in parts):
            servers["default"] = DemoServer(Path(tempfile.mkdtemp(dir=scratch)))
            stack.callback(servers["default"].close)
        if "big-day" in parts:
            servers["big"] = DemoServer(Path(tempfile.mkdtemp(dir=scratch)), args.big_activities)
            stack.callback(servers["big"].close)
            servers["big"].warm(DAY)
        labels = ", ".join(f"{t.label}={t.commit}" for t in trees)
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"load average {os.getloadavg()[0]:.1f}; trees: {labels}")  # fmt: skip
        profiles = {t.label: import_profile(t) for t in trees} if "imports" in args.parts else {}
        runs: dict[str, list[dict]] = {t.label: [] for t in trees}
        for repetition in range(max(args.repeat, backfill_repeat)):
            for tree in trees:
                taken: dict[str, dict] = {}
                for part in parts:
                    limit = backfill_repeat if part.startswith("backfill") else args.repeat
                    if repetition >= limit and part != "trivial":
                        continue
                    taken[part] = cli_run(tree, part, servers, scratch)
                    shown = [n for n in FIGURES[part] if taken[part].get(n) is not None]
                    figures = ", ".join(f"{n} {taken[part][n]}" for n in shown)
                    print(f"[{repetition + 1}] {tree.label:<12} {part:<20} {figures}", flush=True)
                runs[tree.label].append(taken)
                write_report(args, trees, runs, profiles, backfill_repeat)  # what was measured survives a later failure
    print_table(trees, write_report(args, trees, runs, profiles, backfill_repeat), args.repeat)
    print_imports(profiles)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
