"""The demo account's history through the whole graph: raw and metric assets for N days, then what the metrics say.

    python benchmarks/demo_history.py                 # 180 days ending yesterday-ish (2026-11-20), into a temp file
    python benchmarks/demo_history.py --days 200 --path data/demo-history.duckdb

Materializes every asset (raw and metrics) of `build_definitions` with the built-in demo account, in range runs of
up to 31 days as a backfill would, then prints the churn model's held-out AUCs against the recency baseline for the
last day, the segment sizes, product affinity's lift, the revenue credit and the journey conversions: the check
that the demo account makes every metric meaningful.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

LAST = date(2026, 11, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--path", help="DuckDB file to keep (default: a temporary one)")
    args = parser.parse_args()

    import dagster as dg
    import duckdb

    from esputnik_assets.definitions import build_definitions
    from esputnik_assets.settings import Settings
    from esputnik_assets.schedules import RANGE_END_TAG, RANGE_START_TAG

    with tempfile.TemporaryDirectory(prefix="esputnik-demo-history-") as scratch:
        path = args.path or str(Path(scratch) / "warehouse.duckdb")
        first = LAST - timedelta(days=args.days - 1)
        env = {"ESPUTNIK_DUCKDB_PATH": path, "ESPUTNIK_START_DATE": first.isoformat(), "ESPUTNIK_TIMEZONE": "UTC"}
        defs = build_definitions(Settings.from_environ(env))
        job = defs.resolve_implicit_global_asset_job_def()
        began, churn = time.perf_counter(), {}
        for offset in range(0, args.days, 31):
            start, end = first + timedelta(days=offset), min(first + timedelta(days=offset + 30), LAST)
            result = job.execute_in_process(
                tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()},
                instance=dg.DagsterInstance.ephemeral(),
            )
            churn = result.asset_materializations_for_node("esputnik_metrics__churn_risk")[0].metadata
            print(f"{start} .. {end} done ({time.perf_counter() - began:.0f} s)", flush=True)
        summary = {key: value.value for key, value in churn.items() if not key.startswith("dagster/")}
        with duckdb.connect(path, read_only=True) as con:
            segments = con.sql(
                "SELECT segment, count(*) FROM esputnik_metrics.contact_segments WHERE date = $d GROUP BY 1 ORDER BY 2 "
                "DESC", params={"d": LAST}
            ).fetchall()  # fmt: skip
            journeys = con.sql(
                "SELECT mediaType, delivered, clicked, ordered, round(order_conversion, 4) FROM "
                "esputnik_metrics.customer_journeys WHERE date = $d ORDER BY delivered DESC", params={"d": LAST}
            ).fetchall()  # fmt: skip
            affinity = con.sql(
                "SELECT count(*), round(avg(lift), 2), round(median(lift), 2), count(*) FILTER (WHERE lift > 2), "
                "round(max(lift), 2) FROM esputnik_metrics.product_affinity WHERE date = $d", params={"d": LAST}
            ).fetchall()[0]  # fmt: skip
            top_pairs = con.sql(
                "SELECT product, other_product, pair_orders, round(lift, 2) FROM esputnik_metrics.product_affinity "
                "WHERE date = $d AND product < other_product ORDER BY lift DESC, pair_orders DESC LIMIT 5",
                params={"d": LAST},
            ).fetchall()  # fmt: skip
            revenue = con.sql(
                "SELECT count(DISTINCT orderId), count(*), count(*) FILTER (WHERE workflowId IS NOT NULL) "
                "FROM esputnik.revenue"
            ).fetchall()[0]  # fmt: skip
            orders = con.sql("SELECT count(*) FROM esputnik.orders").fetchall()[0][0]
            send_day = LAST - timedelta(days=7)  # the last send day whose 7-day life lies inside the history
            sends = con.sql(
                "SELECT count(*), sum(delivered), sum(hard_bounced), sum(soft_bounced), round(sum(unique_opens) / "
                "sum(delivered), 4), round(sum(unique_clicks) / sum(delivered), 4), sum(attributed_orders), "
                "round(sum(attributed_revenue) / sum(delivered), 2) FROM esputnik_metrics.broadcast_performance "
                "WHERE date = $d", params={"d": send_day}
            ).fetchall()[0]  # fmt: skip
            credit = con.sql(
                "SELECT (SELECT round(sum(attributed_revenue), 2) FROM esputnik_metrics.campaign_roi WHERE date > $f), "
                "(SELECT round(sum(attributed_revenue), 2) FROM esputnik_metrics.workflow_performance WHERE date > $f), "
                "(SELECT round(sum(attributed_revenue), 2) FROM esputnik_metrics.daily_sales WHERE date > $f)",
                params={"f": LAST - timedelta(days=30)},
            ).fetchall()[0]  # fmt: skip
            engagement = con.sql(
                "SELECT mediaType, round(open_rate, 4), round(open_rate_prev_7d, 4), round(click_rate, 4), "
                "round(click_rate_prev_7d, 4) FROM esputnik_metrics.channel_engagement WHERE date = $d "
                "ORDER BY delivered DESC LIMIT 3", params={"d": LAST}
            ).fetchall()  # fmt: skip
            stages = con.sql(
                "SELECT lifecycle_stage, count(*), round(sum(revenue), 2), round(sum(organic_revenue), 2) "
                "FROM esputnik_metrics.contact_lifetime WHERE date = $d GROUP BY 1 ORDER BY 2 DESC", params={"d": LAST}
            ).fetchall()  # fmt: skip
            retention = con.sql(
                "SELECT months_since, round(avg(retention_rate), 4), count(*) FROM esputnik_metrics.order_cohorts "
                "WHERE date = $d AND months_since BETWEEN 1 AND 3 GROUP BY 1 ORDER BY 1", params={"d": LAST}
            ).fetchall()  # fmt: skip
            repeat = con.sql(
                "SELECT count(*) FROM esputnik_metrics.contact_segments WHERE date = $d AND frequency >= 2",
                params={"d": LAST},
            ).fetchall()[0][0]
    print(json.dumps({"days": args.days, "seconds": round(time.perf_counter() - began), "churn_risk": summary,
                      "segments": dict(segments), "repeat_buyers_90d": repeat,
                      "product_affinity": dict(zip(("pairs", "mean_lift", "median_lift", "pairs_lift_over_2",
                                                    "max_lift"), affinity)),
                      "top_pairs": [list(p) for p in top_pairs],
                      "revenue": {"orders": orders, "credited_orders": revenue[0], "rows": revenue[1],
                                  "workflow_rows": revenue[2]},
                      "journeys": [list(j) for j in journeys],
                      "broadcast_performance": {"send_day": send_day, **dict(zip(
                          ("sends", "delivered", "hard_bounced", "soft_bounced", "open_rate", "click_rate",
                           "attributed_orders", "revenue_per_recipient"), sends))},
                      "credited_revenue_30d": dict(zip(("broadcasts", "workflows", "daily_sales_attributed"), credit)),
                      "channel_engagement": [list(e) for e in engagement],
                      "lifecycle_stages": [list(s) for s in stages],
                      "cohort_retention_months_1_to_3": [list(r) for r in retention]},
                     indent=2, default=str))  # fmt: skip


if __name__ == "__main__":
    main()
