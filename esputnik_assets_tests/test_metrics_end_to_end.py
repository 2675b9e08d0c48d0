"""Raw and metric assets materialized together by Dagster from the demo account, on both warehouses."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from esputnik_assets.definitions import build_definitions
from esputnik_assets.demo.account import EXAMPLE_COST_PER_MESSAGE
from esputnik_assets.metrics.assets import GROUP, KEY_PREFIX, build_metric_assets, metric_key
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
from esputnik_assets_tests.conftest import TIMEZONE, Pipeline

FIRST = date(2026, 3, 2)


def metric_settings(**env: str) -> Settings:
    """Settings of the conftest pipeline's account (a live one, in its time zone), plus `env`."""
    return Settings.from_environ({"ESPUTNIK_API_KEY": "k", "ESPUTNIK_TIMEZONE": TIMEZONE, **env})


def metric_definitions(pipeline: Pipeline, warehouse: MetricsWarehouse) -> dg.Definitions:
    """The conftest pipeline's raw graph plus every metric asset, partitioned alike, on the same warehouse."""
    raw = pipeline.definitions()
    partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone=TIMEZONE)
    metrics = build_metric_assets(ALL_METRICS, pipeline.datasets, partitions, dg.BackfillPolicy.multi_run(31))
    return dg.Definitions.merge(raw, dg.Definitions(assets=metrics, resources={"metrics_warehouse": warehouse}))


def run(defs: dg.Definitions, first: date, last: date) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
        instance=dg.DagsterInstance.ephemeral(),
    )


def metric_tables(warehouse: MetricsWarehouse) -> dict[str, pl.DataFrame]:
    """Every metric table, typed by its declaration and sorted, so two copies compare equal."""
    out = {}
    with warehouse.open() as engine:
        for metric in ALL_METRICS:
            frame, _ = engine.fetch(f"SELECT * FROM metrics.{metric.name}", {})
            frame = frame.select(metric.table.column_names).cast(metric.table.polars_schema)
            out[metric.name] = frame.sort(frame.columns, nulls_last=True)
    return out


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


def test_raw_and_metric_assets_materialize_together_for_several_days(pipeline, account):
    """A range run, then a later day: the tables, and metadata that counts them exactly as they hold after each."""
    warehouse = metrics_warehouse(metric_settings(ESPUTNIK_ATTRIBUTION_WINDOW_HOURS="24"), pipeline.io_manager)
    last = FIRST + timedelta(days=2)
    defs = metric_definitions(pipeline, warehouse)
    result = run(defs, FIRST, last)
    assert result.success
    tables = metric_tables(warehouse)
    days = [FIRST + timedelta(days=i) for i in range(3)]
    for name, frame in tables.items():
        if name == "customer_journeys":  # D's row follows the contacts delivered on D-1, not loaded for the first day
            assert sorted(frame["date"].unique()) == days[1:]
        elif name != "product_affinity":  # pairs need two orders holding both: not every day of a small account
            assert sorted(frame["date"].unique()) == days, name
    sales = tables["daily_sales"].filter(pl.col("date") == FIRST).row(0, named=True)
    truth = account.rows("orders", FIRST)
    kept = truth.filter(pl.col("status") != "CANCELLED")
    assert sales["orders"] == kept.height
    assert sales["revenue"] == pytest.approx(kept["totalCost"].sum())
    segments = tables["contact_segments"].filter(pl.col("date") == last)
    assert segments.height == account.contacts and segments["segment"].n_unique() > 3
    churn = result.asset_materializations_for_node("esputnik_metrics__churn_risk")
    assert "no contact_segments snapshot" in churn[0].metadata["score_null_reason"].value
    campaign = result.asset_materializations_for_node("esputnik_metrics__campaign_performance")[0].metadata
    assert campaign["days"].value == f"{FIRST} .. {last}"
    if isinstance(warehouse, BigQueryMetricsWarehouse):  # one replace per day, each reporting its bytes
        per_query = [int(b) for b in campaign["bytes_processed_per_query"].value.split(", ")]
        assert len(per_query) == 3 and campaign["bytes_processed"].value == sum(per_query)
    else:  # DuckDB reports no bytes: no entry rather than a made-up 0
        assert "bytes_processed" not in campaign and "bytes_processed_per_query" not in campaign
    roi = result.asset_materializations_for_node("esputnik_metrics__campaign_roi")[0].metadata
    assert roi["costs"].value == COSTS_NOT_CONFIGURED and "cost_per_message" not in roi  # a live account's: unset
    assert set(materializations(result, "contact_segments")) == set(days)
    assert_metadata_counts_the_tables(result, warehouse)  # each partition of the range run: its own day

    later = run(defs, last + timedelta(days=1), last + timedelta(days=1))  # reports the whole table, not its own rows
    assert later.success
    assert_metadata_counts_the_tables(later, warehouse)
    segments = materializations(later, "contact_segments")[last + timedelta(days=1)].metadata
    contacts = account.contacts  # one contact_segments row per contact and day; four days held
    assert (segments["rows_written"].value, segments["dagster/row_count"].value) == (contacts, 4 * contacts)
    assert segments["dagster/partition_row_count"].value == contacts


def test_a_week_range_run_equals_day_by_day_runs(demo_server, make_io_manager):
    range_io, daily_io = make_io_manager("duckdb"), make_io_manager("duckdb")
    copies = []
    for io_manager, spans in ((range_io, [(FIRST, FIRST + timedelta(days=6))]),
                              (daily_io, [(FIRST + timedelta(days=i),) * 2 for i in range(7)])):  # fmt: skip
        pipeline = Pipeline(demo_server.url, demo_server.api_key, io_manager)
        warehouse = metrics_warehouse(metric_settings(), io_manager)
        defs = metric_definitions(pipeline, warehouse)
        for first, last in spans:
            assert run(defs, first, last).success
        copies.append(metric_tables(warehouse))
    for name in copies[0]:
        assert copies[0][name].height > 0 or name == "product_affinity", name
        assert_frame_equal(copies[0][name], copies[1][name])


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
    raw = {dg.AssetKey(["esputnik", dataset]) for dataset in env["ESPUTNIK_DATASETS"].split(",")}
    selection = {metric_key("campaign_roi"), *raw}
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
