"""deploy/ run for real: PostgreSQL run, event-log and schedule storage, the code location over gRPC, the daemon and
the webserver; a backfill per account launched through GraphQL waits under the queued run coordinator's limit of one
run per account, the daemon is killed (SIGKILL) mid-way and restarted, and both accounts end with exactly the demo's
rows of each day, one materialization per partition, and runs of one account that never overlapped."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest

from esputnik_assets.keys import ACCOUNT_TAG
from esputnik_assets_tests.conftest import built_in_demo_account
from esputnik_assets_tests.deployment import (
    REQUIRE_VARIABLE, Deployment, deployment, instance_limits, max_parallel, postgres_cluster, postgres_unavailable,
)  # fmt: skip

pytestmark = pytest.mark.slow  # minutes: PostgreSQL, three Dagster services, six runs

ACCOUNTS = {"shop_ua": "Europe/Kyiv", "shop_us": "America/New_York"}
DATASETS = {"contactActivities": "activityDateTime", "orders": "orderDate", "orderItems": "orderDate"}
# Three days apart: the raw assets' backfill policy makes consecutive days one range run, so days apart are three
# runs per account, which the queue must hold back one at a time.
DAYS = (date(2026, 11, 16), date(2026, 11, 18), date(2026, 11, 20))


@dataclass
class Backfilled:
    """What the deployment recorded, read before it was stopped."""

    statuses: dict[str, str]  # per account
    runs: dict[str, list[dict]]  # per account: the backfill's runs from the run storage
    done_when_killed: int  # runs finished when the daemon was killed
    runs_when_killed: int  # runs the backfills had when the daemon was killed
    materializations: dict[tuple[str, str], list[dict]]  # per (account, dataset)
    day_counts: dict[tuple[str, str], dict[date, int]]  # per (account, dataset): rows per local day
    logs: str


def _accounts_file(folder: Path) -> Path:
    path = folder / "accounts.yaml"
    lines = ["accounts:"]
    for name, zone in ACCOUNTS.items():
        lines.append(f"  - {{name: {name}, demo: true, timezone: {zone}, datasets: [{', '.join(DATASETS)}]}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _kill_daemon_mid_backfill(deployed: Deployment, backfills: dict[str, str]) -> tuple[int, int]:
    """Wait for the first finished run, SIGKILL the daemon while the other runs are still queued or running, and
    start it again; (runs finished, runs in all) at the kill."""
    deadline = time.monotonic() + 600
    while True:
        runs = [run for b in backfills.values() for run in deployed.backfill_runs(b)]
        finished = [run for run in runs if run["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        if finished:
            break
        assert time.monotonic() < deadline, f"no run finished within 600 s: {runs}\n{deployed.logs()}"
        time.sleep(0.5)
    deployed.kill_daemon()
    time.sleep(5)  # the queue and the backfills sit still; a launched run goes on without the daemon
    deployed.start_daemon()
    return len(finished), len(runs)


def _day_counts(path: Path) -> dict[tuple[str, str], dict[date, int]]:
    """Rows per account, table and local day of the account's zone, from the one DuckDB file of both accounts."""
    counts = {}
    with duckdb.connect(str(path), read_only=True) as con:
        for name, zone in ACCOUNTS.items():
            for dataset, column in DATASETS.items():
                rows = con.execute(
                    f"SELECT CAST(timezone('{zone}', {column}) AS DATE) AS day, count(*) "
                    f'FROM esputnik_{name}."{dataset}" GROUP BY day'
                ).fetchall()
                counts[(name, dataset)] = dict(rows)
    return counts


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory) -> Backfilled:
    reason = postgres_unavailable()
    if reason:
        if os.environ.get(REQUIRE_VARIABLE) == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("deployment")
    warehouse = folder / "warehouse.duckdb"
    with postgres_cluster() as cluster, deployment(cluster, folder, _accounts_file(folder), warehouse) as deployed:
        backfills = {
            name: deployed.launch_backfill(
                [[f"esputnik_{name}", dataset] for dataset in DATASETS], [d.isoformat() for d in DAYS],
                {ACCOUNT_TAG: name}, f"{name}: three days",
            )
            for name in ACCOUNTS
        }  # fmt: skip
        done_when_killed, runs_when_killed = _kill_daemon_mid_backfill(deployed, backfills)
        finished = deployed.wait_for_backfills(list(backfills.values()))
        return Backfilled(
            statuses={name: finished[b] for name, b in backfills.items()},
            runs={name: deployed.backfill_runs(b) for name, b in backfills.items()},
            done_when_killed=done_when_killed,
            runs_when_killed=runs_when_killed,
            materializations={
                (name, dataset): deployed.materializations([f"esputnik_{name}", dataset])
                for name in ACCOUNTS for dataset in DATASETS
            },  # fmt: skip
            day_counts=_day_counts(warehouse),
            logs=deployed.logs(),
        )


def test_both_backfills_finish_after_the_daemon_was_killed_mid_way(backfilled):
    assert backfilled.statuses == {name: "COMPLETED_SUCCESS" for name in ACCOUNTS}, backfilled.logs
    # the kill came after a first run had finished and before the last one had
    assert 1 <= backfilled.done_when_killed < len(ACCOUNTS) * len(DAYS), backfilled.runs
    for name, runs in backfilled.runs.items():
        assert len(runs) == len(DAYS), (name, runs)  # one run per day, none resubmitted after the restart
        assert {run["status"] for run in runs} == {"SUCCESS"}, (name, runs)
        assert {run["tags"][ACCOUNT_TAG] for run in runs} == {name}
        days = sorted(run["tags"]["dagster/asset_partition_range_start"] for run in runs)
        assert days == [d.isoformat() for d in DAYS]


def test_each_account_holds_exactly_the_demo_days_rows(backfilled):
    demo = built_in_demo_account()
    for name in ACCOUNTS:
        for dataset in DATASETS:
            expected = {day: demo.expected_count(dataset, day) for day in DAYS}
            assert backfilled.day_counts[(name, dataset)] == expected, (name, dataset)


def test_one_materialization_per_asset_and_day(backfilled):
    for (name, dataset), events in backfilled.materializations.items():
        runs = {run["runId"] for run in backfilled.runs[name]}
        assert sorted(e["partition"] for e in events) == [d.isoformat() for d in DAYS], (name, dataset, events)
        assert {e["runId"] for e in events} == runs, (name, dataset)


def test_runs_of_one_account_never_overlap_and_that_limit_held_them(backfilled):
    max_runs, tag_limits = instance_limits()
    assert tag_limits[ACCOUNT_TAG] == {"key": ACCOUNT_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    every_run = []
    for name, runs in backfilled.runs.items():
        runs = sorted(runs, key=lambda run: run["startTime"])
        for earlier, later in zip(runs, runs[1:]):
            assert later["startTime"] >= earlier["endTime"], (name, earlier, later)  # one at a time
            # it was queued while the account's previous run ran: the queue held it back
            assert later["creationTime"] < earlier["endTime"], (name, earlier, later)
        every_run += [(run["startTime"], run["endTime"]) for run in runs]
    # the two accounts ran side by side, and never near the instance-wide limit: the per-account limit was the
    # one that held the queued runs back
    assert max_parallel(every_run) == len(ACCOUNTS) < max_runs
