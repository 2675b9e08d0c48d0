"""KPI trends: the metric partitions' numeric KPI metadata (the Plots tab) and the dashboard page, from the golden
materialization of the demo account; the page is opened in headless chromium with the network off-limits."""

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from esputnik_assets.metrics.assets import metric_key
from esputnik_assets.metrics.broadcast import BROADCAST_PERFORMANCE
from esputnik_assets.metrics.catalog import CHANNEL_ENGAGEMENT, CONTACT_DAILY, CONTACT_SEGMENTS, DAILY_SALES
from esputnik_assets.metrics.churn import CHURN_RISK
from esputnik_assets.metrics.dashboard import CHARTS, KpiDashboard, build_kpi_dashboard_asset, render_page
from esputnik_assets.metrics.kpis import KPI_FIGURES, kpi_metadata
from esputnik_assets.metrics.svg import number
from esputnik_assets_tests.browser import find_browser, open_page
from esputnik_assets_tests.conftest import GOLDEN_RUN, TIMEZONE
from esputnik_assets_tests.metric_fixtures import at, engine_name, make_bench  # noqa: F401

DAY = GOLDEN_RUN[1]  # the golden run's last day: a partition of a three-day range run
ARTIFACTS = Path(__file__).parent / "artifacts"


def partition_metadata(golden, table: str, day: date) -> dict[str, object]:
    """The metadata values of the golden run's materialization of `table` for `day`."""
    events = [
        e for e in golden.result.get_asset_materialization_events()
        if e.asset_key == metric_key(table) and e.partition == day.isoformat()
    ]  # fmt: skip
    assert len(events) == 1
    return {k: v.value for k, v in events[0].materialization.metadata.items()}


def table_rows(golden, table: str, day: date) -> pl.DataFrame:
    with golden.metrics.open() as engine:
        frame, _ = engine.fetch(f"SELECT * FROM metrics.{table} WHERE date = @day", {"day": day})
    return frame


def kpis(metadata: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in metadata.items() if k.startswith("kpi/")}


def test_channel_kpis_are_the_channel_engagement_rows_of_the_partition(golden):
    rows = table_rows(golden, "channel_engagement", DAY).to_dicts()
    assert len(rows) >= 2  # the demo account has several channels a day
    # per channel: the row's own rates and delivered count, a null rate left out
    expected = {
        f"kpi/{r['mediaType']}/{name}": r[name]
        for r in rows
        for name in ("delivery_rate", "open_rate", "click_rate", "unsubscribe_rate", "delivered")
        if r[name] is not None
    }
    assert kpis(partition_metadata(golden, "channel_engagement", DAY)) == expected


def test_sales_segment_broadcast_and_churn_kpis_are_their_tables_aggregates(golden):
    sales = table_rows(golden, "daily_sales", DAY).row(0, named=True)  # one row a day
    expected_sales = {"kpi/orders": sales["orders"], "kpi/revenue": sales["revenue"],
                      "kpi/attributed_share": sales["attributed_share"]}  # fmt: skip
    assert kpis(partition_metadata(golden, "daily_sales", DAY)) == expected_sales

    segments = Counter(table_rows(golden, "contact_segments", DAY)["segment"].to_list())  # contacts per segment
    assert kpis(partition_metadata(golden, "contact_segments", DAY)) == {
        f"kpi/{segment}/contacts": count for segment, count in segments.items()
    }

    sends = table_rows(golden, "broadcast_performance", DAY)  # the day's sends, summed
    broadcast_kpis = kpis(partition_metadata(golden, "broadcast_performance", DAY))
    assert broadcast_kpis["kpi/sends"] == sends.height
    assert broadcast_kpis["kpi/delivered"] == sends["delivered"].sum()
    assert broadcast_kpis["kpi/open_rate"] == pytest.approx(sends["unique_opens"].sum() / sends["delivered"].sum())

    churn = table_rows(golden, "churn_risk", DAY)
    # three days of history: no model yet, so no score, no high-risk share (a null figure is left out) and no AUC
    assert churn["churn_score"].null_count() == churn.height > 0
    assert kpis(partition_metadata(golden, "churn_risk", DAY)) == {"kpi/scored_contacts": 0}


needs_browser = pytest.mark.skipif(find_browser() is None, reason="no chromium installed (apt-get install chromium)")


@needs_browser
def test_dashboard_page_renders_every_chart_offline_without_console_errors(golden, tmp_path):
    partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone=TIMEZONE)
    asset = build_kpi_dashboard_asset(partitions, dg.BackfillPolicy.multi_run(31))
    result = dg.materialize(
        [asset], partition_key=DAY.isoformat(), instance=dg.DagsterInstance.ephemeral(),
        resources={"metrics_warehouse": golden.metrics, "kpi_dashboard": KpiDashboard(directory=str(tmp_path))},
    )  # fmt: skip
    (event,) = result.get_asset_materialization_events()
    path = Path(event.materialization.metadata["path"].value)
    assert path == tmp_path / f"kpi_dashboard_{DAY}.html"
    assert event.materialization.metadata["dagster/uri"].value == path.as_uri()
    page_text = path.read_text()
    assert "<script" not in page_text and "http" not in page_text.replace(path.as_uri(), "")  # nothing to load

    revenue = table_rows(golden, "daily_sales", DAY)["revenue"][0]
    with open_page(find_browser(), ARTIFACTS) as page:
        for domain in ("Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        page.goto(path.as_uri())
        charts = page.evaluate(
            "[...document.querySelectorAll('figure.chart')].map(f => [f.dataset.chart, "
            "f.querySelectorAll('svg rect, svg circle, svg polyline').length])"
        )
        titles = page.evaluate(
            "[...document.querySelectorAll('figure[data-chart=revenue] title')].map(t => t.textContent)"
        )
        page.screenshot(ARTIFACTS / "kpi-dashboard.png")
    assert [name for name, _ in charts] == list(CHARTS)
    assert all(marks > 0 for _, marks in charts), charts  # every chart draws something
    assert f"revenue {DAY}: {number(revenue)}" in titles  # the day's revenue, from daily_sales
    errors = [
        e for e in page.events
        if e["method"] == "Runtime.exceptionThrown"
        or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]  # fmt: skip
    assert errors == []
    requested = {e["params"]["request"]["url"] for e in page.events if e["method"] == "Network.requestWillBeSent"}
    assert requested == {path.as_uri()}  # the page alone: no script, style, font or image from anywhere


# ---- the page's queries and flags on hand-built rows, both engines --------------------------------------------

D = date(2026, 1, 10)


def act(contact: int, status: str, media: str, when) -> dict:
    return {"contactId": contact, "activityStatus": status, "mediaType": media, "activityDateTime": when}


def order(order_id: int, contact: int, when, cost: float) -> dict:
    return {"orderId": order_id, "contactId": contact, "orderDate": when, "totalCost": cost, "Status": "DELIVERED"}


def test_flagged_days_and_the_page_queries_on_both_engines(engine_name, request, tmp_path):  # noqa: F811
    bench = make_bench(engine_name, request, tmp_path)
    before = lambda days, hour: at(D - timedelta(days=days), hour)  # noqa: E731
    bench.load("contactActivities", [
        # D-1, Email: c1, c2 delivered and both opened: open_rate 2/2 = 1, the week's baseline
        act(1, "DELIVERED", "Email", before(1, 9)), act(2, "DELIVERED", "Email", before(1, 9)),
        act(1, "RECEIVED", "Email", before(1, 10)), act(2, "RECEIVED", "Email", before(1, 10)),
        # D, Email: c1, c2 delivered, c1 opened: open_rate 1/2 < (1 - 0.3) x 1, flagged; delivery_rate 1 = its
        # baseline 1, click_rate 0 not below (1 - 0.3) x 0: not flagged. Sms: c3 delivered and opened on D only, no
        # baseline (null): never flagged
        act(1, "DELIVERED", "Email", at(D, 9)), act(2, "DELIVERED", "Email", at(D, 9)),
        act(1, "RECEIVED", "Email", at(D, 10)),
        act(3, "DELIVERED", "Sms", at(D, 9)), act(3, "RECEIVED", "Sms", at(D, 10)),
    ])  # fmt: skip
    bench.load("orders", [
        # revenue D-2 100, D-1 100, D 50: D's is below (1 - 0.3) x the mean 100 of D-7 .. D-1 (the days held): flagged;
        # D-1's 100 is not below 0.7 x 100 (D-2 alone)
        order(1, 1, before(2, 12), 100.0), order(2, 2, before(1, 12), 100.0), order(3, 1, at(D, 12), 50.0),
    ])  # fmt: skip
    bench.load("contacts", [{"contactId": c} for c in (1, 2, 3)])
    bench.run(CHANNEL_ENGAGEMENT, D)
    bench.run(DAILY_SALES, D - timedelta(days=2), D - timedelta(days=1), D)
    bench.run(CONTACT_DAILY, D - timedelta(days=2), D - timedelta(days=1), D)
    for metric in (BROADCAST_PERFORMANCE, CONTACT_SEGMENTS, CHURN_RISK):
        bench.run(metric, D)
    with bench.warehouse.open() as engine:
        page, figures = render_page(engine, D, 0.3)
        sales_kpis = kpi_metadata(KPI_FIGURES["daily_sales"], engine, [D - timedelta(days=1), D])
    assert figures == {"flagged_channel_days": 1, "flagged_revenue_days": 1}
    assert f"{D}: open_rate 50.0% vs 100.0%" in page  # Email's flag, its reason as the band's tooltip
    assert f"{D}: revenue 50 vs 7-day mean 100" in page
    assert f"{D - timedelta(days=1)}: revenue" not in page
    # daily_sales of D: one order of 50, no revenue row credits it
    assert {k: v.value for k, v in sales_kpis[D].items()} == {"kpi/orders": 1, "kpi/revenue": 50.0,
                                                              "kpi/attributed_share": 0.0}  # fmt: skip
    assert sales_kpis[D - timedelta(days=1)]["kpi/revenue"].value == 100.0
    assert "not scored" in page and "no contact scored yet" in page  # churn_risk of D: features, no model yet
