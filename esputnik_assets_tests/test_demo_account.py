"""The demo account and its HTTP server honour the contract (shared/spec/esputnik-api.md) over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import polars as pl
import pytest
import requests

from esputnik_assets.demo import DemoAccount, DemoServer, FaultPlan

DAY = date(2026, 11, 20)
DAY_WINDOW = {"dateFrom": "2026-11-20T00:00:00", "dateTo": "2026-11-21T00:00:00"}
SMALL = dict(contacts=300, activities_per_day=3_000, orders_per_day=50, events_per_day=200, devices=40)


@pytest.fixture(scope="module")
def account() -> DemoAccount:
    return DemoAccount(**SMALL)


@pytest.fixture(scope="module")
def server(account: DemoAccount) -> Iterator[DemoServer]:
    with DemoServer(account) as running:
        yield running


def get(server: DemoServer, path: str, key: str | None = None, **params: object) -> requests.Response:
    return requests.get(server.url + path, params=params, auth=("", key or server.api_key), timeout=10)


def test_auth_ignores_user_and_checks_key(server: DemoServer) -> None:
    wrong = get(server, "/v1/contacts", key="nope")
    assert wrong.status_code == 401 and wrong.text
    assert "nope" not in str(server.request_log)
    right = get(server, "/v1/contacts", maxrows=3)
    assert right.status_code == 200
    assert right.headers["Content-Type"] == "application/json; charset=utf-8"
    assert [row["id"] for row in right.json()] == [100000, 100001, 100002]
    assert requests.get(server.url + "/v1/contacts", timeout=10).status_code == 401


def read_v1(server: DemoServer, path: str, maxrows: int, **params: object) -> tuple[list[dict], int]:
    """All rows of a v1 endpoint and the number of pages read (stop at the first short page)."""
    rows: list[dict] = []
    pages = 0
    while True:
        page = get(server, path, startindex=len(rows) + 1, maxrows=maxrows, **params)
        assert page.status_code == 200, page.text
        assert "TotalCount" in page.headers
        pages += 1
        rows += page.json()
        if len(page.json()) < maxrows:
            return rows, pages


def test_v1_paging_exact_multiple_ends_with_an_empty_page(server: DemoServer, account: DemoAccount) -> None:
    rows, pages = read_v1(server, "/v1/contacts", maxrows=100)
    assert len(rows) == account.expected_count("contacts") == 300
    assert pages == 4
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    devices, pages = read_v1(server, "/v1/devices", maxrows=7)
    assert len(devices) == 40 and pages == 6


def test_v1_fact_endpoints_return_the_days_rows(server: DemoServer, account: DemoAccount) -> None:
    for path, dataset in (("/v1/orders", "orders"), ("/v1/events", "events"), ("/v1/revenue", "revenue")):
        rows, _ = read_v1(server, path, maxrows=33, **DAY_WINDOW)
        truth = account.rows(dataset, DAY)
        assert len(rows) == truth.height == account.expected_count(dataset, DAY)
        assert pl.DataFrame(rows, schema=truth.schema).equals(truth)
    orders, _ = read_v1(server, "/v1/orders", maxrows=500, **DAY_WINDOW)
    assert sum(len(o["items"]) for o in orders) == account.expected_count("orderItems", DAY)
    two_days, _ = read_v1(server, "/v1/orders", maxrows=500, dateFrom="2026-11-20T00:00:00",
                          dateTo="2026-11-22T00:00:00")
    assert len(two_days) == 2 * SMALL["orders_per_day"]


def test_v1_bad_requests(server: DemoServer) -> None:
    too_many = get(server, "/v1/contacts", maxrows=501)
    assert too_many.status_code == 400 and "500" in too_many.text
    assert get(server, "/v1/orders").status_code == 400
    assert get(server, "/v1/orders", dateFrom="yesterday", dateTo="today").status_code == 400
    assert get(server, "/v1/messages/carrier-pigeon").status_code == 404
    assert get(server, "/v1/nothing").status_code == 404


def test_messages_per_type(server: DemoServer, account: DemoAccount) -> None:
    total = 0
    for kind in ("email", "sms", "viber", "mobilepush", "webpush", "appinbox", "telegram"):
        rows, _ = read_v1(server, f"/v1/messages/{kind}", maxrows=500)
        assert rows and "type" not in rows[0]
        total += len(rows)
    assert total == account.expected_count("messages")


def read_activity(server: DemoServer, maxrows: int = 1000, **window: str) -> list[dict]:
    """Page the activity endpoint with the offset cursor until an empty page."""
    rows: list[dict] = []
    params: dict[str, object] = {**window, "maxrows": maxrows}
    while True:
        page = get(server, "/v2/contacts/activity", **params)
        assert page.status_code == 200, page.text
        if not page.json():
            return rows
        rows += page.json()
        params["offset"] = rows[-1]["offset"]


def test_activity_cursor_reassembles_the_day(server: DemoServer, account: DemoAccount) -> None:
    rows = read_activity(server, **DAY_WINDOW)
    assert len(rows) == len({r["iid"] for r in rows}) == account.expected_count("contactActivities", DAY)
    offsets = [r["offset"] for r in rows]
    assert offsets == sorted(set(offsets))
    truth = account.rows("contactActivities", DAY)
    assert pl.DataFrame(rows, schema=truth.schema).equals(truth)
    assert truth["activityDateTime"].min() == "2026-11-20T00:00:00"
    assert truth["activityDateTime"].str.contains(r"\.\d{3}$").sum() > 100


def test_activity_limits(server: DemoServer) -> None:
    long = get(server, "/v2/contacts/activity", dateFrom="2026-01-01T00:00:00", dateTo="2026-04-05T00:00:00")
    assert long.status_code == 400 and long.text
    assert get(server, "/v2/contacts/activity", maxrows=1001, **DAY_WINDOW).status_code == 400
    assert get(server, "/v2/contacts/activity", dateFrom="2026-11-20T00:00:00").status_code == 400
    assert len(get(server, "/v2/contacts/activity", **DAY_WINDOW).json()) == 500


def test_activity_window_over_a_day_answers_its_first_day_only(server: DemoServer, account: DemoAccount) -> None:
    rows = read_activity(server, dateFrom="2026-11-20T00:00:00", dateTo="2026-11-23T00:00:00")
    assert len(rows) == account.expected_count("contactActivities", DAY)


def test_same_seed_same_bytes_other_seed_other_bytes(account: DemoAccount) -> None:
    pages = []
    for seed in (7, 7, 8):
        with DemoServer(DemoAccount(**{**SMALL, "seed": seed})) as fresh:
            pages.append(get(fresh, "/v2/contacts/activity", maxrows=1000, **DAY_WINDOW).content
                         + get(fresh, "/v1/orders", **DAY_WINDOW).content
                         + get(fresh, "/v1/contacts").content)
    assert pages[0] == pages[1] != pages[2]


def test_revision_changes_values_not_counts() -> None:
    before, after = DemoAccount(**SMALL), DemoAccount(**SMALL, revision=1)
    for dataset in ("orders", "revenue", "contactActivities", "events"):
        assert before.expected_count(dataset, DAY) == after.expected_count(dataset, DAY)
    for dataset in ("contacts", "broadcasts"):
        assert before.expected_count(dataset) == after.expected_count(dataset)
        assert not before.rows(dataset).equals(after.rows(dataset))
    old, new = before.rows("orders", DAY), after.rows("orders", DAY)
    changed = old.join(new, on="orderId").filter(pl.col("totalCost") != pl.col("totalCost_right"))
    assert 0 < changed.height < old.height
    revenue = after.rows("revenue", DAY).join(new, on="orderId")
    assert (revenue["totalCost"] == revenue["totalCost_right"]).all()
    assert (revenue["orderDate"] == revenue["date"]).all()
    assert not before.rows("revenue", DAY)["totalCost"].equals(after.rows("revenue", DAY)["totalCost"])


def test_429_with_retry_after() -> None:
    with DemoServer(DemoAccount(**SMALL), faults=FaultPlan(rate_429=1.0, retry_after=2)) as limited:
        answer = get(limited, "/v1/contacts")
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "2"
    with DemoServer(DemoAccount(**SMALL), faults=FaultPlan(rate_429=1.0)) as bare:
        assert "Retry-After" not in get(bare, "/v1/contacts").headers


def test_fail_first_then_recover() -> None:
    with DemoServer(DemoAccount(**SMALL), faults=FaultPlan(fail_first=2)) as flaky:
        assert [get(flaky, "/v1/devices").status_code for _ in range(3)] == [503, 503, 200]
        assert flaky.requests_served("/v1/devices") == 3
        assert flaky.request_log[0][:2] == ("GET", "/v1/devices")


def test_random_5xx_is_deterministic() -> None:
    codes = []
    for _ in range(2):
        with DemoServer(DemoAccount(**SMALL), faults=FaultPlan(seed=3, rate_5xx=0.5)) as flaky:
            codes.append([get(flaky, "/v1/devices", maxrows=1).status_code for _ in range(12)])
    assert codes[0] == codes[1]
    assert {200} < set(codes[0]) <= {200, 500, 502, 503}


def test_disabled_activity_and_paths() -> None:
    faults = FaultPlan(activity_enabled=False, disabled_paths=frozenset({"/v1/devices"}))
    with DemoServer(DemoAccount(**SMALL), faults=faults) as limited:
        answer = get(limited, "/v2/contacts/activity", **DAY_WINDOW)
        assert answer.status_code == 400 and answer.text == "Contact support to enable ContactActivity."
        assert get(limited, "/v1/devices").status_code == 404
        assert get(limited, "/v1/contacts", maxrows=1).status_code == 200


def test_activity_cursor_depth_cap() -> None:
    with DemoServer(DemoAccount(**SMALL), faults=FaultPlan(activity_cursor_depth=1000)) as shallow:
        assert len(read_activity(shallow, maxrows=400, **DAY_WINDOW)) == 1200
        halves = read_activity(shallow, dateFrom="2026-11-20T00:00:00", dateTo="2026-11-20T08:00:00")
        assert 0 < len(halves) <= 1000


def test_activity_duplicate_pages_repeat_served_rows(account: DemoAccount) -> None:
    with DemoServer(account, faults=FaultPlan(activity_duplicate_rate=0.5)) as quirky:
        rows = read_activity(quirky, maxrows=100, **DAY_WINDOW)
    unique = {r["iid"] for r in rows}
    assert len(rows) > len(unique) == account.expected_count("contactActivities", DAY)


@pytest.mark.slow
def test_large_day_generates_columnarly() -> None:
    big = DemoAccount(activities_per_day=200_000)
    frame = big.rows("contactActivities", DAY)
    assert frame.height == frame["iid"].n_unique() == 200_000
    noon = frame.filter(pl.col("activityDateTime").str.starts_with("2026-11-20T12"))
    with DemoServer(big) as server:
        page = get(server, "/v2/contacts/activity", maxrows=1000, dateFrom="2026-11-20T12:00:00",
                   dateTo="2026-11-20T13:00:00", offset=noon["offset"][100])
        assert [row["iid"] for row in page.json()] == noon["iid"][101:1101].to_list()


def test_events_carry_wide_and_long_params(account: DemoAccount) -> None:
    params = account.rows("events", DAY)["params"]
    assert params.list.len().max() == 60
    values = params.explode().struct.field("value")
    assert values.str.len_chars().max() > 300
