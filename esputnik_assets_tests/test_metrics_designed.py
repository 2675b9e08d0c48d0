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


def test_channel_engagement_rates_and_trailing_means(engine_name, request, tmp_path):  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path)
    bench.load("contactActivities", [
        # D-7: outside D's 7-day window (D-6 .. D)
        act(1, "DELIVERED", "Email", at(W - timedelta(days=7), 9)), act(1, "RECEIVED", "Email", at(W - timedelta(days=7), 10)),
        # D-1: delivered 2, opened 1, clicked 0
        act(1, "DELIVERED", "Email", at(W - timedelta(days=1), 9)), act(1, "RECEIVED", "Email", at(W - timedelta(days=1), 10)),
        act(2, "DELIVERED", "Email", at(W - timedelta(days=1), 9)),
        # D: c1 (a triggered message, no broadcast) opens twice and clicks; c2, c3 delivered; c4 bounced
        act(1, "DELIVERED", "Email", at(W, 9)), act(1, "RECEIVED", "Email", at(W, 10)),
        act(1, "RECEIVED", "Email", at(W, 11)), act(1, "CLICKED", "Email", at(W, 11, 5)),
        act(2, "DELIVERED", "Email", at(W, 9), 7001), act(3, "DELIVERED", "Email", at(W, 9), 7001),
        act(4, "UNDELIVERED", "Email", at(W, 9), 7001),
        act(5, "SENT", "Sms", at(W, 12)), act(5, "UNDELIVERED", "Sms", at(W, 12, 1)),
    ])  # fmt: skip
    for day in (W - timedelta(days=7), W - timedelta(days=1), W):
        bench.run(CHANNEL_ENGAGEMENT, day)
    rows = by(bench.rows(CHANNEL_ENGAGEMENT, W), "mediaType")
    email, sms = rows["Email"], rows["Sms"]
    assert (email["delivered"], email["undelivered"], email["opened"], email["clicked"]) == (3, 1, 1, 1)
    assert email["open_rate"] == pytest.approx(1 / 3)
    assert email["open_rate_7d"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert email["delivery_rate_7d"] == pytest.approx((1.0 + 0.75) / 2)
    assert email["click_rate_7d"] == pytest.approx((0.0 + 1 / 3) / 2)
    assert email["click_to_open_rate_7d"] == pytest.approx((0.0 + 1.0) / 2)
    assert (sms["sent"], sms["delivery_rate"], sms["delivery_rate_7d"]) == (1, 0.0, 0.0)
    assert (sms["open_rate"], sms["open_rate_7d"]) == (None, None)


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


def test_customer_journeys_funnel_within_the_attribution_window(engine_name, request, tmp_path):  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path, attribution_window_hours=24)
    funnel = lambda c, *steps: [act(c, s, "Email", at(W, 10)) for s in steps]  # noqa: E731
    bench.load("contactActivities", [
        *funnel(1, "DELIVERED", "RECEIVED", "CLICKED"),  # orders 23 hours after the click: converted
        *funnel(2, "DELIVERED", "RECEIVED", "CLICKED"),  # orders 25 hours after: too late
        *funnel(3, "DELIVERED", "RECEIVED"),  # orders without clicking
        *funnel(4, "DELIVERED"),
        *funnel(5, "CLICKED"),  # delivered another day: not in D's funnel
        *funnel(6, "DELIVERED", "CLICKED"),  # clicked without an open: the funnel stops at opened
        *funnel(7, "DELIVERED", "RECEIVED", "CLICKED"),  # ordered before the click, and a canceled order after
        act(8, "DELIVERED", "Sms", at(W, 10)),
    ])  # fmt: skip
    bench.load("orders", [
        order(1, 1, at(W + timedelta(days=1), 9)), order(2, 2, at(W + timedelta(days=1), 11)), order(3, 3, at(W, 12)),
        order(4, 5, at(W, 11)), order(5, 6, at(W, 11)), order(6, 7, at(W, 9)),
        order(7, 7, at(W, 11), status="CANCELED"),
    ])  # fmt: skip
    bench.run(CUSTOMER_JOURNEYS, W + timedelta(days=1))  # a 24-hour window: D's row follows the cohort of D-1
    rows = by(bench.rows(CUSTOMER_JOURNEYS, W + timedelta(days=1)), "mediaType")
    assert {r["cohort_date"] for r in rows.values()} == {W}
    email, sms = rows["Email"], rows["Sms"]
    assert [email[k] for k in ("delivered", "opened", "clicked", "ordered")] == [6, 4, 3, 1]
    assert [email[k] for k in ("open_conversion", "click_conversion", "order_conversion", "overall_conversion")] == (
        pytest.approx([4 / 6, 3 / 4, 1 / 3, 1 / 6])
    )
    assert [email[k] for k in ("dropped_before_open", "dropped_before_click", "dropped_before_order")] == [2, 1, 2]
    assert [sms[k] for k in ("delivered", "opened", "clicked", "ordered", "click_conversion", "order_conversion")] == [
        1, 0, 0, 0, None, None,
    ]


# ---- churn_risk -------------------------------------------------------------------------------------------------

C = date(2026, 3, 1)


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


def test_churn_risk_without_enough_history_writes_features_and_says_why(engine_name, request, tmp_path):  # noqa: F811
    bench = _churn_bench(engine_name, request, tmp_path, history=3)
    bench.run(CONTACT_SEGMENTS, C)
    extra = bench.run(CHURN_RISK, C)
    assert "no contact_segments snapshot for 2026-02-19" in extra["score_null_reason"]
    rows = bench.rows(CHURN_RISK, C)
    assert len(rows) == 50 and {(r["churn_score"], r["score_source"]) for r in rows} == {(None, None)}
    assert by(rows, "contactId")[1]["frequency"] > 0
