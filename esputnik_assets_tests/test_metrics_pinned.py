"""The pinned metrics (campaign_performance, daily_sales, campaign_roi, workflow_performance) and the crediting row,
on small hand-built raw tables, on DuckDB and on the BigQuery emulator.

Day D is 2026-01-10 in Europe/Kyiv (UTC+2): local 00:30 on D is still D-1 in UTC, local 00:30 on D+1 is still D
in UTC, so a filter on UTC days instead of local ones fails these tests. Every expected number below was worked out
by hand from the rows listed here.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from polars.testing import assert_frame_equal

from esputnik_assets.metrics.catalog import (
    CAMPAIGN_PERFORMANCE,
    CAMPAIGN_ROI,
    DAILY_SALES,
    WORKFLOW_PERFORMANCE,
    crediting_rows,
)
from esputnik_assets_tests.metric_fixtures import MetricBench, at, engine_name, make_bench  # noqa: F401

D = date(2026, 1, 10)
NEXT = D + timedelta(days=1)


def activity(contact: int, status: str, broadcast: int | None, media: str, when, campaign: str = "Group") -> dict:
    return {"contactId": contact, "activityStatus": status, "activity": status, "broadcastId": broadcast,
            "mediaType": media, "activityDateTime": when, "started": when, "campaignType": campaign}  # fmt: skip


ACTIVITIES = [
    # broadcast 7001 (Email): c1 opens twice and clicks; c2 sent just after local midnight; c3 bounces;
    # c4 unsubscribes and reports spam; c5's delivery falls on D+1 local time (D in UTC): not counted.
    activity(1, "SENT", 7001, "Email", at(D, 9)), activity(1, "DELIVERED", 7001, "Email", at(D, 9, 1)),
    activity(1, "RECEIVED", 7001, "Email", at(D, 10)), activity(1, "RECEIVED", 7001, "Email", at(D, 11)),
    activity(1, "CLICKED", 7001, "Email", at(D, 11, 5)),
    activity(2, "SENT", 7001, "Email", at(D, 0, 30)), activity(2, "DELIVERED", 7001, "Email", at(D, 0, 31)),
    activity(2, "RECEIVED", 7001, "Email", at(D, 13)),
    activity(3, "SENT", 7001, "Email", at(D, 9)), activity(3, "UNDELIVERED", 7001, "Email", at(D, 9, 2)),
    activity(4, "SENT", 7001, "Email", at(D, 9)), activity(4, "DELIVERED", 7001, "Email", at(D, 9, 3)),
    activity(4, "UNSUBSCRIBED", 7001, "Email", at(D, 15)), activity(4, "SPAM", 7001, "Email", at(D, 15, 1)),
    activity(5, "SENT", 7001, "Email", at(NEXT, 0, 29)), activity(5, "DELIVERED", 7001, "Email", at(NEXT, 0, 30)),
    # broadcast 7002 (Sms): nothing delivered, so every rate over delivered is null
    activity(6, "SENT", 7002, "Sms", at(D, 12)), activity(6, "UNDELIVERED", 7002, "Sms", at(D, 12, 1)),
    # broadcast 7003 is not in broadcasts: no name, the activities' media type
    activity(7, "SENT", 7003, "Viber", at(D, 8)), activity(7, "DELIVERED", 7003, "Viber", at(D, 8, 1)),
    activity(7, "RECEIVED", 7003, "Viber", at(D, 8, 2)),
    # a triggered (IM) message without a broadcast: no campaign row
    activity(8, "DELIVERED", None, "Email", at(D, 16), "IM"), activity(8, "RECEIVED", None, "Email", at(D, 16, 5), "IM"),
    activity(8, "CLICKED", None, "Email", at(D, 16, 6), "IM"),
]
BROADCASTS = [
    {"id": 7001, "name": "Promo", "mediaType": "Email"},
    {"id": 7002, "name": "Flash", "mediaType": "Sms"},
    {"id": 7009, "name": "Idle", "mediaType": "Email"},  # no activity on D: no row
]
ORDERS = [
    {"orderId": 1, "contactId": 1, "Status": "DELIVERED", "totalCost": 100.0, "orderDate": at(D, 9)},
    {"orderId": 2, "contactId": 2, "Status": None, "totalCost": 50.5, "orderDate": at(D, 12)},
    {"orderId": 3, "contactId": 3, "Status": "CANCELED", "totalCost": 80.0, "orderDate": at(D, 13)},
    {"orderId": 4, "contactId": 4, "Status": "IN PROGRESS", "totalCost": 20.0, "orderDate": at(D, 0, 15)},
    {"orderId": 5, "contactId": 5, "Status": "DELIVERED", "totalCost": 999.0, "orderDate": at(NEXT, 0, 15)},
]
ITEMS = [
    {"orderId": 1, "quantity": 2, "orderDate": at(D, 9)}, {"orderId": 1, "quantity": 1, "orderDate": at(D, 9)},
    {"orderId": 2, "quantity": 3, "orderDate": at(D, 12)}, {"orderId": 3, "quantity": 5, "orderDate": at(D, 13)},
    {"orderId": 4, "quantity": 1, "orderDate": at(D, 0, 15)}, {"orderId": 5, "quantity": 7, "orderDate": at(NEXT, 0, 15)},
]


def revenue(order: int, cost: float, broadcast: int | None, media: str, instance: int | None, when, touched=None,
            workflow: int | None = None) -> dict:
    """A revenue row: the order (orderId, totalCost, orderDate `when`) claimed by the message sent at `touched`."""
    return {"orderId": order, "totalCost": cost, "broadcastId": broadcast, "mediaType": media,
            "messageInstanceId": instance, "orderDate": when, "activityDateTime": touched,
            "workflowId": workflow}  # fmt: skip


REVENUE = [
    # order 1 is claimed by three messages: 7001 twice (instances 11 at 08:00, 12 at 08:30) and 7002 (07:00).
    # Its crediting row is the latest touch, instance 12 of 7001: one order, one credit, to 7001.
    revenue(1, 100.0, 7001, "Email", 11, at(D, 9), at(D, 8)), revenue(1, 100.0, 7001, "Email", 12, at(D, 9), at(D, 8, 30)),
    revenue(1, 100.0, 7002, "Sms", 13, at(D, 9), at(D, 7)),
    # order 2: 7001 at 10:00, then at 11:00 both a workflow message without broadcast (instance 22) and 7004 (an
    # unknown broadcast, WebPush, instance 23): a tie on activityDateTime, won by the greater instance, 23 -> 7004.
    revenue(2, 50.5, 7001, "Email", 21, at(D, 12), at(D, 10)),
    revenue(2, 50.5, None, "Email", 22, at(D, 12), at(D, 11), workflow=901),
    revenue(2, 50.5, 7004, "WebPush", 23, at(D, 12), at(D, 11)),
    revenue(5, 999.0, 7001, "Email", 51, at(NEXT, 0, 15), at(D, 20)),  # ordered on D+1 local: not D's
]
COSTS = {"Email": 0.01, "Sms": 0.5}


@pytest.fixture
def bench(engine_name, request, tmp_path) -> MetricBench:  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path, cost_per_message=COSTS)
    for dataset, rows in (("contactActivities", ACTIVITIES), ("broadcasts", BROADCASTS), ("orders", ORDERS),
                          ("orderItems", ITEMS), ("revenue", REVENUE)):  # fmt: skip
        bench.load(dataset, rows)
    return bench


def by(rows: list[dict], key: str) -> dict:
    return {row[key]: row for row in rows}


def test_campaign_performance(bench):
    bench.run(CAMPAIGN_PERFORMANCE, D)
    rows = by(bench.rows(CAMPAIGN_PERFORMANCE), "broadcastId")
    assert set(rows) == {7001, 7002, 7003}
    promo = rows[7001]
    assert (promo["date"], promo["name"], promo["mediaType"]) == (D, "Promo", "Email")
    assert [promo[k] for k in ("sent", "delivered", "undelivered", "opened", "clicked", "unsubscribed", "spam")] == [
        4, 3, 1, 2, 1, 1, 1,
    ]
    assert promo["delivery_rate"] == pytest.approx(0.75)
    assert promo["open_rate"] == pytest.approx(2 / 3)
    assert promo["click_rate"] == pytest.approx(1 / 3)
    assert promo["click_to_open_rate"] == pytest.approx(0.5)
    assert promo["unsubscribe_rate"] == pytest.approx(1 / 3)
    assert promo["spam_rate"] == pytest.approx(1 / 3)
    flash = rows[7002]
    assert (flash["sent"], flash["delivered"], flash["undelivered"], flash["delivery_rate"]) == (1, 0, 1, 0.0)
    assert [flash[k] for k in ("open_rate", "click_rate", "click_to_open_rate", "unsubscribe_rate", "spam_rate")] == [
        None, None, None, None, None,
    ]
    unknown = rows[7003]
    assert (unknown["name"], unknown["mediaType"], unknown["opened"]) == (None, "Viber", 1)
    assert (unknown["open_rate"], unknown["click_rate"], unknown["click_to_open_rate"]) == (1.0, 0.0, 0.0)


def test_daily_sales(bench):
    bench.run(DAILY_SALES, D)
    bench.run(DAILY_SALES, D + timedelta(days=2))  # a day without orders
    day, empty = bench.rows(DAILY_SALES)
    assert day["date"] == D
    assert (day["orders"], day["canceled_orders"], day["items"]) == (3, 1, 7)
    assert day["revenue"] == pytest.approx(170.5)
    assert day["average_order_value"] == pytest.approx(170.5 / 3)
    assert day["attributed_revenue"] == pytest.approx(150.5)
    assert day["attributed_share"] == pytest.approx(150.5 / 170.5)
    assert empty == {
        "date": D + timedelta(days=2), "orders": 0, "revenue": 0.0, "average_order_value": None, "items": 0,
        "canceled_orders": 0, "attributed_revenue": 0.0, "attributed_share": None,
    }  # fmt: skip


def test_campaign_roi(bench):
    bench.run(CAMPAIGN_ROI, D)
    rows = by(bench.rows(CAMPAIGN_ROI), "broadcastId")
    # 7002 delivered nothing on D (c6 UNDELIVERED) and its claim on order 1 lost to a later touch: no row.
    assert set(rows) == {7001, 7003, 7004}
    promo = rows[7001]  # delivered c1, c2, c4 (c5's delivery is D+1 local); credited order 1 only (100.0)
    assert (promo["mediaType"], promo["delivered"], promo["attributed_orders"]) == ("Email", 3, 1)
    assert promo["attributed_revenue"] == pytest.approx(100.0)
    assert promo["cost"] == pytest.approx(0.03)  # 3 x Email 0.01
    assert promo["roi"] == pytest.approx((100.0 - 0.03) / 0.03)
    assert promo["revenue_per_delivered"] == pytest.approx(100.0 / 3)
    viber = rows[7003]  # delivered c7, no credited order; Viber has no configured cost
    assert (viber["mediaType"], viber["delivered"], viber["attributed_orders"], viber["attributed_revenue"]) == (
        "Viber", 1, 0, 0.0,
    )
    assert (viber["cost"], viber["roi"], viber["revenue_per_delivered"]) == (0.0, None, 0.0)
    webpush = rows[7004]  # no activity, not in broadcasts: credited order 2 (50.5), mediaType from its revenue row
    assert (webpush["mediaType"], webpush["delivered"], webpush["attributed_orders"]) == ("WebPush", 0, 1)
    assert (webpush["attributed_revenue"], webpush["cost"], webpush["roi"], webpush["revenue_per_delivered"]) == (
        50.5, 0.0, None, None,
    )
    # one credit per order: the broadcasts' credited revenue (100 + 50.5) is the day's attributed revenue, not more
    bench.run(DAILY_SALES, D)
    [sales] = bench.rows(DAILY_SALES)
    assert sum(r["attributed_revenue"] for r in rows.values()) == pytest.approx(sales["attributed_revenue"]) == 150.5


def tie(order: int, broadcast: int | None, instance: int | None, touched, cost: float = 10.0) -> dict:
    return revenue(order, cost, broadcast, "Email", instance, at(D, 12), touched)


TIES = [
    # 10: the latest activityDateTime wins (09:30 over 09:00), whatever its instance or broadcast; its totalCost counts
    tie(10, 100, 9, at(D, 9)), tie(10, 101, 1, at(D, 9, 30), 12.0),
    # 11: a null activityDateTime loses to any value
    tie(11, 110, 99, None), tie(11, 111, 1, at(D, 9)),
    # 12: same activityDateTime: the greatest messageInstanceId (6 over 5), though its broadcastId is the smaller
    tie(12, 120, 6, at(D, 9)), tie(12, 121, 5, at(D, 9)),
    # 13: same activityDateTime: a null messageInstanceId loses to any value
    tie(13, 131, None, at(D, 9)), tie(13, 130, 1, at(D, 9)),
    # 14: same activityDateTime and instance: the greatest broadcastId
    tie(14, 140, 7, at(D, 9)), tie(14, 141, 7, at(D, 9)),
    # 15: same activityDateTime and instance: a null broadcastId (a workflow message) loses to any value
    tie(15, None, 7, at(D, 9)), tie(15, 150, 7, at(D, 9)),
    # 16: all of activityDateTime and messageInstanceId null: the greatest broadcastId
    tie(16, 160, None, None), tie(16, 161, None, None),
    # 17: ordered on D+1 local: not among D's crediting rows
    revenue(17, 10.0, 170, "Email", 1, at(NEXT, 0, 15), at(D, 9)),
]


def test_the_crediting_row_breaks_ties_as_pinned(engine_name, request, tmp_path):  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path)
    bench.load("revenue", TIES)
    with bench.warehouse.open() as engine:
        credited, _ = engine.fetch(
            f"SELECT orderId, broadcastId, totalCost FROM {crediting_rows('@start', '@end')} AS c ORDER BY orderId",
            bench.warehouse.params(D),
        )
    assert credited.rows() == [
        (10, 101, 12.0), (11, 111, 10.0), (12, 120, 10.0), (13, 130, 10.0), (14, 141, 10.0), (15, 150, 10.0),
        (16, 161, 10.0),
    ]
    # campaign_roi credits each order once, to its crediting row's broadcast: one order and 10.0 (12.0 for 101) each
    bench.run(CAMPAIGN_ROI, D)
    rows = by(bench.rows(CAMPAIGN_ROI), "broadcastId")
    assert {b: (r["attributed_orders"], r["attributed_revenue"]) for b, r in rows.items()} == {
        101: (1, 12.0), 111: (1, 10.0), 120: (1, 10.0), 130: (1, 10.0), 141: (1, 10.0), 150: (1, 10.0),
        161: (1, 10.0),
    }


def test_rerunning_a_day_replaces_it(bench):
    bench.run(CAMPAIGN_PERFORMANCE, D)
    first = bench.table(CAMPAIGN_PERFORMANCE)
    bench.run(CAMPAIGN_PERFORMANCE, D)
    assert bench.table(CAMPAIGN_PERFORMANCE).equals(first)


@pytest.mark.slow
def test_both_engines_agree_value_for_value(request, tmp_path):
    tables = []
    for engine in ("duckdb", "bigquery"):
        bench = make_bench(engine, request, tmp_path, cost_per_message=COSTS)
        for dataset, rows in (("contactActivities", ACTIVITIES), ("broadcasts", BROADCASTS), ("orders", ORDERS),
                              ("orderItems", ITEMS), ("revenue", REVENUE)):  # fmt: skip
            bench.load(dataset, rows)
        for metric in (CAMPAIGN_PERFORMANCE, DAILY_SALES, CAMPAIGN_ROI):
            for day in (D - timedelta(days=1), D, NEXT):
                bench.run(metric, day)
        tables.append([bench.table(m) for m in (CAMPAIGN_PERFORMANCE, DAILY_SALES, CAMPAIGN_ROI)])
    for duck, bq in zip(*tables, strict=True):
        assert duck.height > 0
        assert_frame_equal(duck, bq, check_exact=False, rel_tol=1e-12)


def test_bigquery_metric_tables_are_partitioned_by_date_with_described_columns(request, tmp_path):
    bench = make_bench("bigquery", request, tmp_path)
    bench.load("orders", ORDERS)
    bench.run(DAILY_SALES, D)
    warehouse = bench.warehouse
    table = bench.client.get_table(f"{bench.client.project}.{warehouse.metrics_dataset}.daily_sales")
    assert table.time_partitioning.field == "date"
    assert [f.name for f in table.schema] == DAILY_SALES.table.column_names
    assert all(f.description for f in table.schema)


# ---- workflow_performance ----------------------------------------------------------------------------------------


def flow(contact: int, status: str, workflow: str, media: str, when, broadcast: int | None = None) -> dict:
    """An activity of a triggered message: workflowId is a string in contactActivities."""
    return {"contactId": contact, "activityStatus": status, "workflowId": workflow, "mediaType": media,
            "activityDateTime": when, "broadcastId": broadcast, "campaignType": "IM"}  # fmt: skip


FLOW_ACTIVITIES = [
    # workflow 901 by Email on D: c1 delivered, opens twice, clicks; c2 delivered; c3 delivered, unsubscribes;
    # c4 delivered by a message that has a broadcastId too (it counts for the workflow); c9 opens at 00:30 local
    # (still D-1 in UTC) a message delivered before D.
    flow(1, "DELIVERED", "901", "Email", at(D, 9)), flow(1, "RECEIVED", "901", "Email", at(D, 10)),
    flow(1, "RECEIVED", "901", "Email", at(D, 11)), flow(1, "CLICKED", "901", "Email", at(D, 11, 5)),
    flow(2, "DELIVERED", "901", "Email", at(D, 9)),
    flow(3, "DELIVERED", "901", "Email", at(D, 9)), flow(3, "UNSUBSCRIBED", "901", "Email", at(D, 15)),
    flow(4, "DELIVERED", "901", "Email", at(D, 9), broadcast=7001),
    flow(9, "RECEIVED", "901", "Email", at(D, 0, 30)),
    # workflow 901 by Sms: c5 delivered and clicks, no open event
    flow(5, "DELIVERED", "901", "Sms", at(D, 12)), flow(5, "CLICKED", "901", "Sms", at(D, 12, 10)),
    # workflow 902 has activity on D-1 and D+1 local only (D+1 00:20 local is D in UTC): none on D
    flow(6, "DELIVERED", "902", "Email", at(D - timedelta(days=1), 23, 50)),
    flow(6, "RECEIVED", "902", "Email", at(NEXT, 0, 20)),
    # a broadcast's activity without workflowId: not a workflow's
    activity(7, "DELIVERED", 7001, "Email", at(D, 9)),
]
FLOW_REVENUE = [
    revenue(31, 40.0, None, "Email", 1, at(D, 14), at(D, 10), workflow=901),  # credited to 901 Email
    # 32: the workflow touched first, broadcast 7001 last: credited to 7001, not to the workflow
    revenue(32, 25.0, None, "Email", 2, at(D, 14), at(D, 9), workflow=901),
    revenue(32, 25.0, 7001, "Email", 3, at(D, 14), at(D, 11)),
    revenue(33, 60.0, None, "Email", 4, at(D, 15), at(D, 8), workflow=902),  # 902: credit, no activity on D
    revenue(34, 5.0, None, "Sms", 5, at(D, 13), at(D, 12), workflow=901),  # 901 Sms
    revenue(35, 70.0, None, "Email", 6, at(NEXT, 0, 10), at(D, 12), workflow=901),  # ordered D+1 local: not D's
    # 36: two rows of one order, both 901 Email: one order, one credit (instance 8 wins the tie)
    revenue(36, 15.0, None, "Email", 7, at(D, 16), at(D, 12), workflow=901),
    revenue(36, 15.0, None, "Email", 8, at(D, 16), at(D, 12), workflow=901),
]


def test_workflow_performance(engine_name, request, tmp_path):  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path)
    bench.load("contactActivities", FLOW_ACTIVITIES)
    bench.load("revenue", FLOW_REVENUE)
    bench.run(WORKFLOW_PERFORMANCE, D)
    rows = {(r["workflowId"], r["mediaType"]): r for r in bench.rows(WORKFLOW_PERFORMANCE)}
    counts = ("delivered", "unique_opens", "unique_clicks", "unsubscribed")
    rates = ("open_rate", "click_rate", "click_to_open_rate")
    credit = ("attributed_orders", "attributed_revenue")
    assert {key: tuple(r[c] for c in (*counts, *rates, *credit)) for key, r in rows.items()} == {
        # delivered c1..c4; opens c1, c9 (2 / 4); clicks c1 (1 / 4, 1 / 2); unsubscribed c3; orders 31 + 36
        ("901", "Email"): (4, 2, 1, 1, 0.5, 0.25, 0.5, 2, 55.0),
        # a click without an open: open_rate 0 / 1, click_rate 1 / 1, click_to_open 1 / 0 null; order 34
        ("901", "Sms"): (1, 0, 1, 0, 0.0, 1.0, None, 1, 5.0),
        # credit but no activity on D: zero counts, null rates, order 33
        ("902", "Email"): (0, 0, 0, 0, None, None, None, 1, 60.0),
    }
    assert {r["date"] for r in rows.values()} == {D}
