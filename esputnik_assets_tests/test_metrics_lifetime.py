"""contact_lifetime (pinned, with the designed RFM scores and lifecycle stage) and order_cohorts (designed), on
hand-built raw tables, on DuckDB and on the BigQuery emulator.

Day D is 2026-03-15 in Europe/Kyiv (UTC+2 until 29 March): local 00:30 on D is still D-1 in UTC, local 00:10 on D+1
is still D in UTC, so a filter or a date taken in UTC instead of local time fails these tests. Every expected value
was worked out by hand from the rows listed here; the reasoning is in the comments.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from polars.testing import assert_frame_equal

from esputnik_assets.metrics.catalog import CONTACT_LIFETIME, ORDER_COHORTS
from esputnik_assets_tests.metric_fixtures import MetricBench, at, engine_name, make_bench  # noqa: F401

D = date(2026, 3, 15)


def ago(days: int, hour: int = 12, minute: int = 0):
    return at(D - timedelta(days=days), hour, minute)


def order(order_id: int, contact: int | None, when, cost: float, status: str | None = "DELIVERED") -> dict:
    return {"orderId": order_id, "contactId": contact, "orderDate": when, "totalCost": cost, "Status": status}


def credit(order_id: int, cost: float, when, instance: int, broadcast: int | None = 7001) -> dict:
    return {"orderId": order_id, "totalCost": cost, "orderDate": when, "messageInstanceId": instance,
            "broadcastId": broadcast, "mediaType": "Email", "activityDateTime": when}  # fmt: skip


LIFETIME_ORDERS = [
    # c1: three orders, one of them stored as two rows (a status update); o3 at local 23:30 on D (21:30 UTC): in D
    order(1, 1, ago(20), 100.0, "IN PROGRESS"), order(1, 1, ago(20), 100.0, "DELIVERED"),
    order(2, 1, ago(10), 50.0), order(3, 1, at(D, 23, 30), 30.0, None),
    # c2: only canceled orders; o5 was in progress, then canceled (any CANCELED row cancels the order)
    order(4, 2, ago(5, 9), 40.0, "CANCELED"),
    order(5, 2, ago(3, 9), 25.0, "IN PROGRESS"), order(5, 2, ago(3, 9), 25.0, "CANCELED"),
    # c3: an order at local 23:59 on D-1 (one day ago), and one at local 00:10 on D+1 (still D in UTC): not counted
    order(6, 3, ago(1, 23, 59), 70.0), order(7, 3, at(D + timedelta(days=1), 0, 10), 999.0),
    order(8, 4, at(D + timedelta(days=2), 12), 999.0),  # c4 orders only after D: no row
    order(9, 5, at(D, 0, 30), 10.0),  # c5: local 00:30 on D, 22:30 UTC on D-1: D, 0 days ago
    order(10, 6, ago(100), 20.0), order(11, 6, ago(40), 20.0),  # c6: a 60-day rhythm, 40 days since
    order(12, 7, ago(45), 500.0),  # c7: one order 45 days ago
    order(13, 8, ago(200), 5.0),  # c8: one order 200 days ago
    order(14, 9, ago(14), 10.0), order(15, 9, ago(9), 10.0),  # c9: a 5-day rhythm (floored at 7), 9 days since
    order(16, 10, ago(30), 15.0), order(17, 10, ago(20), 15.0),  # c10: a 10-day rhythm, 20 days since
    order(18, None, ago(2), 1000.0),  # no contact: no row
]
LIFETIME_REVENUE = [
    # o2 claimed by two messages: one crediting row; its revenue row says 45, the order 50: orders.totalCost counts
    credit(2, 45.0, ago(10), 21), credit(2, 45.0, ago(10), 22, broadcast=None),
    credit(4, 40.0, ago(5, 9), 41),  # a canceled order with credit: not attributed revenue
    credit(6, 70.0, ago(1, 23, 59), 61), credit(7, 999.0, at(D + timedelta(days=1), 0, 10), 71),
]


@pytest.fixture
def lifetime(engine_name, request, tmp_path) -> MetricBench:  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path)
    bench.load("orders", LIFETIME_ORDERS)
    bench.load("revenue", LIFETIME_REVENUE)
    bench.run(CONTACT_LIFETIME, D - timedelta(days=1), D)
    return bench


def by_contact(bench: MetricBench, day: date) -> dict[int, dict]:
    return {row["contactId"]: row for row in bench.rows(CONTACT_LIFETIME, day)}


def test_contact_lifetime_sums_each_contacts_orders_up_to_the_end_of_d(lifetime):
    rows = by_contact(lifetime, D)
    assert set(rows) == {1, 2, 3, 5, 6, 7, 8, 9, 10}  # c4 only after D, o18 without a contact
    one = rows[1]
    assert (one["date"], one["first_order_at"], one["last_order_at"]) == (D, ago(20), at(D, 23, 30))
    # o1 (two rows) + o2 + o3: 3 orders, 100 + 50 + 30 = 180; credited: o2 alone, at its orders.totalCost 50
    assert [one[k] for k in ("orders", "revenue", "average_order_value", "canceled_orders")] == [3, 180.0, 60.0, 0]
    assert (one["attributed_revenue"], one["organic_revenue"]) == (50.0, 130.0)
    # last order on local D: 0 days; (D - (D-20)) / (3 - 1) = 10 days between orders
    assert (one["days_since_last_order"], one["average_days_between_orders"]) == (0, 10.0)


def test_a_contact_with_only_canceled_orders(lifetime):
    two = by_contact(lifetime, D)[2]
    assert {k: v for k, v in two.items() if k not in ("date", "contactId")} == {
        "first_order_at": None, "last_order_at": None, "orders": 0, "revenue": 0.0, "average_order_value": None,
        "canceled_orders": 2, "attributed_revenue": 0.0, "organic_revenue": 0.0, "days_since_last_order": None,
        "average_days_between_orders": None, "recency_score": None, "frequency_score": None, "monetary_score": None,
        "rfm_score": None, "lifecycle_stage": "canceled_only",
    }  # fmt: skip


def test_days_since_the_last_order_count_local_days_and_later_orders_wait(lifetime):
    rows = by_contact(lifetime, D)
    three, five = rows[3], rows[5]
    # c3: 23:59 local on D-1 is one day ago; o7 at 00:10 local on D+1 (22:10 UTC on D) is after D
    assert (three["orders"], three["revenue"], three["last_order_at"], three["days_since_last_order"]) == (
        1, 70.0, ago(1, 23, 59), 1,
    )
    assert (three["attributed_revenue"], three["organic_revenue"]) == (70.0, 0.0)
    # c5: 00:30 local on D is D (a UTC date would say D-1: 1 day)
    assert five["days_since_last_order"] == 0
    earlier = by_contact(lifetime, D - timedelta(days=1))
    assert 5 not in earlier  # 22:30 UTC on D-1 is after the end of local D-1
    # on D-1, c1 has o1 and o2 only; its last order was 10 - 1 = 9 days before D-1
    assert (earlier[1]["orders"], earlier[1]["revenue"], earlier[1]["days_since_last_order"]) == (2, 150.0, 9)


def test_rfm_scores_are_tie_sharing_quintiles_among_buyers(lifetime):
    rows = by_contact(lifetime, D)
    # The 8 buyers: (days since, orders, revenue) c1 (0, 3, 180), c3 (1, 1, 70), c5 (0, 1, 10), c6 (40, 2, 40),
    # c7 (45, 1, 500), c8 (200, 1, 5), c9 (9, 2, 20), c10 (20, 2, 30). score = 1 + floor(5 x worse / 8):
    # recency, worse = more days: c1, c5 6 -> 4; c3 5 -> 4; c9 4 -> 3; c10 3 -> 2; c6 2 -> 2; c7 1 -> 1; c8 0 -> 1.
    # frequency, worse = fewer orders: 1 order 0 -> 1; 2 orders 4 -> 3; c1 7 -> 5.
    # monetary, worse = less revenue: c8 0 -> 1; c5 1 -> 1; c9 2 -> 2; c10 3 -> 2; c6 4 -> 3; c3 5 -> 4; c1 6 -> 4;
    # c7 7 -> 5.
    assert {c: rows[c]["rfm_score"] for c in rows} == {
        1: "454", 2: None, 3: "414", 5: "411", 6: "233", 7: "115", 8: "111", 9: "332", 10: "232",
    }  # fmt: skip
    assert (rows[7]["recency_score"], rows[7]["frequency_score"], rows[7]["monetary_score"]) == (1, 1, 5)


def test_lifecycle_stages_follow_recency_and_rhythm(lifetime):
    rows = by_contact(lifetime, D)
    # c1: E = 10, 0 <= 15 active; c3, c5: one order within 30 days, new; c6: E = 60, 40 <= 90 active;
    # c7: one order, 45 <= 90 at_risk; c8: one order, 200 > 90 lapsed; c9: rhythm 5 floored to E = 7, 9 <= 10.5
    # active; c10: E = 10, 20 > 15 and <= 30 at_risk.
    assert {c: rows[c]["lifecycle_stage"] for c in rows} == {
        1: "active", 2: "canceled_only", 3: "new", 5: "new", 6: "active", 7: "at_risk", 8: "lapsed", 9: "active",
        10: "at_risk",
    }  # fmt: skip
    assert (rows[6]["average_days_between_orders"], rows[9]["average_days_between_orders"]) == (60.0, 5.0)


def test_contact_lifetime_keeps_the_retention_setting(lifetime):
    lifetime.warehouse = lifetime.warehouse.model_copy(update={"snapshot_retention_days": 1})
    extra = lifetime.run(CONTACT_LIFETIME, D)
    assert extra["snapshot_rows_pruned"] == 8  # D-1's snapshot: c1, c2, c3, c6, c7, c8, c9, c10
    assert {row["date"] for row in lifetime.rows(CONTACT_LIFETIME)} == {D}


# ---- order_cohorts ----------------------------------------------------------------------------------------------

COHORT_ORDERS = [
    # c1: first order at local 00:30 on 1 January (22:30 UTC on 31 December): the January cohort
    order(1, 1, at(date(2026, 1, 1), 0, 30), 10.0),
    order(2, 1, at(date(2026, 1, 20), 12), 20.0, "IN PROGRESS"),
    order(2, 1, at(date(2026, 1, 20), 12), 20.0, "CANCELED"),  # o2 canceled by its update
    order(3, 1, at(date(2026, 3, 10), 12), 30.0),
    order(4, 2, at(date(2026, 1, 15), 12), 5.0, None), order(5, 2, at(date(2026, 3, 2), 12), 7.0),  # c2: January
    # c3: local 00:15 on 1 February (still January in UTC): the February cohort; a canceled order; one on D at 23:00
    order(6, 3, at(date(2026, 2, 1), 0, 15), 100.0), order(7, 3, at(date(2026, 2, 10), 12), 50.0, "CANCELED"),
    order(8, 3, at(D, 23), 40.0),
    # c4: a canceled order in January, its first order that counts in February
    order(9, 4, at(date(2026, 1, 5), 12), 60.0, "CANCELED"), order(10, 4, at(date(2026, 2, 20), 12), 8.0),
    order(11, 5, at(D + timedelta(days=1), 0, 10), 99.0),  # c5: local D+1 (D in UTC): after D, no cohort
    order(12, 6, at(date(2026, 3, 3), 12), 12.0, "INITIALIZED"), order(12, 6, at(date(2026, 3, 3), 12), 12.0),  # March
]

COHORT_COLUMNS = ("cohort_month", "months_since", "cohort_customers", "active_customers", "orders", "revenue",
                  "retention_rate")  # fmt: skip


def cohort_rows(bench: MetricBench, day: date) -> list[tuple]:
    return sorted(tuple(row[k] for k in COHORT_COLUMNS) for row in bench.rows(ORDER_COHORTS, day))


def test_order_cohorts_as_of_d(engine_name, request, tmp_path):  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path)
    bench.load("orders", COHORT_ORDERS)
    bench.run(ORDER_COHORTS, date(2026, 2, 10), D)
    jan, feb, mar = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)
    assert cohort_rows(bench, D) == [
        # January: c1, c2. Month 0: o1 10 + o4 5 (o2 canceled); month 1: nothing; month 2: o3 30 + o5 7
        (jan, 0, 2, 2, 2, 15.0, 1.0), (jan, 1, 2, 0, 0, 0.0, 0.0), (jan, 2, 2, 2, 2, 37.0, 1.0),
        # February: c3, c4. Month 0: o6 100 + o10 8 (o7 canceled); month 1: o8 on D at 23:00 local
        (feb, 0, 2, 2, 2, 108.0, 1.0), (feb, 1, 2, 1, 1, 40.0, 0.5),
        (mar, 0, 1, 1, 1, 12.0, 1.0),  # March: c6, o12 once for its two rows
    ]
    # as of 10 February: months up to February; c4's first order (20 February) is later, so February holds c3 only
    assert cohort_rows(bench, date(2026, 2, 10)) == [
        (jan, 0, 2, 2, 2, 15.0, 1.0), (jan, 1, 2, 0, 0, 0.0, 0.0), (feb, 0, 1, 1, 1, 100.0, 1.0),
    ]


@pytest.mark.slow
def test_both_engines_agree_value_for_value(request, tmp_path):
    tables = []
    for engine in ("duckdb", "bigquery"):
        bench = make_bench(engine, request, tmp_path)
        bench.load("orders", LIFETIME_ORDERS + [{**row, "orderId": row["orderId"] + 100} for row in COHORT_ORDERS])
        bench.load("revenue", LIFETIME_REVENUE)
        for metric in (CONTACT_LIFETIME, ORDER_COHORTS):
            bench.run(metric, date(2026, 2, 10), D - timedelta(days=1), D)
        tables.append([bench.table(m) for m in (CONTACT_LIFETIME, ORDER_COHORTS)])
    for duck, bq in zip(*tables, strict=True):
        assert duck.height > 0
        assert_frame_equal(duck, bq, check_exact=False, rel_tol=1e-12)
