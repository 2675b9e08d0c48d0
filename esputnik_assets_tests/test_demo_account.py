"""The demo account and its HTTP server, over real loopback HTTP: only what the product tests rely on. They compare
the pipeline's tables with the generator's own rows and counts, so the server must serve exactly those rows, refuse
what the API refuses, be deterministic, and produce the faults the product tests ask of it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import polars as pl
import pytest
import requests

from esputnik_assets.demo import DemoAccount, DemoServer, FaultPlan

DAY = date(2026, 11, 20)
DAY_WINDOW = {"dateFrom": "2026-11-20T00:00:00", "dateTo": "2026-11-21T00:00:00"}
MESSAGE_TYPES = ("email", "sms", "viber", "mobilepush", "webpush", "appinbox", "telegram")
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


def test_the_server_serves_exactly_the_generators_rows(server: DemoServer, account: DemoAccount) -> None:
    """v1 paging (an exact multiple ends with an empty page), each fact endpoint, the messages of each type and the
    activity cursor give the generator's rows, which the product tests take as the truth."""
    rows, pages = read_v1(server, "/v1/contacts", maxrows=100)
    assert len(rows) == account.expected_count("contacts") == 300 and pages == 4
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    devices, pages = read_v1(server, "/v1/devices", maxrows=7)
    assert len(devices) == 40 and pages == 6
    for path, dataset in (("/v1/orders", "orders"), ("/v1/events", "events"), ("/v1/revenue", "revenue")):
        rows, _ = read_v1(server, path, maxrows=33, **DAY_WINDOW)
        truth = account.rows(dataset, DAY)
        assert pl.DataFrame(rows, schema=truth.schema).equals(truth) and truth.height == account.expected_count(dataset, DAY)
    orders, _ = read_v1(server, "/v1/orders", maxrows=500, **DAY_WINDOW)
    assert sum(len(o["items"]) for o in orders) == account.expected_count("orderItems", DAY)
    messages = [read_v1(server, f"/v1/messages/{kind}", maxrows=500)[0] for kind in MESSAGE_TYPES]
    assert all(rows and "type" not in rows[0] for rows in messages)
    assert sum(map(len, messages)) == account.expected_count("messages")
    activities = read_activity(server, **DAY_WINDOW)
    truth = account.rows("contactActivities", DAY)
    assert pl.DataFrame(activities, schema=truth.schema).equals(truth)
    assert [r["offset"] for r in activities] == sorted({r["offset"] for r in activities})
    assert truth["activityDateTime"].min() == "2026-11-20T00:00:00"
    assert truth["activityDateTime"].str.contains(r"\.\d{3}$").sum() > 100  # the answer's two datetime forms
    over_days = read_activity(server, dateFrom="2026-11-20T00:00:00", dateTo="2026-11-23T00:00:00")
    assert len(over_days) == account.expected_count("contactActivities", DAY)  # the API's quirk: the first day only


def test_the_server_refuses_what_the_api_refuses(server: DemoServer) -> None:
    """A wrong or missing key, pages over the limits, missing or bad windows: a request the pipeline must never send
    fails a product test instead of quietly succeeding."""
    wrong = get(server, "/v1/contacts", key="nope")
    assert wrong.status_code == 401 and "nope" not in str(server.request_log)
    assert requests.get(server.url + "/v1/contacts", timeout=10).status_code == 401
    assert get(server, "/v1/contacts", maxrows=3).headers["Content-Type"] == "application/json; charset=utf-8"
    too_many = get(server, "/v1/contacts", maxrows=501)
    assert too_many.status_code == 400 and "500" in too_many.text
    assert get(server, "/v1/orders").status_code == 400
    assert get(server, "/v1/orders", dateFrom="yesterday", dateTo="today").status_code == 400
    assert get(server, "/v1/messages/carrier-pigeon").status_code == 404
    long = get(server, "/v2/contacts/activity", dateFrom="2026-01-01T00:00:00", dateTo="2026-04-05T00:00:00")
    assert long.status_code == 400 and long.text
    assert get(server, "/v2/contacts/activity", maxrows=1001, **DAY_WINDOW).status_code == 400
    assert get(server, "/v2/contacts/activity", dateFrom="2026-11-20T00:00:00").status_code == 400
    assert len(get(server, "/v2/contacts/activity", **DAY_WINDOW).json()) == 500


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    """The product tests compute their expected values from a second account of the same seed."""
    def rows(seed: int) -> list[pl.DataFrame]:
        account = DemoAccount(**{**SMALL, "seed": seed})
        return [account.rows("contactActivities", DAY), account.rows("orders", DAY), account.rows("contacts")]

    same, other = rows(7), rows(8)
    assert all(a.equals(b) for a, b in zip(same, rows(7))) and not any(a.equals(b) for a, b in zip(same, other))


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


def test_the_faults_the_product_tests_ask_for(account: DemoAccount) -> None:
    """429 with and without Retry-After, seeded 5xx, an endpoint or the activity export switched off, a cursor depth
    cap and repeated activity pages: each as the retry, doctor and deduplication tests expect it."""
    with DemoServer(account, faults=FaultPlan(rate_429=1.0, retry_after=2)) as limited:
        answer = get(limited, "/v1/contacts")
        assert answer.status_code == 429 and answer.headers["Retry-After"] == "2"
    with DemoServer(account, faults=FaultPlan(rate_429=1.0)) as bare:
        assert "Retry-After" not in get(bare, "/v1/contacts").headers
    codes = []
    for _ in range(2):
        with DemoServer(account, faults=FaultPlan(seed=3, rate_5xx=0.5)) as flaky:
            codes.append([get(flaky, "/v1/devices", maxrows=1).status_code for _ in range(12)])
    assert codes[0] == codes[1] and {200} < set(codes[0]) <= {200, 500, 502, 503}
    faults = FaultPlan(activity_enabled=False, disabled_paths=frozenset({"/v1/devices"}))
    with DemoServer(account, faults=faults) as limited:
        answer = get(limited, "/v2/contacts/activity", **DAY_WINDOW)
        assert answer.status_code == 400 and answer.text == "Contact support to enable ContactActivity."
        assert get(limited, "/v1/devices").status_code == 404
        assert get(limited, "/v1/contacts", maxrows=1).status_code == 200
    with DemoServer(account, faults=FaultPlan(activity_cursor_depth=1000)) as shallow:
        assert len(read_activity(shallow, maxrows=400, **DAY_WINDOW)) == 1200
        assert 0 < len(read_activity(shallow, dateFrom="2026-11-20T00:00:00", dateTo="2026-11-20T08:00:00")) <= 1000
    with DemoServer(account, faults=FaultPlan(activity_duplicate_rate=0.5)) as quirky:
        rows = read_activity(quirky, maxrows=100, **DAY_WINDOW)
    assert len(rows) > len({r["iid"] for r in rows}) == account.expected_count("contactActivities", DAY)


def test_events_carry_wide_and_long_params(account: DemoAccount) -> None:
    """The contract's cap on event params (50, in values_match_the_contract_mapping) is reached by the demo's 60."""
    params = account.rows("events", DAY)["params"]
    assert params.list.len().max() == 60
    assert params.explode().struct.field("value").str.len_chars().max() > 300


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


# ---- the structure that makes the metrics mean something ----------------------------------------------------------

STRUCTURE_DAYS = [date(2026, 9, 1) + timedelta(days=k) for k in range(60)]


@pytest.fixture(scope="module")
def history(account: DemoAccount) -> dict[str, pl.DataFrame]:
    """60 generated days of activities, orders and revenue of the small account, each row with its day."""
    return {
        dataset: pl.concat([account.rows(dataset, day).with_columns(day=pl.lit(day)) for day in STRUCTURE_DAYS])
        for dataset in ("contactActivities", "orders", "revenue")
    }


def test_a_click_makes_an_order_in_the_next_three_days_at_least_twice_as_likely(history, account):
    """Contact-days from the 4th day on: the share with an order on the day among those with a click on one of the 3
    days before, against the share among those without: engagement leads to orders."""
    clicks = history["contactActivities"].filter(pl.col("activityStatus") == "CLICKED").select("contactId", "day")
    after_click = pl.concat([clicks.with_columns(day=pl.col("day") + timedelta(days=k)) for k in (1, 2, 3)]).unique()
    grid = pl.DataFrame({"contactId": account.rows("contacts")["id"]}).join(
        pl.DataFrame({"day": STRUCTURE_DAYS[3:]}), how="cross")
    ordered = history["orders"].select("contactId", "day").unique().with_columns(ordered=pl.lit(True))
    days = grid.join(after_click.with_columns(clicked=pl.lit(True)), on=["contactId", "day"], how="left").join(
        ordered, on=["contactId", "day"], how="left").fill_null(False)
    share = dict(days.group_by("clicked").agg(pl.col("ordered").mean()).iter_rows())
    assert share[True] >= 2 * share[False] > 0, share


def test_products_come_in_complementary_pairs(history):
    """At least 20 pairs of products share 10 orders or more (not canceled) with lift = P(both) / (P(a) P(b)) above 3
    (products drawn independently give pairs with lift near 1, none above 3, over these 60 days)."""
    kept = history["orders"].filter(pl.col("status") != "CANCELLED")
    baskets = kept.select("orderId", "items").explode("items").unnest("items").select(
        "orderId", product="externalItemId").unique()
    orders = baskets["orderId"].n_unique()
    support = baskets.group_by("product").agg(share=pl.len() / orders)
    pairs = baskets.join(baskets, on="orderId").filter(pl.col("product") < pl.col("product_right"))
    lift = pairs.group_by("product", "product_right").agg(together=pl.len()).join(support, on="product").join(
        support.rename({"product": "product_right", "share": "share_right"}), on="product_right"
    ).with_columns(lift=pl.col("together") / orders / (pl.col("share") * pl.col("share_right")))
    assert lift.filter((pl.col("together") >= 10) & (pl.col("lift") > 3)).height >= 20


def test_revenue_credits_some_orders_to_several_messages_and_workflows(history):
    """Several rows for one orderId (different messages and times) on a share of credited orders; rows of workflow
    (IM) messages; every credited touch by the ordering contact, before the order, within 3 days."""
    revenue, orders = history["revenue"], history["orders"]
    per_order = revenue.group_by("orderId").agg(
        rows=pl.len(), messages=pl.col("messageInstanceId").n_unique(), times=pl.col("activityDateTime").n_unique())
    several = per_order.filter(pl.col("rows") > 1)
    assert several.height >= 0.1 * per_order.height and (several["messages"] == several["rows"]).all()
    assert (several["times"] > 1).any()
    assert revenue.filter(pl.col("workflowId").is_not_null() & pl.col("broadcastId").is_null()).height > 0
    joined = revenue.join(orders.select("orderId", pl.col("contactId").alias("buyer")), on="orderId")
    assert (joined["contactId"] == joined["buyer"]).all()
    ordered, touched = (pl.col(c).str.to_datetime(time_unit="ms") for c in ("orderDate", "activityDateTime"))
    lag = joined.select((ordered - touched).alias("lag"))["lag"]
    assert lag.min() > timedelta(0) and lag.max() <= timedelta(days=3)


def test_bounces_carry_smtp_codes_and_broadcasts_send_on_their_start_day(history, account):
    """UNDELIVERED rows: 5xx (hard) and 4xx (soft) SMTP texts and some without one. A broadcast's activities fall on
    its startDate's day, at or after it."""
    undelivered = history["contactActivities"].filter(pl.col("activityStatus") == "UNDELIVERED")
    code = undelivered["statusDescription"].str.strip_chars().str.slice(0, 1)
    assert {"4", "5", None} <= set(code.to_list())
    broadcasts = account.rows("broadcasts").select("broadcastId", "startDate")
    sent = history["contactActivities"].filter(pl.col("broadcastId").is_not_null()).join(broadcasts, on="broadcastId")
    assert sent.height > 0
    started, happened = (pl.col(c).str.to_datetime(time_unit="ms") for c in ("startDate", "activityDateTime"))
    assert sent.select(((started.dt.date() == happened.dt.date()) & (happened >= started)).all()).item()
