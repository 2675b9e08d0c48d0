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


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_environ(os.environ)
    yesterday = datetime.now(ZoneInfo(settings.timezone)).date() - timedelta(days=1)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--day", default=yesterday.isoformat(), help="partition to materialize (YYYY-MM-DD)")
    args = parser.parse_args(argv)

    defs = build_definitions(os.environ)
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(partition_key=args.day, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    if not result.success:
        print(f"The run for {args.day} failed; the log above says why.", file=sys.stderr)
        return 1

    io_manager = defs.resources[IO_MANAGER_KEY]
    warehouse = io_manager.warehouse()
    print(f"\nMaterialized {len(settings.datasets)} tables for {args.day} into {io_manager.location()}:")
    with warehouse.connect() as con:
        for name in settings.datasets:
            rows = con.execute(f"SELECT count(*) FROM {warehouse.table(name)}").fetchone()[0]
            print(f"  {warehouse.schema}.{name:<18} {rows:>8} rows  ({len(load_contracts()[name].columns)} columns)")
    print(
        f"\nQuery them:  python -c \"import duckdb; print(duckdb.connect('{warehouse.path}', read_only=True)"
        f".sql('FROM {warehouse.schema}.orders LIMIT 5'))\""
        "\nSee the lineage, schedule and backfills in the UI:  dagster dev   (then http://127.0.0.1:3000)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
