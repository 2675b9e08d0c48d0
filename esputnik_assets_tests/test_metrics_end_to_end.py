"""Raw and metric assets materialized together by Dagster from the demo account, on both warehouses."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from esputnik_assets.definitions import build_definitions
from esputnik_assets.demo import DemoAccount
from esputnik_assets.demo.account import EXAMPLE_COST_PER_MESSAGE
from esputnik_assets.metrics.assets import GROUP, KEY_PREFIX, metric_key
from esputnik_assets.metrics.resource import (
    COSTS_NOT_CONFIGURED,
    DEMO_EXAMPLE_COSTS,
    BigQueryMetricsWarehouse,
    DuckDBMetricsWarehouse,
    MetricsWarehouse,
)
from esputnik_assets.metrics.wiring import ALL_METRICS, metrics_warehouse
from esputnik_assets.schedules import RANGE_END_TAG, RANGE_START_TAG
from esputnik_assets.settings import Settings
from esputnik_assets_tests.conftest import (
    GOLDEN_HISTORY,
    TIMEZONE,
    Pipeline,
    metric_definitions,
    metric_settings,
    run_range,
)

FIRST = date(2026, 3, 2)


def metric_tables(warehouse: MetricsWarehouse) -> dict[str, pl.DataFrame]:
    """Every metric table, typed by its declaration and sorted, so two copies compare equal."""
    out = {}
    with warehouse.open() as engine:
        for metric in ALL_METRICS:
            frame, _ = engine.fetch(f"SELECT * FROM metrics.{metric.name}", {})
            frame = frame.select(metric.table.column_names).cast(metric.table.polars_schema)
            out[metric.name] = frame.sort(frame.columns, nulls_last=True)
    return out


def expected_segments(account: DemoAccount, days: list[date]) -> dict[str, int]:
    """contact_segments' counts on the last of `days`, from the demo account's own rows: every order and open or click
    lies within the 14-day recency and 30-day windows, so frequency and engagement decide the segment."""
    orders = pl.concat([account.rows("orders", day) for day in days]).filter(pl.col("status") != "CANCELLED")
    activities = pl.concat([account.rows("contactActivities", day) for day in days])
    frequency = dict(orders.group_by("contactId").agg(pl.col("orderId").n_unique()).iter_rows())
    engaged = set(activities.filter(pl.col("activityStatus").is_in(["READ", "CLICKED"]))["contactId"])
    audience = set(account.rows("contacts")["id"]) | set(activities["contactId"]) | set(frequency)
    by_frequency = {0: "unengaged", 1: "new", 2: "loyal"}
    segments = [
        "engaged_prospect" if not frequency.get(c) and c in engaged else by_frequency.get(frequency.get(c, 0), "champions")
        for c in audience
    ]
    return dict(Counter(segments))


def expected_affinity_days(account: DemoAccount, held: list[date], days: list[date]) -> list[date]:
    """The days of `days` on which two products share at least 2 orders (not canceled) among the orders held up to
    that day: product_affinity has rows on those days only."""
    found = []
    for day in days:
        orders = pl.concat([account.rows("orders", d) for d in held if d <= day]).filter(pl.col("status") != "CANCELLED")
        items = orders.select("orderId", "items").explode("items").unnest("items")
        baskets = items.select("orderId", product=pl.coalesce("externalItemId", "name")).drop_nulls().unique()
        pairs = baskets.join(baskets, on="orderId").filter(pl.col("product") != pl.col("product_right"))
        if (pairs.group_by("product", "product_right").len()["len"].max() or 0) >= 2:
            found.append(day)
    return found


def test_raw_and_metric_assets_materialize_together_for_several_days(golden):
    """The golden run: history of the raw assets for a day, then the whole graph for three days in one range run."""
    account, result, days = golden.account, golden.result, golden.run_days
    tables = metric_tables(golden.metrics)
    for name, frame in tables.items():
        if name == "product_affinity":  # pairs need two orders holding both: not every day of a small account
            assert sorted(frame["date"].unique()) == expected_affinity_days(account, golden.days, days)
        elif name == "broadcast_performance":  # a row per send: only the days a broadcast started on
            started = {date.fromisoformat(d[:10]) for d in account.rows("broadcasts")["startDate"].drop_nulls()}
            assert sorted(frame["date"].unique()) == sorted(started & set(days))
        else:  # customer_journeys' first day follows the contacts delivered the day before: the history's
            assert sorted(frame["date"].unique()) == days, name
    sales = tables["daily_sales"].filter(pl.col("date") == days[0]).row(0, named=True)
    kept = account.rows("orders", days[0]).filter(pl.col("status") != "CANCELLED")
    assert sales["orders"] == kept.height
    assert sales["revenue"] == pytest.approx(kept["totalCost"].sum())
    segments = tables["contact_segments"].filter(pl.col("date") == days[-1])
    assert segments.height == account.contacts
    assert dict(segments["segment"].value_counts().iter_rows()) == expected_segments(account, days)
    churn = result.asset_materializations_for_node("esputnik_metrics__churn_risk")
    assert "no contact_segments snapshot" in churn[0].metadata["score_null_reason"].value
    campaign = result.asset_materializations_for_node("esputnik_metrics__campaign_performance")[0].metadata
    assert campaign["days"].value == f"{days[0]} .. {days[-1]}"
    if isinstance(golden.metrics, BigQueryMetricsWarehouse):  # one replace per day, each reporting its bytes
        per_query = [int(b) for b in campaign["bytes_processed_per_query"].value.split(", ")]
        assert len(per_query) == 3 and campaign["bytes_processed"].value == sum(per_query)
    else:  # DuckDB reports no bytes: no entry rather than a made-up 0
        assert "bytes_processed" not in campaign and "bytes_processed_per_query" not in campaign
    roi = result.asset_materializations_for_node("esputnik_metrics__campaign_roi")[0].metadata
    assert roi["costs"].value == COSTS_NOT_CONFIGURED and "cost_per_message" not in roi  # a live account's: unset


def materializations(result: dg.ExecuteInProcessResult, name: str) -> dict[date, dg.AssetMaterialization]:
    events = result.asset_materializations_for_node(f"{KEY_PREFIX}__{name}")
    return {date.fromisoformat(event.partition): event for event in events}


def assert_metadata_counts_the_tables(result: dg.ExecuteInProcessResult, warehouse: MetricsWarehouse) -> None:
    """Every metric partition's event: the whole table's rows, and that day's rows, exactly as the table holds now."""
    for name, table in metric_tables(warehouse).items():
        day_rows = dict(table.group_by("date").len().iter_rows())
        for day, event in materializations(result, name).items():
            assert event.metadata["dagster/row_count"].value == table.height, name
            assert event.metadata["dagster/partition_row_count"].value == day_rows.get(day, 0), (name, day)


def test_a_range_runs_metric_metadata_counts_each_partitions_day(golden):
    """The golden range run: each partition's event counts the whole table after the write and its own day's rows."""
    assert_metadata_counts_the_tables(golden.result, golden.metrics)
    days, contacts = golden.run_days, golden.account.contacts  # one contact_segments row per contact and day
    segments = materializations(golden.result, "contact_segments")
    assert sorted(segments) == days
    assert {day: event.metadata["dagster/partition_row_count"].value for day, event in segments.items()} == dict.fromkeys(
        days, contacts
    )


@pytest.mark.slow
def test_a_range_run_equals_day_by_day_runs(golden, make_io_manager):
    """The golden run's days run one by one, after the same raw history: the same metric tables, value for value."""
    io_manager = make_io_manager("duckdb")
    pipeline = Pipeline(golden.server.url, golden.server.api_key, io_manager)
    assert pipeline.run(GOLDEN_HISTORY.isoformat()).success
    warehouse = metrics_warehouse(metric_settings(ESPUTNIK_ATTRIBUTION_WINDOW_HOURS="24"), io_manager)
    defs = metric_definitions(pipeline, warehouse)
    for day in golden.run_days:
        later = run_range(defs, day, day)
        assert later.success
    # a send day reads the days after it: run day by day, its row is final once they are in, and the stale-days
    # sensor recomputes it then; here that recomputation is one run of those metrics over the days
    ahead = {metric_key(m.name) for m in ALL_METRICS if m.window[1] > 0}
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=ahead)
    first, last = golden.run_days[0].isoformat(), golden.run_days[-1].isoformat()
    assert job.execute_in_process(
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last}, instance=dg.DagsterInstance.ephemeral()
    ).success
    daily, ranged = metric_tables(warehouse), metric_tables(golden.metrics)
    for name in ranged:
        assert_frame_equal(daily[name], ranged[name])
    assert_metadata_counts_the_tables(later, warehouse)  # a later run reports the whole table, not its own rows
    segments = materializations(later, "contact_segments")[golden.run_days[-1]].metadata
    contacts, held = golden.account.contacts, len(golden.run_days) * golden.account.contacts
    assert (segments["rows_written"].value, segments["dagster/row_count"].value) == (contacts, held)


def test_metric_assets_carry_formula_columns_and_lineage(demo_server, make_io_manager):
    io_manager = make_io_manager("duckdb")
    pipeline = Pipeline(demo_server.url, demo_server.api_key, io_manager)
    defs = metric_definitions(pipeline, metrics_warehouse(metric_settings(), io_manager))
    specs = {s.key: s for s in defs.resolve_all_asset_specs() if s.key.path[0] == KEY_PREFIX}
    assert {k.path[1] for k in specs} == {m.name for m in ALL_METRICS}
    for metric in ALL_METRICS:
        spec = specs[metric_key(metric.name)]
        assert spec.group_name == GROUP and spec.description == metric.formula
        assert [c.name for c in spec.metadata["dagster/column_schema"].columns] == metric.table.column_names
        assert {d.asset_key for d in spec.deps} == {dg.AssetKey(["esputnik", r]) for r in metric.reads} | {
            metric_key(u) for u in metric.upstream
        }
    roi_deps = {d.asset_key.path[-1] for d in specs[metric_key("campaign_roi")].deps}
    assert roi_deps == {"contactActivities", "revenue", "broadcasts"}


def test_the_demo_prices_its_messages_so_campaign_roi_has_an_roi(tmp_path):
    """The definitions on the built-in demo account, no cost set: example costs per mediaType, stated on the asset."""
    env = {
        "ESPUTNIK_DUCKDB_PATH": str(tmp_path / "demo.duckdb"), "ESPUTNIK_TIMEZONE": TIMEZONE,
        "ESPUTNIK_DATASETS": "contactActivities,revenue,broadcasts",
    }  # fmt: skip
    defs = build_definitions(Settings.from_environ(env))
    selection = {metric_key("campaign_roi")} | {dg.AssetKey(["esputnik", d]) for d in env["ESPUTNIK_DATASETS"].split(",")}
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=selection)
    result = job.execute_in_process(partition_key=FIRST.isoformat(), instance=dg.DagsterInstance.ephemeral())
    assert result.success
    metadata = result.asset_materializations_for_node("esputnik_metrics__campaign_roi")[0].metadata
    assert metadata["costs"].value == DEMO_EXAMPLE_COSTS
    assert "Email 0.002, " in metadata["cost_per_message"].value and "Sms 0.045" in metadata["cost_per_message"].value
    warehouse = defs.resources["metrics_warehouse"]
    assert isinstance(warehouse, DuckDBMetricsWarehouse)
    with warehouse.open() as engine:
        roi, _ = engine.fetch("SELECT * FROM metrics.campaign_roi", {})
    delivered = roi.filter(pl.col("delivered") > 0)
    assert delivered.height > 0 and delivered["roi"].null_count() == 0
    row = delivered.sort("attributed_revenue", descending=True).row(0, named=True)
    cost = row["delivered"] * EXAMPLE_COST_PER_MESSAGE[row["mediaType"]]
    assert row["attributed_revenue"] > 0 and row["cost"] == pytest.approx(cost)
    assert row["roi"] == pytest.approx((row["attributed_revenue"] - cost) / cost)
