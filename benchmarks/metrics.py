"""Benchmark: the metric layer for one day of a large account with 90 days of history, on DuckDB, run by Dagster.

    python benchmarks/metrics.py                          # 1,000,000 activities a day, 90 days of history
    python benchmarks/metrics.py --activities 100000      # a quicker look

Setup (not measured): the raw tables are generated inside DuckDB with SQL (deterministic hashes, the export's
schema) for days D-89 .. D: N activities a day over 100,000 contacts, 5,000 orders a day (two items each, one in
ten canceled, repeat buyers), revenue for 40% of them, 50,000 events a day, 20,000 devices, 240 broadcasts; then
the per-day history the metrics read (contact_daily for D-89 .. D-1 and the contact_segments snapshots churn_risk
trains on). Measured: in a fresh child process, Dagster materializes every metric asset for partition D; the table
gives each metric's wall time (its step) and the process's peak RSS, next to the size of the raw data. Writes benchmarks/results/metrics-latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

D = date(2026, 11, 20)
HISTORY_DAYS = 90
CONTACTS, ORDERS_PER_DAY, EVENTS_PER_DAY, DEVICES, BROADCASTS = 100_000, 5_000, 50_000, 20_000, 240
RESULTS = Path(__file__).resolve().parent / "results"
MEDIA = ["Email", "Sms", "Viber", "MobilePush", "WebPush", "AppInbox", "Telegram"]
STATUS = (
    "CASE WHEN h < 30 THEN 'SENT' WHEN h < 57 THEN 'DELIVERED' WHEN h < 60 THEN 'UNDELIVERED' "
    "WHEN h < 80 THEN 'RECEIVED' WHEN h < 92 THEN 'CLICKED' WHEN h < 94 THEN 'UNSUBSCRIBED' WHEN h < 95 THEN 'SPAM' "
    "ELSE 'SUBSCRIPTION_CHANGED' END"
)


def generate_raw(path: Path, activities_per_day: int) -> None:
    """The raw tables of D-89 .. D, generated in DuckDB (never through Python rows)."""
    import duckdb

    from esputnik_assets.contracts import load_contracts
    from esputnik_assets.specs import DATASETS
    from esputnik_assets.warehouse.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(str(path), memory_limit="2GB")
    for name in ("contactActivities", "orders", "orderItems", "revenue", "contacts", "devices", "events", "broadcasts"):
        warehouse.ensure_table(DATASETS[name], load_contracts()[name])
    first = D - timedelta(days=HISTORY_DAYS - 1)
    media = "['" + "', '".join(MEDIA) + "']"
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    params = {"first": first, "days": HISTORY_DAYS}
    con.execute(f"""
        INSERT INTO esputnik."contactActivities" ("contactId", "activityStatus", "activity", "mediaType", "broadcastId",
            "campaignType", "activityDateTime", "started")
        SELECT contact, {STATUS}, {STATUS}, {media}[1 + (hash(i, 3) % 7)::INT],
            CASE WHEN hash(i, 4) % 10 < 6 THEN 7000 + hash(i, 5) % {BROADCASTS} END,
            CASE WHEN hash(i, 4) % 10 < 6 THEN 'Group' ELSE 'IM' END, t, t
        FROM (
            SELECT i, 1 + hash(i, 1) % {CONTACTS} AS contact, hash(i, 2) % 100 AS h,
                CAST($first AS TIMESTAMP) + to_days(CAST(i // {activities_per_day} AS INT))
                    + to_seconds(CAST(hash(i, 6) % 86400 AS BIGINT)) AS t
            FROM range({activities_per_day} * $days) AS r(i)
        )
    """, params)
    con.execute(f"""
        INSERT INTO esputnik."orders" ("orderId", "contactId", "Status", "totalCost", "orderDate")
        SELECT i, 1 + (hash(i, 7) % 100) * (hash(i, 8) % 200), CASE WHEN hash(i, 9) % 10 = 0 THEN 'CANCELED'
            ELSE 'DELIVERED' END, 10 + hash(i, 10) % 3000 / 10.0,
            CAST($first AS TIMESTAMP) + to_days(CAST(i // {ORDERS_PER_DAY} AS INT))
                + to_seconds(CAST(hash(i, 11) % 86400 AS BIGINT))
        FROM range({ORDERS_PER_DAY} * $days) AS r(i)
    """, params)
    con.execute("""
        INSERT INTO esputnik."orderItems" ("orderId", "externalProductId", "name", "quantity", "cost", "orderDate")
        SELECT o."orderId", 'SKU-' || (hash(o."orderId", k) % 60), 'Product', 1 + hash(o."orderId", k + 2) % 3, 100.0,
            o."orderDate"
        FROM esputnik."orders" AS o CROSS JOIN range(2) AS r(k)
    """)
    con.execute(f"""
        INSERT INTO esputnik."revenue" ("orderId", "contactId", "totalCost", "orderDate", "broadcastId", "mediaType",
            "messageInstanceId")
        SELECT "orderId", "contactId", "totalCost", "orderDate", 7000 + hash("orderId", 12) % {BROADCASTS},
            {media}[1 + (hash("orderId", 13) % 6)::INT], "orderId"
        FROM esputnik."orders" WHERE hash("orderId", 14) % 10 < 4
    """)
    con.execute(f"""
        INSERT INTO esputnik."events" ("eventId", "contactId", "eventTypeKey", "occured")
        SELECT i, 1 + hash(i, 15) % {CONTACTS}, ['productViewed', 'addedToCart', 'pageViewed'][1 + (hash(i, 16) % 3)::INT],
            CAST($first AS TIMESTAMP) + to_days(CAST(i // {EVENTS_PER_DAY} AS INT))
                + to_seconds(CAST(hash(i, 17) % 86400 AS BIGINT))
        FROM range({EVENTS_PER_DAY} * $days) AS r(i)
    """, params)
    con.execute(f"""INSERT INTO esputnik."contacts" ("contactId", "languageCode")
        SELECT i, ['uk', 'pl', 'en'][1 + (i % 3)::INT] FROM range(1, {CONTACTS} + 1) AS r(i)""")
    con.execute(f"""INSERT INTO esputnik."devices" ("deviceId", "contactId", "deviceModel", "osType", "osVersion")
        SELECT 'd' || i, 1 + hash(i, 18) % {CONTACTS}, 'Pixel 8', 'ANDROID', '15' FROM range({DEVICES}) AS r(i)""")
    con.execute(f"""INSERT INTO esputnik."broadcasts" ("id", "name", "mediaType")
        SELECT 7000 + i, 'Broadcast ' || i, {media}[1 + (i % 6)::INT] FROM range({BROADCASTS}) AS r(i)""")
    con.close()


def raw_rows(path: Path) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return {
            name: con.execute(f'SELECT count(*) FROM esputnik."{name}"').fetchone()[0]
            for name in ("contactActivities", "orders", "orderItems", "revenue", "events")
        }


def prepare_history(path: Path) -> None:
    """The metric days that D's metrics read: the daily summaries and the snapshots churn trains on."""
    import duckdb

    from esputnik_assets.metrics.assets import compute_days
    from esputnik_assets.metrics.catalog import CONTACT_DAILY, CONTACT_SEGMENTS
    from esputnik_assets.metrics.resource import DuckDBMetricsWarehouse

    warehouse = DuckDBMetricsWarehouse(path=str(path), memory_limit="2GB")
    horizon = warehouse.churn_horizon_days
    with warehouse.open() as engine:
        history = [D - timedelta(days=back) for back in range(HISTORY_DAYS - 1, 0, -1)]
        compute_days(CONTACT_DAILY, engine, warehouse, history, print)
        snapshots = [D - timedelta(days=2 * horizon), D - timedelta(days=horizon)]
        compute_days(CONTACT_SEGMENTS, engine, warehouse, snapshots, print)
    with duckdb.connect(str(path)) as con:
        con.execute("CHECKPOINT")  # the measured process opens a settled file, as a long-lived warehouse is


def measure(path: Path) -> dict:
    """Child process: Dagster materializes every metric asset for D; per-step wall time and this process's peak RSS."""
    import dagster as dg

    from esputnik_assets.metrics.assets import build_metric_assets
    from esputnik_assets.metrics.resource import DuckDBMetricsWarehouse
    from esputnik_assets.metrics.wiring import ALL_METRICS

    partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")
    assets = build_metric_assets(
        ALL_METRICS, [m for metric in ALL_METRICS for m in metric.reads], partitions, dg.BackfillPolicy.multi_run(31)
    )
    defs = dg.Definitions(assets=assets, resources={"metrics_warehouse": DuckDBMetricsWarehouse(path=str(path))})
    job = defs.resolve_implicit_global_asset_job_def()
    started = time.perf_counter()
    result = job.execute_in_process(partition_key=D.isoformat(), instance=dg.DagsterInstance.ephemeral())
    total = time.perf_counter() - started
    seconds = {
        event.step_key.split("__")[-1]: round(event.event_specific_data.duration_ms / 1000, 2)
        for event in result.all_events
        if event.event_type_value == "STEP_SUCCESS"
    }
    churn = result.asset_materializations_for_node("esputnik_metrics__churn_risk")[0].metadata
    return {
        "success": result.success,
        "seconds_per_metric": seconds,
        "run_seconds": round(total, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "churn_auc_held_out": churn["auc_held_out"].value if "auc_held_out" in churn else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activities", type=int, default=1_000_000, help="activities a day")
    parser.add_argument("--keep", help="generate into this DuckDB file, or reuse it when it exists (a copy is measured)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # child process: the DuckDB file to measure
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure))))
        return
    with tempfile.TemporaryDirectory(prefix="esputnik-metrics-bench-") as scratch:
        path = Path(scratch) / "warehouse.duckdb"
        began = time.perf_counter()
        if args.keep and Path(args.keep).exists():
            shutil.copyfile(args.keep, path)
            rows = raw_rows(path)
        else:
            generate_raw(path, args.activities)
            prepare_history(path)
            rows = raw_rows(path)
            if args.keep:
                shutil.copyfile(path, args.keep)
        setup = time.perf_counter() - began
        raw_mib = path.stat().st_size / 2**20
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(path)], capture_output=True, text=True, check=False,
            env=os.environ | {"DAGSTER_HOME": scratch},
        )  # fmt: skip
        if child.returncode:
            raise SystemExit(f"the measured run failed:\n{child.stderr[-4000:]}")
        measured = json.loads(child.stdout.strip().splitlines()[-1])
    report = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}", "activities_per_day": args.activities, "history_days": HISTORY_DAYS,
        "raw_rows": rows, "warehouse_file_mib": round(raw_mib, 1), "setup_seconds": round(setup, 1), **measured,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "metrics-latest.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'metric':<22} {'seconds':>8}")
    for name, seconds in sorted(measured["seconds_per_metric"].items(), key=lambda kv: -kv[1]):
        print(f"{name:<22} {seconds:>8.2f}")
    print(
        f"run {measured['run_seconds']} s, peak RSS {measured['peak_rss_mib']} MiB; raw data: "
        f"{rows['contactActivities']:,} activities, DuckDB file {raw_mib:,.0f} MiB; churn AUC "
        f"{measured['churn_auc_held_out']}"
    )


if __name__ == "__main__":
    main()
