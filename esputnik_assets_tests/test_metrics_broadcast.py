"""broadcast_performance (pinned): a send over its life, on hand-built raw tables, on DuckDB and the BigQuery emulator.

Send day D is 2026-01-10 in Europe/Kyiv (UTC+2). With L = 7 a send's window is local D 00:00 .. D+7 00:00 (day 1 is
D, day 6 is D+5, day 8 is D+7). Every expected number below is worked out by hand from the rows listed here.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from polars.testing import assert_frame_equal

from esputnik_assets.metrics.broadcast import BROADCAST_PERFORMANCE
from esputnik_assets_tests.metric_fixtures import MetricBench, at, engine_name, make_bench  # noqa: F401

D = date(2026, 1, 10)


def day(n: int) -> date:
    """Day n of the send's life: day 1 is D."""
    return D + timedelta(days=n - 1)


def act(contact: int, status: str, when, broadcast: int = 8001, description: str | None = None) -> dict:
    return {"contactId": contact, "activityStatus": status, "broadcastId": broadcast, "mediaType": "Email",
            "activityDateTime": when, "statusDescription": description}  # fmt: skip


BROADCASTS = [
    {"id": 8001, "name": "Life", "mediaType": "Email", "startedDate": at(D, 23, 50)},  # sent late on D
    {"id": 8002, "name": "Quiet", "mediaType": "Sms", "startedDate": at(D, 0, 10)},  # sent on D, no activity at all
    {"id": 8003, "name": "Before", "mediaType": "Email", "startedDate": at(D - timedelta(days=1), 23, 59)},  # D-1
    {"id": 8004, "name": "After", "mediaType": "Viber", "startedDate": at(D + timedelta(days=1), 0, 0)},  # D+1 00:00
    {"id": 8005, "name": "Draft", "mediaType": "Email", "startedDate": None},  # never sent: no row on any day
]
ACTIVITIES = [
    # delivered: c1, c2, c4 (c5's DELIVERED is on D-1, before the send day: outside the window)
    act(1, "DELIVERED", at(D, 23, 51)), act(2, "DELIVERED", at(D, 23, 51)), act(4, "DELIVERED", at(D, 23, 52)),
    act(5, "DELIVERED", at(D - timedelta(days=1), 23, 30)),
    # c1 opens after midnight (day 2) and on day 6, and clicks twice on day 6: all counted with L = 7
    act(1, "RECEIVED", at(day(2), 0, 5)), act(1, "RECEIVED", at(day(6), 10)),
    act(1, "CLICKED", at(day(6), 10, 1)), act(1, "CLICKED", at(day(6), 10, 2)),
    # c2 opens on day 8 only: outside the window
    act(2, "RECEIVED", at(day(8), 0, 1)),
    # c4 unsubscribes and reports spam on day 3
    act(4, "UNSUBSCRIBED", at(day(3), 9)), act(4, "SPAM", at(day(3), 9, 1)),
    # undelivered c10 .. c17; hard = trimmed description starting with 3 digits, the first a 5: c10, c16, c17
    act(10, "UNDELIVERED", at(D, 23, 53), description=" 550 5.1.1 user unknown"),  # hard (leading space trimmed)
    act(11, "UNDELIVERED", at(D, 23, 53), description="5xx"),  # soft: not three digits
    act(12, "UNDELIVERED", at(D, 23, 53), description="55"),  # soft: two digits only
    act(13, "UNDELIVERED", at(D, 23, 53), description="450 4.2.2 mailbox full"),  # soft: first digit 4
    act(14, "UNDELIVERED", at(D, 23, 53), description=None),  # soft: no description
    act(15, "UNDELIVERED", at(D, 23, 53), description="abc 550"),  # soft: does not start with the digits
    act(16, "UNDELIVERED", at(D, 23, 53), description="421 try later"),  # c16 soft then hard: hard only
    act(16, "UNDELIVERED", at(day(2), 3), description="554 rejected"),
    act(17, "UNDELIVERED", at(D, 23, 54), description="\t551 user not local"),  # hard (a tab trimmed)
    # another broadcast's activity on D: not 8001's
    act(1, "RECEIVED", at(D, 12), broadcast=8003),
]


def credit(order: int, broadcast: int | None, touched, ordered, cost: float, instance: int) -> dict:
    return {"orderId": order, "contactId": 1, "broadcastId": broadcast, "mediaType": "Email",
            "messageInstanceId": instance, "activityDateTime": touched, "orderDate": ordered, "totalCost": cost}  # fmt: skip


REVENUE = [
    # order 501 on day 4 (D+3): claimed by 8003 earlier and by 8001 later: its crediting row is 8001's
    credit(501, 8003, at(day(3), 9), at(day(4), 10), 40.0, 1), credit(501, 8001, at(day(4), 9), at(day(4), 10), 40.0, 2),
    # order 502: 8001 touched first, broadcast 9000 last: credited to 9000, not to 8001
    credit(502, 8001, at(D, 23, 55), at(day(2), 9), 70.0, 3), credit(502, 9000, at(day(2), 8), at(day(2), 9), 70.0, 4),
    # order 504 on day 7 (in the window), order 503 on day 8 (outside it)
    credit(504, 8001, at(day(7), 22), at(day(7), 23), 25.5, 5),
    credit(503, 8001, at(day(8), 0, 10), at(day(8), 0, 30), 99.0, 6),
]
ZEROS = {"delivered": 0, "undelivered": 0, "hard_bounced": 0, "soft_bounced": 0, "unique_opens": 0, "total_opens": 0,
         "unique_clicks": 0, "total_clicks": 0, "unsubscribed": 0, "spam": 0, "attributed_orders": 0,
         "attributed_revenue": 0.0}  # fmt: skip
NULL_RATES = dict.fromkeys(
    ("delivery_rate", "open_rate", "click_rate", "click_to_open_rate", "unsubscribe_rate", "revenue_per_recipient")
)


def loaded(engine_name: str, request, tmp_path, **settings: object) -> MetricBench:  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path, **settings)
    for dataset, rows in (("broadcasts", BROADCASTS), ("contactActivities", ACTIVITIES), ("revenue", REVENUE)):
        bench.load(dataset, rows)
    return bench


def test_a_send_over_its_seven_day_life(engine_name, request, tmp_path):  # noqa: F811
    bench = loaded(engine_name, request, tmp_path)
    bench.run(BROADCAST_PERFORMANCE, D - timedelta(days=1), D, D + timedelta(days=1))
    rows = {(r["date"], r["broadcastId"]): r for r in bench.rows(BROADCAST_PERFORMANCE)}
    # each partition holds its own send day's broadcasts only; 8005 was never sent
    assert sorted(rows) == [(D - timedelta(days=1), 8003), (D, 8001), (D, 8002), (D + timedelta(days=1), 8004)]
    life = rows[(D, 8001)]
    assert (life["name"], life["mediaType"]) == ("Life", "Email")
    # delivered c1, c2, c4; undelivered c10 .. c17 (8); hard c10, c16, c17; soft 8 - 3 = 5
    assert [life[k] for k in ("delivered", "undelivered", "hard_bounced", "soft_bounced")] == [3, 8, 3, 5]
    # opens: c1 on day 2 and day 6 (c2's day-8 open is out); clicks: c1 twice on day 6
    assert [life[k] for k in ("unique_opens", "total_opens", "unique_clicks", "total_clicks")] == [1, 2, 1, 2]
    assert (life["unsubscribed"], life["spam"]) == (1, 1)
    assert life["delivery_rate"] == pytest.approx(3 / 11)
    assert life["open_rate"] == pytest.approx(1 / 3)
    assert life["click_rate"] == pytest.approx(1 / 3)
    assert life["click_to_open_rate"] == pytest.approx(1.0)
    assert life["unsubscribe_rate"] == pytest.approx(1 / 3)
    # orders 501 (day 4, crediting row 8001's) and 504 (day 7): 40 + 25.5; 502 is 9000's, 503 is on day 8
    assert (life["attributed_orders"], life["attributed_revenue"]) == (2, pytest.approx(65.5))
    assert life["revenue_per_recipient"] == pytest.approx(65.5 / 3)
    quiet = rows[(D, 8002)]
    assert {k: quiet[k] for k in ZEROS} == ZEROS and {k: quiet[k] for k in NULL_RATES} == NULL_RATES
    # 8003's own activity on D (c1 opens it at noon) counts for its send day D-1
    assert rows[(D - timedelta(days=1), 8003)]["unique_opens"] == 1


def test_the_window_length_comes_from_the_setting(engine_name, request, tmp_path):  # noqa: F811
    """L = 5: the window ends with day 5, so c1's day-6 open and clicks and order 504 (day 7) drop out."""
    bench = loaded(engine_name, request, tmp_path, broadcast_window_days=5)
    bench.run(BROADCAST_PERFORMANCE, D)
    life = {r["broadcastId"]: r for r in bench.rows(BROADCAST_PERFORMANCE, D)}[8001]
    assert [life[k] for k in ("unique_opens", "total_opens", "unique_clicks", "total_clicks")] == [1, 1, 0, 0]
    assert (life["attributed_orders"], life["attributed_revenue"]) == (1, pytest.approx(40.0))
    assert life["click_to_open_rate"] == pytest.approx(0.0)


@pytest.mark.slow
def test_both_engines_agree_value_for_value(request, tmp_path):
    tables = []
    for engine in ("duckdb", "bigquery"):
        bench = loaded(engine, request, tmp_path)
        bench.run(BROADCAST_PERFORMANCE, D - timedelta(days=1), D, D + timedelta(days=1))
        tables.append(bench.table(BROADCAST_PERFORMANCE))
    duck, bq = tables
    assert duck.height == 4
    assert_frame_equal(duck, bq, check_exact=False, rel_tol=1e-12)
