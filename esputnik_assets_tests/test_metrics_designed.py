"""The designed metrics pinned to their documented formulas, on hand-built raw tables, on both engines."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from esputnik_assets.metrics.catalog import (
    CHANNEL_ENGAGEMENT,
    CONTACT_DAILY,
    CONTACT_PROFILES,
    CONTACT_SEGMENTS,
    CUSTOMER_JOURNEYS,
    PRODUCT_AFFINITY,
)
from esputnik_assets.metrics.churn import CHURN_RISK
from esputnik_assets.metrics.resource import DuckDBMetricsWarehouse
from esputnik_assets.metrics.wiring import metrics_for
from esputnik_assets_tests.metric_fixtures import MetricBench, at, engine_name, make_bench  # noqa: F401


def act(contact: int, status: str, media: str, when, broadcast: int | None = None) -> dict:
    return {"contactId": contact, "activityStatus": status, "mediaType": media, "activityDateTime": when,
            "broadcastId": broadcast}  # fmt: skip


def order(order_id: int, contact: int, when, cost: float = 10.0, status: str | None = "DELIVERED") -> dict:
    return {"orderId": order_id, "contactId": contact, "orderDate": when, "totalCost": cost, "Status": status}


def by(rows: list[dict], *keys: str) -> dict:
    return {tuple(row[k] for k in keys) if len(keys) > 1 else row[keys[0]]: row for row in rows}


# ---- channel_engagement -----------------------------------------------------------------------------------------

W = date(2026, 1, 10)


def test_channel_engagement_counts_totals_and_the_weighted_previous_week(engine_name, request, tmp_path):  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path)
    before = lambda days, hour, minute=0: at(W - timedelta(days=days), hour, minute)  # noqa: E731
    bench.load("contactActivities", [
        # D-8: outside D-7 .. D-1
        act(9, "DELIVERED", "Email", before(8, 9)), act(9, "RECEIVED", "Email", before(8, 10)),
        # D-7: delivered 2 (c2 at 00:30 local, 22:30 UTC of D-8: still D-7), opened 1 (c1 twice), clicked 0
        act(1, "DELIVERED", "Email", before(7, 9)), act(2, "DELIVERED", "Email", before(7, 0, 30)),
        act(1, "RECEIVED", "Email", before(7, 10)), act(1, "RECEIVED", "Email", before(7, 11)),
        # D-2: Sms sent only: no delivered or undelivered in the week
        act(6, "SENT", "Sms", before(2, 12)),
        # D-3: Viber, nothing on D: no Viber row on D
        act(7, "DELIVERED", "Viber", before(3, 12)),
        # D-1: delivered 4 (c4 at 23:30 local: still D-1), undelivered 1, opened 3, clicked 1
        *(act(c, "DELIVERED", "Email", before(1, 9)) for c in (1, 2, 3)),
        act(4, "DELIVERED", "Email", before(1, 23, 30)),
        act(5, "UNDELIVERED", "Email", before(1, 9)),
        *(act(c, "RECEIVED", "Email", before(1, 10)) for c in (1, 2, 3)), act(1, "CLICKED", "Email", before(1, 11)),
        # D: c1 (a triggered message, no broadcast) opens twice and clicks twice; c2, c3 delivered; c4 bounced
        act(1, "DELIVERED", "Email", at(W, 9)), act(1, "RECEIVED", "Email", at(W, 10)),
        act(1, "RECEIVED", "Email", at(W, 11)), act(1, "CLICKED", "Email", at(W, 11, 5)),
        act(1, "CLICKED", "Email", at(W, 11, 6)),
        act(2, "DELIVERED", "Email", at(W, 9), 7001), act(3, "DELIVERED", "Email", at(W, 9), 7001),
        act(4, "UNDELIVERED", "Email", at(W, 9), 7001),
        act(5, "SENT", "Sms", at(W, 12)), act(5, "UNDELIVERED", "Sms", at(W, 12, 1)),
    ])  # fmt: skip
    bench.run(CHANNEL_ENGAGEMENT, W)  # D alone, before any earlier day: the week is read from raw activities
    first = bench.rows(CHANNEL_ENGAGEMENT, W)
    bench.run(CHANNEL_ENGAGEMENT, W - timedelta(days=1), W - timedelta(days=7), W)  # a backfill in another order
    assert bench.rows(CHANNEL_ENGAGEMENT, W) == first
    rows = by(first, "mediaType")
    assert set(rows) == {"Email", "Sms"}
    email, sms = rows["Email"], rows["Sms"]
    assert [email[k] for k in ("delivered", "undelivered", "opened", "clicked")] == [3, 1, 1, 1]
    totals = ("total_delivered", "total_undelivered", "total_opens", "total_clicks", "total_spam")
    assert [email[k] for k in totals] == [3, 1, 2, 2, 0]  # c1's second open and second click count again
    assert email["open_rate"] == pytest.approx(1 / 3)
    # The week D-7 .. D-1, day sums: delivered 2 + 4, undelivered 0 + 1, opened 1 + 3, clicked 0 + 1.
    assert email["delivery_rate_prev_7d"] == pytest.approx(6 / 7)
    assert email["open_rate_prev_7d"] == pytest.approx(4 / 6)  # the mean of daily rates would be (1/2 + 3/4) / 2
    assert email["click_rate_prev_7d"] == pytest.approx(1 / 6)
    assert email["click_to_open_rate_prev_7d"] == pytest.approx(1 / 4)
    assert (email["unsubscribe_rate_prev_7d"], email["spam_rate_prev_7d"]) == (0.0, 0.0)
    assert (sms["sent"], sms["total_sent"], sms["delivery_rate"], sms["open_rate"]) == (1, 1, 0.0, None)
    assert (sms["delivery_rate_prev_7d"], sms["open_rate_prev_7d"]) == (None, None)  # sent only: denominators 0


# ---- contact_daily, contact_segments, contact_profiles ------------------------------------------------------------

S = date(2026, 4, 10)  # summer time in Kyiv (UTC+3)


def ago(days: int, hour: int = 12, minute: int = 0):
    return at(S - timedelta(days=days), hour, minute)


SEGMENT_ORDERS = [
    order(1, 1, ago(2), 10.0), order(2, 1, ago(5), 20.0), order(3, 1, ago(10), 30.0),  # champions
    order(4, 1, ago(1), 99.0, "CANCELED"),  # not counted
    order(5, 2, ago(20)), order(6, 2, ago(25)),  # loyal
    order(7, 3, ago(40)), order(8, 3, ago(60)),  # at risk
    order(9, 4, ago(5), 15.0, None),  # new: a null status is not canceled
    order(10, 5, ago(50)),  # hibernating
    order(11, 7, ago(95)),  # outside 90 days
    order(12, 8, ago(1), 5.0, "CANCELED"),  # only a canceled order: no orders
]
SEGMENT_ACTIVITY = [
    act(6, "RECEIVED", "Email", ago(3, 20)), act(6, "RECEIVED", "Email", ago(3, 20, 30)),
    act(6, "CLICKED", "Sms", ago(1, 8)),
    act(1, "RECEIVED", "Viber", ago(3, 9)), act(1, "RECEIVED", "Email", ago(3, 9, 30)),  # a tie: alphabetical
    act(1, "CLICKED", "Email", ago(2, 21)),
    act(7, "RECEIVED", "Email", ago(35)),  # outside 30 days
]
CONTACTS = [{"contactId": c, "languageCode": lang} for c, lang in
            ((1, "uk"), (2, "pl"), (3, "en"), (4, "uk"), (5, "de"), (6, "uk"), (7, "pl"), (8, "en"), (9, "uk"))]


def _segment_bench(engine_name, request, tmp_path) -> MetricBench:
    bench = make_bench(engine_name, request, tmp_path)
    bench.load("orders", SEGMENT_ORDERS)
    bench.load("contactActivities", SEGMENT_ACTIVITY)
    bench.load("contacts", CONTACTS)
    bench.load("devices", [
        {"deviceId": "d1", "contactId": 1, "deviceModel": "iPhone 15", "osType": "IOS", "osVersion": "17.5"},
        {"deviceId": "d2", "contactId": 1, "deviceModel": "Pixel 8", "osType": "ANDROID", "osVersion": "15"},
        {"deviceId": "d3", "contactId": 6, "deviceModel": "Pixel 8", "osType": "ANDROID", "osVersion": "15"},
    ])  # fmt: skip
    bench.load("events", [
        {"eventId": 1, "contactId": 1, "eventTypeKey": "productViewed", "occured": ago(2, 10)},
        {"eventId": 2, "contactId": 1, "eventTypeKey": "addedToCart", "occured": ago(1, 11)},
        {"eventId": 3, "contactId": 2, "eventTypeKey": "pageViewed", "occured": ago(40)},  # outside 30 days
    ])  # fmt: skip
    days = sorted({S - timedelta(days=d) for d in (1, 2, 3, 5, 10, 20, 25, 35, 40, 50, 60, 95)})
    for day in days:
        bench.run(CONTACT_DAILY, day)
    return bench


def test_contact_daily_sums_a_day_per_contact_and_channel(engine_name, request, tmp_path):  # noqa: F811
    bench = _segment_bench(engine_name, request, tmp_path)
    rows = bench.rows(CONTACT_DAILY, S - timedelta(days=3))
    assert by(rows, "contactId", "mediaType") .keys() == {(6, "Email"), (1, "Viber"), (1, "Email")}
    assert by(rows, "contactId", "mediaType")[(6, "Email")]["opened"] == 2
    buyers = by([r for r in bench.rows(CONTACT_DAILY, S - timedelta(days=1)) if r["mediaType"] is None], "contactId")
    assert buyers == {}  # the day's only orders were canceled
    [row] = [r for r in bench.rows(CONTACT_DAILY, S - timedelta(days=5)) if r["contactId"] == 4]
    assert (row["mediaType"], row["orders"], row["revenue"], row["last_order_at"]) == (None, 1, 15.0, ago(5))


def test_contact_segments_rfm_and_named_segments(engine_name, request, tmp_path):  # noqa: F811
    bench = _segment_bench(engine_name, request, tmp_path)
    bench.run(CONTACT_SEGMENTS, S)
    rows = by(bench.rows(CONTACT_SEGMENTS, S), "contactId")
    assert {c: r["segment"] for c, r in rows.items()} == {
        1: "champions", 2: "loyal", 3: "at_risk", 4: "new", 5: "hibernating", 6: "engaged_prospect",
        7: "unengaged", 8: "unengaged", 9: "unengaged",
    }  # fmt: skip
    assert [rows[1][k] for k in ("recency_days", "frequency", "monetary", "opens_30d", "clicks_30d")] == [
        2, 3, 60.0, 2, 1,
    ]
    assert rows[1]["preferred_channel"] == "Email"  # Email 2 actions (open + click) beats Viber 1
    assert (rows[2]["recency_days"], rows[3]["recency_days"], rows[5]["frequency"]) == (20, 40, 1)
    assert (rows[6]["opens_30d"], rows[6]["clicks_30d"], rows[6]["preferred_channel"]) == (2, 1, "Email")
    assert (rows[7]["recency_days"], rows[7]["frequency"], rows[7]["opens_30d"], rows[7]["preferred_channel"]) == (
        None, 0, 0, None,
    )


def test_contact_segments_keep_the_retention_setting(engine_name, request, tmp_path):  # noqa: F811
    bench = _segment_bench(engine_name, request, tmp_path)
    bench.warehouse = bench.warehouse.model_copy(update={"snapshot_retention_days": 3})
    for day in (S - timedelta(days=4), S - timedelta(days=3), S - timedelta(days=1), S):
        extra = bench.run(CONTACT_SEGMENTS, day)
    assert extra["snapshot_rows_pruned"] == 9  # D-3 (9 contacts) is older than the 3 days D-2 .. D
    assert sorted({r["date"] for r in bench.rows(CONTACT_SEGMENTS)}) == [S - timedelta(days=1), S]


def test_contact_profiles(engine_name, request, tmp_path):  # noqa: F811
    bench = _segment_bench(engine_name, request, tmp_path)
    bench.run(CONTACT_SEGMENTS, S)
    bench.run(CONTACT_PROFILES, S)
    rows = by(bench.rows(CONTACT_PROFILES, S), "contactId")
    one = rows[1]
    assert (one["language"], one["preferred_channel"], one["most_active_hour"], one["device_count"]) == (
        "uk", "Email", 9, 2,
    )
    assert (one["device_models"], one["operating_systems"]) == ("Pixel 8, iPhone 15", "ANDROID 15, IOS 17.5")
    assert (one["last_event_type"], one["last_event_at"]) == ("addedToCart", ago(1, 11))
    assert (rows[6]["most_active_hour"], rows[6]["device_count"]) == (20, 1)
    assert (rows[2]["last_event_type"], rows[2]["most_active_hour"], rows[2]["device_count"]) == (None, None, 0)


# ---- product_affinity -------------------------------------------------------------------------------------------


def test_product_affinity_support_confidence_lift(engine_name, request, tmp_path):  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path)
    baskets = {1: ["A", "B", "C", "A"], 2: ["A", "B", None], 3: ["A", "C"], 4: ["B", "C"], 5: ["A"], 6: ["A", "B"]}
    days = {1: 1, 2: 10, 3: 20, 4: 30, 5: 89, 6: 90}  # order 6 is 90 days before D: outside D-89 .. D
    bench.load("orders", [order(o, o, ago(days[o]), status="CANCELED" if o == 3 else "DELIVERED") for o in baskets])
    bench.load("orderItems", [
        {"orderId": o, "externalProductId": p, "name": "Kettle" if p is None else f"Product {p}", "quantity": 1,
         "orderDate": ago(days[o])}
        for o, products in baskets.items() for p in products
    ])  # fmt: skip
    bench.run(PRODUCT_AFFINITY, S)
    rows = by(bench.rows(PRODUCT_AFFINITY, S), "product", "other_product")
    assert set(rows) == {("A", "B"), ("B", "A"), ("B", "C"), ("C", "B")}  # A+C once, Kettle once: below 2
    a_b, c_b = rows[("A", "B")], rows[("C", "B")]
    assert (a_b["pair_orders"], a_b["product_orders"], a_b["other_orders"], a_b["baskets"]) == (2, 3, 3, 4)
    assert (a_b["support"], a_b["confidence"], a_b["lift"]) == pytest.approx((0.5, 2 / 3, 8 / 9))
    assert (c_b["confidence"], c_b["lift"]) == pytest.approx((1.0, 4 / 3))
    assert rows[("B", "C")]["lift"] == pytest.approx(4 / 3)


# ---- customer_journeys ------------------------------------------------------------------------------------------


def credit(order_id: int, contact: int, media: str, touched, when, cost: float) -> dict:
    """A revenue row: eSputnik credits the order to a message of `media` touched at `touched`."""
    return {"orderId": order_id, "contactId": contact, "mediaType": media, "activityDateTime": touched,
            "orderDate": when, "totalCost": cost}  # fmt: skip


def test_customer_journeys_follow_each_delivery_for_the_window_and_count_each_order_once(
    engine_name, request, tmp_path  # noqa: F811
):
    """W = 24 h: D's row follows the cohort delivered on C = D-1, every contact from its delivery for 24 hours."""
    bench = make_bench(engine_name, request, tmp_path, attribution_window_hours=24)
    C, D = W, W + timedelta(days=1)
    on_c = lambda hour, minute=0: at(C, hour, minute)  # noqa: E731
    on_d = lambda hour, minute=0: at(D, hour, minute)  # noqa: E731
    bench.load("contactActivities", [
        # c1: opens and clicks the day after the delivery (23 h 0 min, 23 h 30 min later): both within 24 h
        act(1, "DELIVERED", "Email", on_c(10)), act(1, "RECEIVED", "Email", on_d(9)),
        act(1, "CLICKED", "Email", on_d(9, 30)),
        # c2: opens 25 h after the delivery: outside its window
        act(2, "DELIVERED", "Email", on_c(10)), act(2, "RECEIVED", "Email", on_d(11)),
        # c3: clicks Email at 10:05, then Sms at 10:10; its order is credited to Email
        act(3, "DELIVERED", "Email", on_c(10)), act(3, "CLICKED", "Email", on_c(10, 5)),
        act(3, "DELIVERED", "Sms", on_c(10)), act(3, "CLICKED", "Sms", on_c(10, 10)),
        # c4: opens and clicks Email; its order is credited to nothing: the last click's channel, Email
        act(4, "DELIVERED", "Email", on_c(10)), act(4, "RECEIVED", "Email", on_c(10, 30)),
        act(4, "CLICKED", "Email", on_c(10, 40)),
        # c5: clicks Email at 11:00 and Sms (no open: Sms has none) at 12:00; its uncredited order goes to Sms
        act(5, "DELIVERED", "Email", on_c(10)), act(5, "CLICKED", "Email", on_c(11)),
        act(5, "DELIVERED", "Sms", on_c(10)), act(5, "CLICKED", "Sms", on_c(12)),
        # c6: clicks at 10:30; orders 24 h 30 min after its delivery (24 h after the click): outside the window
        act(6, "DELIVERED", "Email", on_c(10)), act(6, "CLICKED", "Email", on_c(10, 30)),
        # c7: ordered before its click, and an order after it was canceled
        act(7, "DELIVERED", "Email", on_c(10)), act(7, "CLICKED", "Email", on_c(10, 30)),
        act(8, "DELIVERED", "Sms", on_c(10)),
        # c9: clicks on C, delivered the day before: not in C's cohort
        act(9, "DELIVERED", "Email", at(C - timedelta(days=1), 22)), act(9, "CLICKED", "Email", on_c(9)),
    ])  # fmt: skip
    bench.load("orders", [
        order(1, 1, on_d(9, 50), 10.0), order(9, 1, on_d(9, 55), 5.0), order(3, 3, on_c(10, 20), 20.0),
        order(4, 4, on_c(20), 40.0), order(5, 5, on_d(8), 7.0), order(6, 6, on_d(10, 30), 100.0),
        order(7, 7, on_c(9), 200.0), order(8, 7, on_c(11), 300.0, "CANCELED"), order(10, 9, on_c(9, 30), 1.0),
    ])  # fmt: skip
    bench.load("revenue", [
        credit(1, 1, "Email", on_d(9, 30), on_d(9, 50), 10.0), credit(9, 1, "Email", on_d(9, 30), on_d(9, 55), 5.0),
        # o3 claimed by Sms at 10:01 and Email at 10:05: the crediting row is the latest, Email
        credit(3, 3, "Sms", on_c(10, 1), on_c(10, 20), 20.0), credit(3, 3, "Email", on_c(10, 5), on_c(10, 20), 20.0),
        credit(6, 6, "Email", on_c(10, 30), on_d(10, 30), 100.0), credit(8, 7, "Email", on_c(10, 30), on_c(11), 300.0),
    ])  # fmt: skip
    bench.run(CUSTOMER_JOURNEYS, D)
    rows = by(bench.rows(CUSTOMER_JOURNEYS, D), "mediaType")
    assert set(rows) == {"Email", "Sms"} and {r["cohort_date"] for r in rows.values()} == {C}
    email, sms = rows["Email"], rows["Sms"]
    # Email: delivered c1-c7; opened c1, c4; clicked c1, c3, c4, c5, c6, c7; ordered c1 (o1, o9), c3 (o3), c4 (o4).
    steps = ("delivered", "opened", "clicked", "ordered", "orders", "revenue")
    assert [email[k] for k in steps] == [7, 2, 6, 3, 4, 10.0 + 5.0 + 20.0 + 40.0]
    conversions = ("open_conversion", "click_through_conversion", "order_conversion", "overall_conversion")
    assert [email[k] for k in conversions] == pytest.approx([2 / 7, 6 / 7, 3 / 6, 3 / 7])
    assert [email[k] for k in ("dropped_before_open", "not_clicked", "dropped_before_order")] == [5, 1, 3]
    # Sms: delivered c3, c5, c8; no opens (null); clicked c3, c5; ordered c5 (o5); o3 is Email's only.
    assert [sms[k] for k in steps] == [3, None, 2, 1, 1, 7.0]
    assert [sms[k] for k in conversions] == [None, pytest.approx(2 / 3), 0.5, pytest.approx(1 / 3)]
    assert [sms[k] for k in ("dropped_before_open", "not_clicked", "dropped_before_order")] == [None, 1, 1]


def test_customer_journeys_declare_the_raw_days_their_cohort_reads():
    """The row of D reads C .. D: D-3 .. D for the default 72 hours, D-2 .. D for 36 hours (ceil(36 / 24) = 2)."""
    def window(hours: int) -> tuple[int, int]:
        warehouse = DuckDBMetricsWarehouse(path="unused.duckdb", timezone="UTC", attribution_window_hours=hours)
        (journeys,) = metrics_for([CUSTOMER_JOURNEYS], warehouse)
        return journeys.window

    assert CUSTOMER_JOURNEYS.window == window(72) == (-3, 0)
    assert window(36) == (-2, 0)
    assert (CUSTOMER_JOURNEYS.table.grain, CHANNEL_ENGAGEMENT.table.grain) == (("date", "mediaType"),) * 2
    assert CHANNEL_ENGAGEMENT.window == (-7, 0)


# ---- churn_risk -------------------------------------------------------------------------------------------------

C = date(2026, 3, 1)
# The churn SQL (features, snapshots, labels) is one definition that the model test below runs on both engines; the
# tests marked with this vary only the decision taken in Python on its bounded result, so they run on DuckDB only.
DECISION_ONLY = pytest.mark.parametrize("engine_name", ["duckdb"])


def _churn_bench(engine_name, request, tmp_path, history: int) -> MetricBench:
    """Loyal contacts order every 2-3 days to the end; churner k stops k days before C; 10 never order."""
    bench = make_bench(engine_name, request, tmp_path, churn_horizon_days=5)
    orders, n = [], 0
    for contact in range(1, 41):
        stop = 0 if contact <= 20 else (contact - 20) * 3 // 4  # churners stop 0 .. 15 days before C
        for back in range(history, stop - 1, -2 if contact % 2 else -3):
            n += 1
            orders.append(order(n, contact, at(C - timedelta(days=back), 10), 10.0 + contact))
    bench.load("orders", orders)
    bench.load("contacts", [{"contactId": c} for c in range(1, 51)])
    bench.run(CONTACT_DAILY, *(C - timedelta(days=back) for back in range(history, -1, -1)))
    return bench


def _snapshot_bench(engine_name, request, tmp_path, orders_back: dict[int, tuple[int, ...]],
                    openers: tuple[int, ...]) -> MetricBench:
    """H = 5 (snapshots C-10 training, C-5 held out, C scored). Contact c orders (cost 10) on C-k for each k of
    orders_back[c]; an opener opens an email every day C-40 .. C. contact_segments then computed for the snapshots."""
    bench = make_bench(engine_name, request, tmp_path, churn_horizon_days=5)
    orders, n = [], 0
    for contact, backs in orders_back.items():
        for back in backs:
            n += 1
            orders.append(order(n, contact, at(C - timedelta(days=back), 10)))
    bench.load("orders", orders)
    bench.load("contactActivities", [act(c, "RECEIVED", "Email", at(C - timedelta(days=back), 9))
                                     for c in openers for back in range(40, -1, -1)])  # fmt: skip
    bench.load("contacts", [{"contactId": c} for c in orders_back])
    bench.run(CONTACT_DAILY, *(C - timedelta(days=back) for back in range(40, -1, -1)))
    bench.run(CONTACT_SEGMENTS, C - timedelta(days=10), C - timedelta(days=5), C)
    return bench


@DECISION_ONLY
def test_churn_risk_publishes_the_recency_baseline_when_the_model_cannot_beat_it(engine_name, request, tmp_path):  # noqa: F811
    """Loyal 1, 2 order on C-10, C-7, C-5, C-2, C; churners 3, 4 ordered once, on C-14; 5, 6 never order.
    Held out (C-5, labels C-4 .. C): 1, 2 recency 0 retained; 3, 4 recency 9 churned; 5, 6 recency 91 churned.
    Recency ranks every churned contact above every retained one: baseline AUC 1.0 on all and on buyers (1 .. 4),
    which no model beats by 0.02, so churn_score is recency_days / 91 at C: 1, 2 -> 0/91; 3, 4 -> 14/91; 5, 6 -> 1."""
    loyal = (10, 7, 5, 2, 0)
    bench = _snapshot_bench(engine_name, request, tmp_path, {1: loyal, 2: loyal, 3: (14,), 4: (14,), 5: (), 6: ()},
                            openers=())  # fmt: skip
    extra = bench.run(CHURN_RISK, C)
    assert (extra["baseline_auc_held_out"], extra["baseline_auc_held_out_buyers"]) == (1.0, 1.0)
    assert extra["held_out_buyers"] == 4 and extra["model_margin_auc"] == 0.02
    assert extra["score_source"].startswith("recency baseline: the model did not beat it by 0.02 AUC on held-out "
                                            f"buyers ({extra['auc_held_out_buyers']:.4f} vs 1.0000)")  # fmt: skip
    rows = by(bench.rows(CHURN_RISK, C), "contactId")
    assert {c: (r["recency_days"], r["churn_score"], r["score_source"]) for c, r in rows.items()} == {
        1: (0, 0.0, "recency baseline"), 2: (0, 0.0, "recency baseline"),
        3: (14, 14 / 91, "recency baseline"), 4: (14, 14 / 91, "recency baseline"),
        5: (91, 1.0, "recency baseline"), 6: (91, 1.0, "recency baseline"),
    }  # fmt: skip


@DECISION_ONLY
def test_churn_risk_keeps_the_baseline_when_held_out_buyers_hold_one_class(engine_name, request, tmp_path):  # noqa: F811
    """1, 2 order on C-10, C-7, C-5, C-2, C; 3, 4 never. Training (C-10): 1, 2 retained, 3, 4 churned: a model is
    fitted. Held out (C-5): the buyers 1, 2 are both retained, so no AUC on buyers exists and the model cannot be shown
    to beat recency: the baseline is published. On all contacts recency still ranks 3, 4 (91, churned) above 1, 2
    (0, retained): baseline AUC 1.0."""
    loyal = (10, 7, 5, 2, 0)
    bench = _snapshot_bench(engine_name, request, tmp_path, {1: loyal, 2: loyal, 3: (), 4: ()}, openers=())
    extra = bench.run(CHURN_RISK, C)
    assert "auc_held_out_buyers" not in extra and "baseline_auc_held_out_buyers" not in extra
    assert extra["baseline_auc_held_out"] == 1.0 and extra["held_out_buyers"] == 2
    assert extra["score_source"] == ("recency baseline: the held-out buyers (2) are not both churned and retained, so "
                                     "the model cannot be shown to beat recency")  # fmt: skip
    rows = by(bench.rows(CHURN_RISK, C), "contactId")
    assert {c: (r["churn_score"], r["score_source"]) for c, r in rows.items()} == {
        1: (0.0, "recency baseline"), 2: (0.0, "recency baseline"), 3: (1.0, "recency baseline"),
        4: (1.0, "recency baseline"),
    }  # fmt: skip


def test_churn_risk_publishes_the_model_when_it_beats_recency_on_held_out_buyers(engine_name, request, tmp_path):  # noqa: F811
    """Openers 1 .. 4 order on C-10, C-5, C; silent 5 .. 8 on C-10 only; silent 9 .. 12 on C-10 and C-5.
    Training (C-10, labels C-9 .. C-5): every contact has recency 0, frequency 1, monetary 10, so opens alone
    differ: openers retained, 5 .. 8 churned, 9 .. 12 retained. The fit's weights on the constant features stay 0:
    the model ranks by opens. Held out (C-5, labels C-4 .. C): openers recency 0 retained, 5 .. 8 recency 5 churned,
    9 .. 12 recency 0 churned. Model: every churned contact (no opens) above every retained one (opens): AUC 1.0.
    Recency: of the 4 x 8 churned-retained pairs, 5 .. 8 over the openers win (16), 9 .. 12 tie (16 x 0.5):
    24 / 32 = 0.75. 1.0 - 0.75 >= 0.02: the model's probabilities are published, lower for openers."""
    openers, once, twice = range(1, 5), range(5, 9), range(9, 13)
    bench = _snapshot_bench(
        engine_name, request, tmp_path,
        {**dict.fromkeys(openers, (10, 5, 0)), **dict.fromkeys(once, (10,)), **dict.fromkeys(twice, (10, 5))},
        openers=tuple(openers),
    )  # fmt: skip
    extra = bench.run(CHURN_RISK, C)
    assert (extra["auc_held_out"], extra["auc_held_out_buyers"]) == (1.0, 1.0)  # every contact is a buyer
    assert (extra["baseline_auc_held_out"], extra["baseline_auc_held_out_buyers"]) == (0.75, 0.75)
    assert extra["score_source"] == "model: it beat the recency baseline on held-out buyers (1.0000 vs 0.7500 AUC)"
    rows = by(bench.rows(CHURN_RISK, C), "contactId")
    assert {r["score_source"] for r in rows.values()} == {"model"}
    assert max(rows[c]["churn_score"] for c in openers) < min(rows[c]["churn_score"] for c in (*once, *twice))
    assert rows[1]["churn_score"] != rows[1]["recency_days"] / 91  # a probability, not the baseline's rank


@DECISION_ONLY
def test_churn_risk_without_enough_history_writes_features_and_says_why(engine_name, request, tmp_path):  # noqa: F811
    bench = _churn_bench(engine_name, request, tmp_path, history=3)
    bench.run(CONTACT_SEGMENTS, C)
    extra = bench.run(CHURN_RISK, C)
    assert "no contact_segments snapshot for 2026-02-19" in extra["score_null_reason"]
    rows = bench.rows(CHURN_RISK, C)
    assert len(rows) == 50 and {(r["churn_score"], r["score_source"]) for r in rows} == {(None, None)}
    assert by(rows, "contactId")[1]["frequency"] > 0
