"""Operating the pipeline: retry policy of the daily job, the schedule's run tags, the project-local Dagster home,
and the quick start's run and what it prints."""

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._core.definitions.dependency import NodeHandle
from dagster._core.instance.ref import InstanceRef

from esputnik_assets.definitions import build_definitions
from esputnik_assets.home import LOCAL_HOME, ensure_dagster_home
from esputnik_assets.quickstart import main as quick_start
from esputnik_assets.run_policy import SCHEDULE_RUN_TAGS, STEP_RETRY_POLICY
from esputnik_assets.schedules import DAILY_JOB, RANGE_END_TAG, RANGE_START_TAG
from esputnik_assets.settings import Settings

BIN = Path(sys.executable).parent
ENV = {"ESPUTNIK_TIMEZONE": "Europe/Kyiv", "ESPUTNIK_LOOKBACK_DAYS": "3", "ESPUTNIK_START_DATE": "2026-01-01"}


def test_the_daily_job_retries_steps_with_backoff_and_runs_only_after_crashes():
    job = build_definitions(Settings.from_environ(ENV)).resolve_job_def("esputnik_daily")
    assert job.op_retry_policy == STEP_RETRY_POLICY
    assert STEP_RETRY_POLICY.max_retries >= 1 and STEP_RETRY_POLICY.backoff is dg.Backoff.EXPONENTIAL
    for name in ("esputnik_contactActivities", "esputnik_orders"):  # no asset's own policy overrides it
        assert job.get_retry_policy_for_handle(NodeHandle(name, None)) == STEP_RETRY_POLICY, name
    assert job.tags["dagster/max_retries"] == "1"
    assert job.tags["dagster/retry_on_asset_or_op_failure"] == "false"


def test_a_schedule_tick_requests_yesterday_and_the_lookback_tagged_as_the_schedules_run():
    defs = build_definitions(Settings.from_environ(ENV))
    schedule = defs.resolve_schedule_def("esputnik_daily_schedule")
    tick = datetime(2026, 11, 25, 3, 0, tzinfo=ZoneInfo("Europe/Kyiv"))
    with dg.build_schedule_context(scheduled_execution_time=tick) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2026-11-21", "2026-11-24")
    assert request.tags.items() >= SCHEDULE_RUN_TAGS.items()
    partitions = defs.resolve_job_def("esputnik_daily").partitions_def
    days = partitions.get_partition_keys_in_range(
        dg.PartitionKeyRange(request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG])
    )
    assert days == ["2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24"]  # yesterday plus 3 days of lookback


def test_the_project_local_home_is_created_with_run_retries_and_a_set_home_wins(tmp_path):
    env: dict[str, str] = {}
    home = ensure_dagster_home(env, tmp_path)
    assert home == tmp_path.resolve() / LOCAL_HOME and env["DAGSTER_HOME"] == str(home)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:  # what Dagster reads from it
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
    (home / "dagster.yaml").write_text("run_retries:\n  enabled: false\n")
    ensure_dagster_home({}, tmp_path)  # an edited config is kept
    assert "enabled: false" in (home / "dagster.yaml").read_text()
    chosen = {"DAGSTER_HOME": str(tmp_path / "mine")}
    assert ensure_dagster_home(chosen, tmp_path) == tmp_path / "mine" and not (tmp_path / "mine").exists()


def test_the_quick_start_runs_a_named_job_lists_both_groups_and_prints_commands_that_run_as_copied(
    tmp_path, monkeypatch, capsys
):
    for name in list(os.environ):
        if name.startswith(("ESPUTNIK_", "BIGQUERY_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ESPUTNIK_DATASETS", "orders,orderItems")
    monkeypatch.setenv("DAGSTER_HOME", "")  # unset: the quick start makes ./.dagster_home (restored afterwards)
    monkeypatch.chdir(tmp_path)
    assert quick_start(["--day", "2026-11-20"]) == 0
    out = capsys.readouterr().out

    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path / LOCAL_HOME))) as instance:
        [run] = instance.get_runs()
    assert run.job_name == DAILY_JOB and run.tags["dagster/partition"] == "2026-11-20"  # the Runs list's target

    # orders and orderItems feed product_affinity and order_cohorts (the other metrics read datasets left out)
    assert "Materialized 2 raw tables and 2 metric tables for 2026-11-20 (job esputnik_daily)" in out
    assert "    orders                      120 rows  data/warehouse.duckdb:esputnik.orders" in out
    assert "rows  data/warehouse.duckdb:esputnik_metrics.product_affinity" in out
    assert "rows  data/warehouse.duckdb:esputnik_metrics.order_cohorts" in out

    query = next(line for line in out.splitlines() if line.startswith("Query them:  ")).removeprefix("Query them:  ")
    dev = next(line for line in out.splitlines() if "in the UI:  " in line).split("in the UI:  ")[1]
    assert dev == f"cd {tmp_path} && {BIN / 'esputnik-assets'} dev -m esputnik_assets"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # the virtualenv not active
    answer = subprocess.run(["/bin/sh", "-c", query], cwd=elsewhere, env=bare, capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert answer.returncode == 0 and "5 rows" in answer.stdout, answer.stderr
