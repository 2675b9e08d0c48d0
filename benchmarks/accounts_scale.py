"""Benchmark: N demo accounts through the production deployment of deploy/, timed from the run storage.

    python benchmarks/accounts_scale.py                         # 10 accounts, one day each, every dataset
    python benchmarks/accounts_scale.py --accounts 4 --days 2

The harness of the deployment test (esputnik_assets_tests/deployment.py): a throwaway PostgreSQL cluster, DAGSTER_HOME
with deploy/dagster.yaml unchanged (the queued run coordinator: 8 runs at once, one per account), the code location
over gRPC, `dagster-daemon` and `dagster-webserver`. N demo accounts in N time zones each get one backfill of the
same local days, launched through GraphQL with the account's tag, as an operator catching up N accounts would. From
the run storage and the event log: the wall time from the first launch to the last run's end, each run's time in
the queue and running, where a run's time went (to its first step, in steps, steps blocked by the account's pool),
the HTTP requests each read made, and the PostgreSQL instance database (most connections open at once, size and
event-log rows at the end). The demo account is served unpaced (its reads never wait for a request budget), so the
times are the deployment's own; a live account's reads add requests / max_requests_per_second (README, "Scale").
Prints a summary and writes JSON (default benchmarks/results/accounts-scale-latest.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the tree this script belongs to, and its test harness

from esputnik_assets.contracts import DATASET_NAMES  # noqa: E402
from esputnik_assets.keys import ACCOUNT_TAG  # noqa: E402
from esputnik_assets.specs import DATASETS  # noqa: E402
from esputnik_assets_tests.deployment import (  # noqa: E402
    DATABASE, PostgresCluster, deployment, instance_limits, max_parallel, postgres_cluster, postgres_unavailable,
)  # fmt: skip

ZONES = ("Europe/Kyiv", "America/New_York", "Europe/Warsaw", "Asia/Tokyo", "UTC", "America/Los_Angeles",
         "Europe/London", "Asia/Almaty", "Australia/Sydney", "America/Sao_Paulo")  # fmt: skip
FIRST_DAY = date(2026, 11, 20)
RUN_DETAILS = """
query Runs($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId status creationTime startTime endTime tags { key value }
                            stepStats { stepKey status startTime endTime } } }
  }
}"""
RUN_EVENTS = """
query Events($id: ID!) {
  runOrError(runId: $id) {
    ... on Run { eventConnection(limit: 5000) { events { __typename ... on MessageEvent { timestamp stepKey message } } } }
  }
}"""
READ_FIGURES = """
query Figures($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) {
    ... on Asset { assetMaterializations { partition metadataEntries { label ... on IntMetadataEntry { intValue } } } }
  }
}"""


class PostgresSampler:
    """The instance database while the deployment works: the most connections open at once (every 2 s)."""

    def __init__(self, cluster: PostgresCluster) -> None:
        import psycopg

        self.connection = psycopg.connect(host="127.0.0.1", port=cluster.port, user="postgres", dbname=DATABASE,
                                          autocommit=True)  # fmt: skip
        self.max_connections = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.done.wait(2):
            [(open_now,)] = self.connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [DATABASE]).fetchall()
            self.max_connections = max(self.max_connections, open_now - 1)  # not this sampler's own

    def finish(self) -> dict:
        """Stop sampling; the figures, with the database's size and rows at the end."""
        self.done.set()
        self.thread.join()
        [(size, events, runs)] = self.connection.execute(
            "SELECT pg_database_size(%s), (SELECT count(*) FROM event_logs), (SELECT count(*) FROM runs)", [DATABASE]
        ).fetchall()
        self.connection.close()
        return {"max_connections": self.max_connections, "database_mib": round(size / 2**20, 1),
                "event_log_rows": events, "runs": runs}  # fmt: skip


def timeline(events: list[dict], start: float) -> dict:
    """Where a run's time went: seconds from its start to its first step, in steps (their union), and the engine's
    messages about pool slots (a step waiting for its account's read pool)."""
    starts = {e["stepKey"]: float(e["timestamp"]) / 1000 for e in events if e["__typename"] == "ExecutionStepStartEvent"}
    ends = {e["stepKey"]: float(e["timestamp"]) / 1000 for e in events
            if e["__typename"] in ("ExecutionStepSuccessEvent", "ExecutionStepFailureEvent")}  # fmt: skip
    spans = sorted((starts[k], ends[k]) for k in starts if k in ends)
    busy, reach = 0.0, start
    for begin, end in spans:
        busy += max(0.0, end - max(begin, reach))
        reach = max(reach, end)
    waits = [e for e in events if e.get("message") and "pool" in e["message"].lower()]
    return {"first_step_s": round(spans[0][0] - start, 2) if spans else None, "steps_busy_s": round(busy, 2),
            "pool_messages": len(waits), "pool_message_example": waits[0]["message"][:200] if waits else None}


def accounts_yaml(names: list[str]) -> str:
    lines = ["accounts:"]
    for i, name in enumerate(names):
        lines.append(f"  - {{name: {name}, demo: true, timezone: {ZONES[i % len(ZONES)]}}}")
    return "\n".join(lines) + "\n"


def measure(accounts: int, days: int) -> dict:
    names = [f"acct_{i:02d}" for i in range(accounts)]
    day_keys = [(FIRST_DAY + timedelta(days=d)).isoformat() for d in range(days)]
    folder = Path(tempfile.mkdtemp(prefix="accounts-scale-"))
    accounts_file = folder / "accounts.yaml"
    accounts_file.write_text(accounts_yaml(names))
    with postgres_cluster() as cluster, deployment(cluster, folder, accounts_file, folder / "w.duckdb") as deployed:
        sampler = PostgresSampler(cluster)
        launched = time.time()
        backfills = {
            name: deployed.launch_backfill([[f"esputnik_{name}", d] for d in DATASET_NAMES], day_keys,
                                           {ACCOUNT_TAG: name}, f"{name}: scale")  # fmt: skip
            for name in names
        }
        statuses = deployed.wait_for_backfills(list(backfills.values()), timeout=3600)
        runs = [run for b in backfills.values() for run in deployed.graphql(RUN_DETAILS, {"id": b})["runsOrError"]
                ["results"]]  # fmt: skip
        postgres = sampler.finish()
        for run in runs:
            events = deployed.graphql(RUN_EVENTS, {"id": run["runId"]})["runOrError"]["eventConnection"]["events"]
            run["timeline"] = timeline(events, run["startTime"])
        requests = {}  # per account, source read and partition (orders and orderItems share one read)
        for name in names:
            for dataset in DATASET_NAMES:
                found = deployed.graphql(READ_FIGURES, {"key": {"path": [f"esputnik_{name}", dataset]}})
                for event in found["assetOrError"]["assetMaterializations"]:
                    figures = {e["label"]: e.get("intValue") for e in event["metadataEntries"]}
                    requests[(name, DATASETS[dataset].source.name, event["partition"])] = figures["run_http_requests"]
    shutil.rmtree(folder)
    return summarize(names, day_keys, launched, statuses, runs, requests) | {"postgres": postgres}


def summarize(
    names: list[str], day_keys: list[str], launched: float, statuses: dict[str, str], runs: list[dict],
    requests: dict[tuple[str, str, str], int],
) -> dict:
    """The figures of one measurement, from the run storage (runs, steps) and the event log (requests per read)."""
    max_runs, tag_limits = instance_limits()
    per_run = []
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        steps = {s["stepKey"]: round(s["endTime"] - s["startTime"], 2) for s in run["stepStats"]
                 if s["startTime"] and s["endTime"]}  # fmt: skip
        per_run.append({
            "account": tags[ACCOUNT_TAG], "status": run["status"], "queued_s": round(run["startTime"] -
            run["creationTime"], 2), "run_s": round(run["endTime"] - run["startTime"], 2), "steps": steps,
            **run["timeline"],
        })  # fmt: skip
    step_seconds = [s for r in per_run for s in r["steps"].values()]
    requests_per_account = {n: sum(v for (account, _, _), v in requests.items() if account == n) for n in names}
    sources = sorted({source for _, source, _ in requests})
    requests_per_source = {s: statistics.median(v for (_, source, _), v in requests.items() if source == s)
                           for s in sources}  # fmt: skip
    ends = [r["endTime"] for r in runs]
    return {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": os.getloadavg()},  # fmt: skip
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "accounts": len(names), "days": day_keys, "datasets": list(DATASET_NAMES),
        "max_concurrent_runs": max_runs, "account_run_limit": tag_limits[ACCOUNT_TAG]["limit"],
        "backfills": statuses,
        "runs": len(runs), "steps": len(step_seconds),
        "wall_s": round(max(ends) - launched, 1),
        "max_runs_in_parallel": max_parallel([(r["startTime"], r["endTime"]) for r in runs]),
        "run_s": {"median": statistics.median(r["run_s"] for r in per_run), "max": max(r["run_s"] for r in per_run)},
        "queued_s": {"median": statistics.median(r["queued_s"] for r in per_run),
                     "max": max(r["queued_s"] for r in per_run)},  # fmt: skip
        "step_s": {"median": statistics.median(step_seconds), "max": max(step_seconds)},
        "requests_per_account": requests_per_account,
        "requests_per_source_read": requests_per_source,
        "per_run": per_run,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "accounts-scale-latest.json")
    args = parser.parse_args()
    reason = postgres_unavailable()
    if reason:
        sys.exit(reason)
    result = measure(args.accounts, args.days)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['accounts']} accounts x {len(result['days'])} day(s), {len(result['datasets'])} datasets; queue: "
          f"{result['max_concurrent_runs']} runs, {result['account_run_limit']} per account")  # fmt: skip
    print(f"backfills: {sorted(set(result['backfills'].values()))}; runs {result['runs']}, steps {result['steps']}")
    print(f"wall {result['wall_s']} s; at most {result['max_runs_in_parallel']} runs at once")
    for key in ("run_s", "queued_s", "step_s"):
        print(f"{key}: median {result[key]['median']}, max {result[key]['max']}")
    print(f"requests per account: {sorted(set(result['requests_per_account'].values()))}")
    print(f"requests per source read (median): {result['requests_per_source_read']}")
    print(f"run start to first step, s: {sorted(r['first_step_s'] for r in result['per_run'])}")
    print(f"steps busy / run, s: {[(r['steps_busy_s'], r['run_s']) for r in result['per_run']]}")
    print(f"PostgreSQL: {result['postgres']}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
