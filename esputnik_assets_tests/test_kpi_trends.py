"""KPI trends: the metric partitions' numeric KPI metadata (the Plots tab) and the dashboard page, from the golden
materialization of the demo account; the page is opened in headless chromium with the network off-limits."""

from collections import Counter
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from esputnik_assets.metrics.assets import metric_key
from esputnik_assets.metrics.dashboard import CHARTS, KpiDashboard, build_kpi_dashboard_asset
from esputnik_assets.metrics.svg import number
from esputnik_assets_tests.browser import find_browser, open_page
from esputnik_assets_tests.conftest import GOLDEN_RUN, TIMEZONE

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
        titles = page.evaluate("[...document.querySelectorAll('figure[data-chart=revenue] title')].map(t => t.textContent)")
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
