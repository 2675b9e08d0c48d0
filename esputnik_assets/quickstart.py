"""`esputnik-demo-run`: materialize every asset for yesterday (demo account unless a key is set), then say where it went."""

import argparse
import os
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from esputnik_assets.assets.raw import IO_MANAGER_KEY
from esputnik_assets.contracts import load_contracts
from esputnik_assets.definitions import Settings, build_definitions
from esputnik_assets.home import ensure_dagster_home
from esputnik_assets.warehouse.io_manager import DuckDBIOManager


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_environ(os.environ)
    yesterday = datetime.now(ZoneInfo(settings.timezone)).date() - timedelta(days=1)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--day", default=yesterday.isoformat(), help="partition to materialize (YYYY-MM-DD)")
    args = parser.parse_args(argv)

    defs = build_definitions(os.environ)
    job = defs.resolve_implicit_global_asset_job_def()
    # Recorded in the Dagster home that `esputnik-assets dev` shows (./.dagster_home unless DAGSTER_HOME is set).
    home = ensure_dagster_home(os.environ)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(partition_key=args.day, instance=instance, raise_on_error=False)
    if not result.success:
        print(f"The run for {args.day} failed; the log above says why.", file=sys.stderr)
        return 1

    io_manager = defs.resources[IO_MANAGER_KEY]
    print(f"\nMaterialized {len(settings.datasets)} tables for {args.day} into {io_manager.location()}:")
    with io_manager.open_warehouse() as warehouse:
        for name in settings.datasets:
            columns = len(load_contracts()[name].columns)
            print(f"  {name:<18} {warehouse.row_count(name):>8} rows  ({columns} columns)  {warehouse.table(name)}")
    if isinstance(io_manager, DuckDBIOManager):
        print(
            f"\nQuery them:  python -c \"import duckdb; print(duckdb.connect('{io_manager.path}', read_only=True)"
            f".sql('FROM {io_manager.dataset}.orders LIMIT 5'))\""
        )
    print(f"See this run, the lineage, schedule and backfills in the UI:  esputnik-assets dev   (then "
          f"http://127.0.0.1:3000; runs are kept in {home})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
