"""The compile layer and the settings: partition filters on every raw fact read, parameters, quoting, env -> resource."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from esputnik_assets.definitions import build_definitions
from esputnik_assets.warehouse.sql import bind, compile_sql, parameter_names
from esputnik_assets.demo.account import EXAMPLE_COST_PER_MESSAGE
from esputnik_assets.metrics.assets import cost_metadata
from esputnik_assets.metrics.catalog import CAMPAIGN_ROI, DAILY_SALES
from esputnik_assets.metrics.resource import (
    COSTS_CONFIGURED,
    COSTS_NOT_CONFIGURED,
    DEMO_EXAMPLE_COSTS,
    BigQueryMetricsWarehouse,
    DuckDBMetricsWarehouse,
)
from esputnik_assets.metrics.wiring import ALL_METRICS
from esputnik_assets.settings import Settings
from esputnik_assets.specs import DATASETS, WriteMode

FACTS = {name: spec.partition_column for name, spec in DATASETS.items() if spec.write_mode is WriteMode.REPLACE_DAYS}


@pytest.mark.parametrize("metric", ALL_METRICS, ids=lambda m: m.name)
def test_every_raw_fact_read_filters_its_partition_column(metric):
    """So BigQuery scans only the needed days: the SELECT reading a fact table bounds its partition column."""
    tree = sqlglot.parse_one(metric.sql, read="bigquery")
    for table in tree.find_all(exp.Table):
        if table.db == "raw" and table.name in FACTS:
            select = table.find_ancestor(exp.Select)
            where = select.args.get("where")
            bounded = {c.name for c in where.find_all(exp.Column)} if where else set()
            assert FACTS[table.name] in bounded, f"{metric.name} reads raw.{table.name} without a partition filter"
        if table.db == "metrics":
            where = table.find_ancestor(exp.Select).args.get("where")
            assert where is not None and "date" in {c.name for c in where.find_all(exp.Column)}, metric.name


def test_tables_are_pointed_at_the_configured_schemas_and_quoted():
    sql = "SELECT a.contactId FROM raw.contactActivities AS a JOIN metrics.contact_daily AS d USING (contactId)"
    duck = compile_sql(sql, "duckdb", {"raw": 'my"raw', "metrics": "m"})
    assert '"my""raw"."contactActivities"' in duck and '"m"."contact_daily"' in duck
    bq = compile_sql(sql, "bigquery", {"raw": "r", "metrics": "m"}, project="proj")
    assert "`proj`.`r`.`contactActivities`" in bq and "`proj`.`m`.`contact_daily`" in bq


def test_values_are_bound_not_formatted_and_only_the_named_ones():
    sql = "SELECT COUNT(*) FROM raw.orders WHERE orderDate >= @start AND orderDate < @end AND Status = @status"
    hostile = "x' OR 1=1 --"
    assert parameter_names(sql) == {"start", "end", "status"}
    assert bind(sql, {"start": 1, "end": 2, "status": hostile, "unused": 3}) == {"start": 1, "end": 2, "status": hostile}
    assert hostile not in compile_sql(sql, "duckdb", {"raw": "r"}, params={"status": hostile})
    with pytest.raises(KeyError, match="status"):
        bind(sql, {"start": 1, "end": 2})


def test_the_time_zone_is_an_escaped_literal():
    sql = "SELECT EXTRACT(HOUR FROM activityDateTime AT TIME ZONE @tz) FROM raw.contactActivities"
    compiled = compile_sql(sql, "duckdb", {"raw": "r"}, params={"tz": "Europe/Kyiv'; DROP TABLE x; --"})
    assert "'Europe/Kyiv''; DROP TABLE x; --'" in compiled


def test_settings_reach_the_metrics_resource():
    env = {
        "ESPUTNIK_COST_PER_MESSAGE_SMS": "0.45", "ESPUTNIK_COST_PER_MESSAGE_INAPP": "0.01",
        "ESPUTNIK_ATTRIBUTION_WINDOW_HOURS": "48", "ESPUTNIK_SNAPSHOT_RETENTION_DAYS": "90",
        "ESPUTNIK_CHURN_HORIZON_DAYS": "14", "ESPUTNIK_METRICS_DATASET": "kpi", "ESPUTNIK_DUCKDB_PATH": "/tmp/x.duckdb",
    }  # fmt: skip
    resource = build_definitions(Settings.from_environ(env)).resources["metrics_warehouse"]
    assert isinstance(resource, DuckDBMetricsWarehouse)
    assert resource.cost_per_message == {"Sms": 0.45, "In-App": 0.01}
    assert (resource.attribution_window_hours, resource.journey_lag_days) == (48, 2)
    assert (resource.snapshot_retention_days, resource.churn_horizon_days) == (90, 14)
    assert (resource.path, resource.raw_dataset, resource.metrics_dataset) == ("/tmp/x.duckdb", "esputnik", "kpi")
    params = resource.params(__import__("datetime").date(2026, 3, 29))  # the spring DST change in Europe: 23 hours
    assert (params["cost_sms"], params["cost_email"]) == (0.45, 0.0)
    bigquery_env = {"ESPUTNIK_WAREHOUSE": "bigquery", "BIGQUERY_PROJECT": "p", "ESPUTNIK_API_KEY": "k"}
    bq = build_definitions(Settings.from_environ(bigquery_env)).resources["metrics_warehouse"]
    assert isinstance(bq, BigQueryMetricsWarehouse) and bq.bigquery.project == "p"


@pytest.mark.parametrize(
    ("env", "costs", "source"),
    [
        ({}, EXAMPLE_COST_PER_MESSAGE, DEMO_EXAMPLE_COSTS),  # the demo account, no cost set: its example costs
        ({"ESPUTNIK_COST_PER_MESSAGE_SMS": "0.45"}, {"Sms": 0.45}, COSTS_CONFIGURED),  # the demo, a cost set: only it
        ({"ESPUTNIK_API_KEY": "k"}, {}, COSTS_NOT_CONFIGURED),  # a live account keeps 0 and says so
    ],
)
def test_costs_per_message_and_where_they_come_from(env, costs, source):
    resource = build_definitions(Settings.from_environ(env)).resources["metrics_warehouse"]
    assert (resource.cost_per_message, resource.costs) == (costs, source)
    assert cost_metadata(CAMPAIGN_ROI, resource)["costs"] == source
    assert cost_metadata(DAILY_SALES, resource) == {}  # a metric that prices no message says nothing of costs


def test_a_metric_is_built_only_when_its_raw_tables_are_exported():
    settings = Settings.from_environ({"ESPUTNIK_DATASETS": "orders,orderItems,revenue"})
    specs = build_definitions(settings).resolve_all_asset_specs()
    keys = {s.key.path[-1] for s in specs if s.key.path[0] == "esputnik_metrics"}
    assert keys == {"daily_sales", "product_affinity", "contact_lifetime", "order_cohorts"}
