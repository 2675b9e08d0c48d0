"""`esputnik-demo-run`: materialize every asset for yesterday (demo account unless a key is set), then say where it went."""

import argparse
import json
import os
import shlex
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from esputnik_assets.definitions import build_definitions
from esputnik_assets.home import dagster_executable, ensure_dagster_home
from esputnik_assets.keys import IO_MANAGER_KEY, AccountNames
from esputnik_assets.metrics.dashboard import DASHBOARD
from esputnik_assets.schedules import DAILY_JOB
from esputnik_assets.settings import ACCOUNTS_FILE_VARIABLE, Settings, SettingsError
from esputnik_assets.warehouse.io_manager import DuckDBIOManager, WarehouseIOManager



def groups(names: AccountNames) -> dict[str, tuple[str, str]]:
    """An account's groups, their tables and what their row count is (raw tables report the whole table, metric
    tables the day's rows)."""
    return {names.raw_group: ("raw tables", "rows in each table"),
            names.metrics_prefix: ("metric tables", "rows written for the day")}  # fmt: skip


def written_tables(result: dg.ExecuteInProcessResult, defs: dg.Definitions) -> dict[str, list[tuple[str, int, str]]]:
    """(name, rows, table) of every asset the run materialized, by asset group, as the run recorded them."""
    graph = defs.resolve_asset_graph()
    by_group: dict[str, list[tuple[str, int, str]]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        metadata = materialization.metadata
        if "table" not in metadata:  # the KPI dashboard: a page, not a table (see `dashboard_pages`)
            continue
        by_group.setdefault(graph.get(materialization.asset_key).group_name, []).append(
            (materialization.asset_key.path[-1], metadata["dagster/row_count"].value, metadata["table"].value)
        )
    return {group: sorted(tables) for group, tables in by_group.items()}


def dashboard_pages(result: dg.ExecuteInProcessResult, names: AccountNames) -> list[str]:
    """The KPI dashboard pages the run wrote (their paths)."""
    return [
        str(event.materialization.metadata["path"].value)
        for event in result.get_asset_materialization_events()
        if event.asset_key == names.metric(DASHBOARD)
    ]


def next_steps(
    io_manager: WarehouseIOManager, example: str, home: Path, accounts_file: str | None = None
) -> list[str]:
    """Commands that run as printed, from any folder, without activating the virtualenv (absolute paths; the
    accounts file, when one is used, named in the UI's command)."""
    lines = []
    if isinstance(io_manager, DuckDBIOManager):
        database = json.dumps(str(Path(io_manager.path).resolve()))
        sql = json.dumps(f"FROM {io_manager.dataset}.{example} LIMIT 5")
        code = f"import duckdb; print(duckdb.connect({database}, read_only=True).sql({sql}))"
        lines.append(f"Query them:  {shlex.quote(sys.executable)} -c {shlex.quote(code)}")
    command = shlex.quote(dagster_executable("esputnik-assets"))
    accounts = f"{ACCOUNTS_FILE_VARIABLE}={shlex.quote(accounts_file)} " if accounts_file else ""
    dev = f"cd {shlex.quote(str(Path.cwd()))} && {accounts}{command} dev -m esputnik_assets"
    lines.append(f"See this run, the lineage, schedule and backfills in the UI:  {dev}")
    lines.append(f"   (then http://127.0.0.1:3000; runs are kept in {home})")
    return lines


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_environ(os.environ)
    except SettingsError as exc:
        print(f"The environment cannot be used (README, Configuration):\n{exc}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--day", help="partition to materialize (YYYY-MM-DD); default: yesterday in each account's time zone"
    )
    args = parser.parse_args(argv)

    defs = build_definitions(settings)
    # Recorded in the Dagster home that `esputnik-assets dev` shows (./.dagster_home unless DAGSTER_HOME is set).
    home = ensure_dagster_home(os.environ)
    for account in settings.per_account():  # the single account, or each account of ESPUTNIK_ACCOUNTS_FILE in turn
        names = AccountNames(account.account)
        day = args.day or (datetime.now(ZoneInfo(account.timezone)).date() - timedelta(days=1)).isoformat()
        job_name = names.named(DAILY_JOB)
        job = defs.resolve_job_def(job_name)  # a named job: the UI's Runs list shows it as the run's target
        with dg.DagsterInstance.get() as instance:
            result = job.execute_in_process(partition_key=day, instance=instance, raise_on_error=False)
        if not result.success:
            print(f"The run of {job_name} for {day} failed; the log above says why.", file=sys.stderr)
            return 1
        io_manager = defs.resources[names.resource(IO_MANAGER_KEY)]
        written = written_tables(result, defs)
        titles = groups(names)
        counts = " and ".join(f"{len(written.get(group, []))} {title}" for group, (title, _) in titles.items())
        print(f"\nMaterialized {counts} for {day} (job {job_name}) into {io_manager.location()}:")
        for group, (title, rows_are) in titles.items():
            print(f"  {title} ({rows_are}):")
            for name, rows, table in written.get(group, []):
                print(f"    {name:<22} {rows:>8} rows  {table}")
        for path in dashboard_pages(result, names):
            print(f"  KPI dashboard page (open it in a browser): {path}")
    example = "orders" if "orders" in account.datasets else account.datasets[0]
    print("", *next_steps(io_manager, example, home, settings.accounts_file), sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
