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
from esputnik_assets.keys import IO_MANAGER_KEY, RAW_GROUP
from esputnik_assets.metrics.assets import GROUP as METRICS_GROUP
from esputnik_assets.metrics.assets import metric_key
from esputnik_assets.metrics.dashboard import DASHBOARD
from esputnik_assets.schedules import DAILY_JOB
from esputnik_assets.settings import Settings, SettingsError
from esputnik_assets.warehouse.io_manager import DuckDBIOManager, WarehouseIOManager

# Each group's tables and what their row count is (raw tables report the whole table, metric tables the day's rows).
GROUPS = {RAW_GROUP: ("raw tables", "rows in each table"), METRICS_GROUP: ("metric tables", "rows written for the day")}


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


def dashboard_pages(result: dg.ExecuteInProcessResult) -> list[str]:
    """The KPI dashboard pages the run wrote (their paths)."""
    return [
        str(event.materialization.metadata["path"].value)
        for event in result.get_asset_materialization_events()
        if event.asset_key == metric_key(DASHBOARD)
    ]


def next_steps(io_manager: WarehouseIOManager, example: str, home: Path) -> list[str]:
    """Commands that run as printed, from any folder, without activating the virtualenv (absolute paths)."""
    lines = []
    if isinstance(io_manager, DuckDBIOManager):
        database = json.dumps(str(Path(io_manager.path).resolve()))
        sql = json.dumps(f"FROM {io_manager.dataset}.{example} LIMIT 5")
        code = f"import duckdb; print(duckdb.connect({database}, read_only=True).sql({sql}))"
        lines.append(f"Query them:  {shlex.quote(sys.executable)} -c {shlex.quote(code)}")
    command = shlex.quote(dagster_executable("esputnik-assets"))
    dev = f"cd {shlex.quote(str(Path.cwd()))} && {command} dev -m esputnik_assets"
    lines.append(f"See this run, the lineage, schedule and backfills in the UI:  {dev}")
    lines.append(f"   (then http://127.0.0.1:3000; runs are kept in {home})")
    return lines


def main(argv: list[str] | None = None) -> int:
    try:
        settings = Settings.from_environ(os.environ)
    except SettingsError as exc:
        print(f"The environment cannot be used (README, Configuration):\n{exc}", file=sys.stderr)
        return 2
    yesterday = datetime.now(ZoneInfo(settings.timezone)).date() - timedelta(days=1)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--day", default=yesterday.isoformat(), help="partition to materialize (YYYY-MM-DD)")
    args = parser.parse_args(argv)

    defs = build_definitions(settings)
    job = defs.resolve_job_def(DAILY_JOB)  # a named job: the UI's Runs list shows it as the run's target
    # Recorded in the Dagster home that `esputnik-assets dev` shows (./.dagster_home unless DAGSTER_HOME is set).
    home = ensure_dagster_home(os.environ)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(partition_key=args.day, instance=instance, raise_on_error=False)
    if not result.success:
        print(f"The run for {args.day} failed; the log above says why.", file=sys.stderr)
        return 1

    io_manager = defs.resources[IO_MANAGER_KEY]
    written = written_tables(result, defs)
    counts = " and ".join(f"{len(written.get(group, []))} {title}" for group, (title, _) in GROUPS.items())
    print(f"\nMaterialized {counts} for {args.day} (job {DAILY_JOB}) into {io_manager.location()}:")
    for group, (title, rows_are) in GROUPS.items():
        print(f"  {title} ({rows_are}):")
        for name, rows, table in written.get(group, []):
            print(f"    {name:<22} {rows:>8} rows  {table}")
    for path in dashboard_pages(result):
        print(f"  KPI dashboard page (open it in a browser): {path}")
    example = "orders" if "orders" in settings.datasets else settings.datasets[0]
    print("", *next_steps(io_manager, example, home), sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
