"""Benchmark: the metric layer for one day of a large account with 90 days of history, on DuckDB, run by Dagster.

    python benchmarks/metrics.py                          # 1,000,000 activities a day, 90 days of history
    python benchmarks/metrics.py --activities 100000      # a quicker look

Setup (not measured): the raw tables are generated inside DuckDB with SQL (deterministic hashes, the export's
schema) for days D-89 .. D: N activities a day over 100,000 contacts (six in ten of a broadcast sent 0 .. 6 days
earlier, the rest triggered messages, most with a workflowId; UNDELIVERED rows carry SMTP-style 5xx / 4xx
statusDescriptions or none), 4 broadcasts started a day, 5,000 orders a day (two items each, one in ten canceled,
repeat buyers), revenue rows for 40% of them (a second claim for a quarter of those, a third for a tenth, with
different activityDateTime / messageInstanceId / broadcast; six in ten claims name a broadcast, the rest a workflow),
50,000 events a day, 20,000 devices; then the per-day history D's metrics read (contact_daily for D-89 .. D-1 and the
two contact_segments snapshots churn_risk trains on; every other metric reads raw days).

Measured, in a fresh child process: Dagster materializes every metric asset except broadcast_performance for
partition D in one run. broadcast_performance's row of send day S reads the raw days S .. S+L-1 (L = 7), and the
generated days end at D, so it is measured on send day D-6, the latest whose window is complete (partition D would
read one day of its seven); then on send days D-6 .. D in one range run, the re-materialization the daily schedule
does. The table gives each metric's step time (its queries and its checks), its checks timed again on their own, the
rows written and the process's peak RSS, next to the size of the raw data and the machine's load average. Writes
benchmarks/results/metrics-latest.json.
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
CONTACTS, ORDERS_PER_DAY, EVENTS_PER_DAY, DEVICES = 100_000, 5_000, 50_000, 20_000
SENDS_PER_DAY, WORKFLOWS = 4, 30  # broadcasts started each day (06:00, 10:00, 14:00, 18:00 UTC); workflows
BROADCASTS = SENDS_PER_DAY * HISTORY_DAYS
L = 7  # ESPUTNIK_BROADCAST_WINDOW_DAYS' default: a send's row reads its send day and the 6 days after it
RESULTS = Path(__file__).resolve().parent / "results"
MEDIA = ["Email", "Sms", "Viber", "MobilePush", "WebPush", "AppInbox", "Telegram"]
BROADCAST_MEDIA = MEDIA[:6]  # broadcast j goes out on BROADCAST_MEDIA[j % 6] (revenue's media types: no Telegram)
STATUS = (
    "CASE WHEN h < 30 THEN 'SENT' WHEN h < 57 THEN 'DELIVERED' WHEN h < 60 THEN 'UNDELIVERED' "
    "WHEN h < 80 THEN 'RECEIVED' WHEN h < 92 THEN 'CLICKED' WHEN h < 94 THEN 'UNSUBSCRIBED' WHEN h < 95 THEN 'SPAM' "
    "ELSE 'SUBSCRIPTION_CHANGED' END"
)
# Days from a send to its activity: sends and deliveries on the send day (one in ten the next day), opens, clicks and
# the rest over the send's L days, most of them early.
SEND_LAG = (
    "CASE WHEN h < 60 THEN (CASE WHEN lag_h < 90 THEN 0 ELSE 1 END) WHEN lag_h < 55 THEN 0 WHEN lag_h < 75 THEN 1 "
    "WHEN lag_h < 85 THEN 2 WHEN lag_h < 91 THEN 3 WHEN lag_h < 95 THEN 4 WHEN lag_h < 98 THEN 5 ELSE 6 END"
)
# UNDELIVERED reasons: SMTP permanent failures (5xx: hard bounces, one behind spaces), transient ones (4xx: soft), none.
BOUNCE_REASONS = (
    "['550 5.1.1 The email account that you tried to reach does not exist', "
    "'  552 5.2.2 Mailbox full and over quota', '421 4.7.0 Try again later, closing connection', "
    "'450 4.2.1 Mailbox temporarily unavailable', NULL]"
)


def draw(key: str, salt: int) -> str:
    """A deterministic pseudo-random UBIGINT for a row: DuckDB's hash of one integer per (row, salt). hash(key, salt)
    would be cheaper to write, but its low bits repeat across salts (statuses would follow broadcast slots)."""
    return f"hash(({key}) * 64 + {salt})"


def generate_raw(path: Path, activities_per_day: int) -> None:
    """The raw tables of D-89 .. D, generated in DuckDB (never through Python rows)."""
    import duckdb

    from esputnik_assets.contracts import load_contracts
    from esputnik_assets.specs import DATASETS
    from esputnik_assets.warehouse.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(str(path), memory_limit="2GB")
    for name in ("contactActivities", "orders", "orderItems", "revenue", "contacts", "devices", "events", "broadcasts"):
        warehouse.ensure_table(DATASETS[name], load_contracts()[name])
    first = {"first": D - timedelta(days=HISTORY_DAYS - 1)}
    media, broadcast_media = ("['" + "', '".join(names) + "']" for names in (MEDIA, BROADCAST_MEDIA))
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    # Broadcast j starts on day j // SENDS_PER_DAY of the history, at 06:00 + 4 h x (j % SENDS_PER_DAY).
    con.execute(f"""
        INSERT INTO esputnik."broadcasts" ("id", "name", "mediaType", "status", "createdDate", "startedDate")
        SELECT 7000 + j, 'Broadcast ' || j, {broadcast_media}[1 + (j % 6)::INT], 'IDLE', started - INTERVAL 1 DAY,
            started
        FROM (
            SELECT j, CAST($first AS TIMESTAMP) + to_days(CAST(j // {SENDS_PER_DAY} AS INT))
                + to_hours(CAST(6 + 4 * (j % {SENDS_PER_DAY}) AS BIGINT)) AS started
            FROM range({BROADCASTS}) AS r(j)
        )
    """, first)  # fmt: skip
    # Six in ten activities belong to a broadcast sent SEND_LAG days earlier (on its media type; times are uniform
    # over the day, so a few precede their send's hour), the rest are triggered messages (campaignType IM), three in
    # four of them of a workflow (workflowId a string, as eSputnik exports it here).
    con.execute(f"""
        INSERT INTO esputnik."contactActivities" ("contactId", "activityStatus", "activity", "mediaType", "broadcastId",
            "campaignType", "workflowId", "statusDescription", "errorCode", "activityDateTime", "started")
        SELECT contact, {STATUS}, {STATUS},
            CASE WHEN in_broadcast THEN {broadcast_media}[1 + (send % 6)::INT]
                ELSE {media}[1 + ({draw("i", 3)} % 7)::INT] END,
            CASE WHEN in_broadcast THEN 7000 + send END, CASE WHEN in_broadcast THEN 'Group' ELSE 'IM' END,
            CASE WHEN NOT in_broadcast AND {draw("i", 20)} % 4 < 3
                THEN CAST(100 + {draw("i", 21)} % {WORKFLOWS} AS VARCHAR) END,
            reason, reason, t, t
        FROM (
            SELECT *, {SENDS_PER_DAY} * GREATEST(day - ({SEND_LAG}), 0) + {draw("i", 5)} % {SENDS_PER_DAY} AS send,
                CASE WHEN h BETWEEN 57 AND 59 THEN {BOUNCE_REASONS}[1 + ({draw("i", 22)} % 5)::INT] END AS reason
            FROM (
                SELECT i, 1 + {draw("i", 1)} % {CONTACTS} AS contact, {draw("i", 2)} % 100 AS h,
                    {draw("i", 19)} % 100 AS lag_h, {draw("i", 4)} % 10 < 6 AS in_broadcast,
                    CAST(i // {activities_per_day} AS INT) AS day,
                    CAST($first AS TIMESTAMP) + to_days(CAST(i // {activities_per_day} AS INT))
                        + to_seconds(CAST({draw("i", 6)} % 86400 AS BIGINT)) AS t
                FROM range({activities_per_day} * {HISTORY_DAYS}) AS r(i)
            )
        )
    """, first)  # fmt: skip
    # Buyers: contact 1 + floor(CONTACTS x u^3), u uniform, so low ids buy often and new buyers keep arriving (cohorts
    # of every month, repeat customers, one-off ones).
    con.execute(f"""
        INSERT INTO esputnik."orders" ("orderId", "contactId", "Status", "totalCost", "orderDate")
        SELECT i, 1 + CAST(floor({CONTACTS} * pow(({draw("i", 7)} % 1000003) / 1000003.0, 3)) AS BIGINT),
            CASE WHEN {draw("i", 9)} % 10 = 0 THEN 'CANCELED' ELSE 'DELIVERED' END, 10 + {draw("i", 10)} % 3000 / 10.0,
            CAST($first AS TIMESTAMP) + to_days(CAST(i // {ORDERS_PER_DAY} AS INT))
                + to_seconds(CAST({draw("i", 11)} % 86400 AS BIGINT))
        FROM range({ORDERS_PER_DAY} * {HISTORY_DAYS}) AS r(i)
    """, first)  # fmt: skip
    con.execute(f"""
        INSERT INTO esputnik."orderItems" ("orderId", "externalProductId", "name", "quantity", "cost", "orderDate")
        SELECT o."orderId", 'SKU-' || ({draw('o."orderId" * 2 + k', 12)} % 60), 'Product',
            1 + {draw('o."orderId" * 2 + k', 13)} % 3, 100.0, o."orderDate"
        FROM esputnik."orders" AS o CROSS JOIN range(2) AS r(k)
    """)  # fmt: skip
    # Four in ten orders are claimed by messages: one revenue row (claim k = 0), a second claim for one in four of
    # them, a third for one in ten, each touched at orderDate - 6 h x (0 .. 3), so claims may tie on activityDateTime
    # and fall to messageInstanceId (null on one in ten). Six in ten claims name a broadcast sent 0 .. L-1 days
    # before the order (on its media type), the rest a workflow (workflowId an integer here) and no broadcast.
    claim = 'o."orderId" * 4 + k'
    con.execute(f"""
        INSERT INTO esputnik."revenue" ("orderId", "contactId", "totalCost", "orderDate", "activityDateTime", "started",
            "broadcastId", "workflowId", "campaignType", "mediaType", "messageInstanceId", "activityStatus", "activity")
        SELECT "orderId", "contactId", "totalCost", "orderDate", touched, touched,
            CASE WHEN by_broadcast THEN 7000 + send END,
            CASE WHEN NOT by_broadcast THEN 100 + workflow END,
            CASE WHEN by_broadcast THEN 'Group' ELSE 'IM' END,
            {broadcast_media}[1 + (CASE WHEN by_broadcast THEN send ELSE media_draw END % 6)::INT],
            instance, 'CLICKED', 'CLICKED'
        FROM (
            SELECT o."orderId", o."contactId", o."totalCost", o."orderDate", {draw(claim, 15)} % 10 < 6 AS by_broadcast,
                o."orderDate" - to_hours(CAST(6 * ({draw(claim, 16)} % 4) AS BIGINT)) AS touched,
                {SENDS_PER_DAY} * GREATEST(
                    CAST(date_diff('day', CAST($first AS TIMESTAMP), o."orderDate") AS INT)
                        - CAST({draw(claim, 17)} % {L} AS INT), 0
                ) + {draw(claim, 18)} % {SENDS_PER_DAY} AS send,
                {draw(claim, 23)} % {WORKFLOWS} AS workflow, {draw(claim, 24)} AS media_draw,
                CASE WHEN {draw(claim, 25)} % 10 > 0 THEN {draw(claim, 26)} % 1000000000 END AS instance
            FROM esputnik."orders" AS o CROSS JOIN range(3) AS r(k)
            WHERE {draw('o."orderId"', 14)} % 10 < 4
                AND k <= CASE WHEN {draw('o."orderId"', 27)} % 20 < 2 THEN 2 WHEN {draw('o."orderId"', 27)} % 20 < 5
                    THEN 1 ELSE 0 END
        )
    """, first)  # fmt: skip
    con.execute(f"""
        INSERT INTO esputnik."events" ("eventId", "contactId", "eventTypeKey", "occured")
        SELECT i, 1 + {draw("i", 28)} % {CONTACTS},
            ['productViewed', 'addedToCart', 'pageViewed'][1 + ({draw("i", 29)} % 3)::INT],
            CAST($first AS TIMESTAMP) + to_days(CAST(i // {EVENTS_PER_DAY} AS INT))
                + to_seconds(CAST({draw("i", 30)} % 86400 AS BIGINT))
        FROM range({EVENTS_PER_DAY} * {HISTORY_DAYS}) AS r(i)
    """, first)  # fmt: skip
    con.execute(f"""INSERT INTO esputnik."contacts" ("contactId", "languageCode")
        SELECT i, ['uk', 'pl', 'en'][1 + (i % 3)::INT] FROM range(1, {CONTACTS} + 1) AS r(i)""")
    con.execute(f"""INSERT INTO esputnik."devices" ("deviceId", "contactId", "deviceModel", "osType", "osVersion")
        SELECT 'd' || i, 1 + {draw("i", 31)} % {CONTACTS}, 'Pixel 8', 'ANDROID', '15' FROM range({DEVICES}) AS r(i)""")
    con.close()


def raw_rows(path: Path) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return {
            name: con.execute(f'SELECT count(*) FROM esputnik."{name}"').fetchone()[0]
            for name in ("contactActivities", "orders", "orderItems", "revenue", "events", "broadcasts")
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
    """Child process: Dagster materializes the metric assets, one run per measured partition (see `MEASURED_RUNS`);
    each step's wall time (its metric's queries and checks), each metric's checks timed again on their own, and this
    process's peak RSS over all of it."""
    import dagster as dg

    from esputnik_assets.metrics.assets import build_metric_assets, metric_key
    from esputnik_assets.metrics.broadcast import BROADCAST_PERFORMANCE
    from esputnik_assets.metrics.checks import evaluate_metric_checks
    from esputnik_assets.metrics.resource import DuckDBMetricsWarehouse
    from esputnik_assets.metrics.wiring import ALL_METRICS, metrics_for

    warehouse = DuckDBMetricsWarehouse(path=str(path))
    metrics = metrics_for(ALL_METRICS, warehouse)
    partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="UTC")
    assets = build_metric_assets(
        metrics, [m for metric in metrics for m in metric.reads], partitions, dg.BackfillPolicy.multi_run(31)
    )
    defs = dg.Definitions(assets=assets, resources={"metrics_warehouse": warehouse})
    job = defs.resolve_implicit_global_asset_job_def()
    send_day = D - timedelta(days=warehouse.broadcast_window_days - 1)
    broadcast = metric_key(BROADCAST_PERFORMANCE.name)
    others = [metric_key(m.name) for m in metrics if m.name != BROADCAST_PERFORMANCE.name]
    range_tags = {"dagster/asset_partition_range_start": send_day.isoformat(),
                  "dagster/asset_partition_range_end": D.isoformat()}  # fmt: skip
    runs: dict[str, dict] = {}
    for label, selection, partition, tags in (
        ("every other metric, day D", others, D.isoformat(), None),
        (f"broadcast_performance, send day D-{(D - send_day).days}", [broadcast], send_day.isoformat(), None),
        (f"broadcast_performance, send days D-{(D - send_day).days} .. D in one run", [broadcast], None, range_tags),
    ):
        started = time.perf_counter()
        result = job.execute_in_process(
            partition_key=partition, asset_selection=selection, tags=tags, instance=dg.DagsterInstance.ephemeral()
        )
        seconds = round(time.perf_counter() - started, 2)
        steps = {
            event.step_key.split("__")[-1]: round(event.event_specific_data.duration_ms / 1000, 2)
            for event in result.all_events
            if event.event_type_value == "STEP_SUCCESS"
        }
        written = {
            event.asset_key.path[-1]: event.materialization.metadata["rows_written"].value
            for event in result.get_asset_materialization_events()
        }
        runs[label] = {"success": result.success, "run_seconds": seconds, "seconds_per_metric": steps,
                       "rows_written": written}  # fmt: skip
        if label.startswith("every other"):
            churn = result.asset_materializations_for_node("esputnik_metrics__churn_risk")[0].metadata
    checks = {}
    with warehouse.open() as engine:  # the same checks the steps ran, again, each metric's alone
        for metric in metrics:
            started = time.perf_counter()
            day = send_day if metric.name == BROADCAST_PERFORMANCE.name else D
            evaluate_metric_checks(metric, engine, warehouse, [day])
            checks[metric.name] = round(time.perf_counter() - started, 2)
    return {
        "measured_runs": runs,
        "check_seconds_per_metric": checks,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "churn_auc_held_out": churn["auc_held_out"].value if "auc_held_out" in churn else None,
        "broadcast_send_day": send_day.isoformat(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--activities", type=int, default=1_000_000, help="activities a day")
    parser.add_argument(
        "--keep", help="generate into this DuckDB file, or reuse it when it exists (a copy is measured)"
    )
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
        load_before = os.getloadavg()
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(path)], capture_output=True, text=True, check=False,
            env=os.environ | {"DAGSTER_HOME": scratch},
        )  # fmt: skip
        if child.returncode:
            raise SystemExit(f"the measured run failed:\n{child.stderr[-4000:]}")
        measured = json.loads(child.stdout.strip().splitlines()[-1])
    load = os.getloadavg()  # the machine may be shared: the load around the measured runs puts the seconds in context
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
                            cwd=Path(__file__).parent).stdout.strip()  # fmt: skip
    report = {
        "date": time.strftime("%Y-%m-%d"), "commit": commit, "machine": f"{platform.machine()}, {os.cpu_count()} "
        f"cores, Python {platform.python_version()}",
        "load_average_1_5_15_min": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load]},
        "activities_per_day": args.activities, "history_days": HISTORY_DAYS, "raw_rows": rows,
        "warehouse_file_mib": round(raw_mib, 1), "setup_seconds": round(setup, 1), **measured,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "metrics-latest.json").write_text(json.dumps(report, indent=2) + "\n")
    checks = measured["check_seconds_per_metric"]
    for label, run in measured["measured_runs"].items():
        print(f"\n{label}: run {run['run_seconds']} s")
        print(f"{'metric':<22} {'step s':>8} {'checks s':>9} {'rows':>10}")
        for name, seconds in sorted(run["seconds_per_metric"].items(), key=lambda kv: -kv[1]):
            print(f"{name:<22} {seconds:>8.2f} {checks[name]:>9.2f} {run['rows_written'][name]:>10,}")
    print(
        f"\npeak RSS {measured['peak_rss_mib']} MiB; raw data: {rows['contactActivities']:,} activities, DuckDB file "
        f"{raw_mib:,.0f} MiB; churn AUC {measured['churn_auc_held_out']}; load average (1, 5, 15 min) before "
        f"{' '.join(f'{x:.2f}' for x in load_before)}, after {' '.join(f'{x:.2f}' for x in load)} on {os.cpu_count()} "
        "cores"
    )


if __name__ == "__main__":
    main()
