"""The metric layer's resource: where the raw and metric tables live, and the settings the formulas take."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import dagster as dg
from pydantic import Field

from esputnik_assets.metrics.catalog import MEDIA_TYPES, cost_parameter, journey_lag_days
from esputnik_assets.metrics.engine import BigQueryMetricEngine, DuckDBMetricEngine, MetricEngine
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.warehouse.bigquery_resource import EsputnikBigQueryResource
from esputnik_assets.warehouse.duckdb import DuckDBWarehouse
from esputnik_assets.warehouse.sql import METRICS_SCHEMA

METRICS_DATASET = METRICS_SCHEMA
COSTS_NOT_CONFIGURED = "not configured: set ESPUTNIK_COST_PER_MESSAGE_<MEDIA>"
COSTS_CONFIGURED = "ESPUTNIK_COST_PER_MESSAGE_<MEDIA> (a mediaType without one costs 0)"
DEMO_EXAMPLE_COSTS = "demo example costs"


class MetricsWarehouse(dg.ConfigurableResource):
    """Engine-independent part: the account's time zone, the two schemas, and every tunable of the formulas."""

    timezone: str = Field(default="UTC", description="The account's time zone: a partition is a local day")
    raw_dataset: str = Field(default="esputnik", description="Schema / dataset of the raw tables (ESPUTNIK_DATASET)")
    metrics_dataset: str = Field(default=METRICS_DATASET, description="Schema / dataset of the metric tables")
    cost_per_message: dict[str, float] = Field(
        default_factory=dict,
        description="Cost of one delivered message per mediaType (ESPUTNIK_COST_PER_MESSAGE_<MEDIA>); missing = 0",
    )
    costs: str = Field(
        default=COSTS_NOT_CONFIGURED, description="Where cost_per_message comes from, shown on the assets that use it"
    )
    attribution_window_hours: int = Field(
        default=72, description="customer_journeys: opens, clicks and orders count within this many hours of the delivery"
    )
    snapshot_retention_days: int = Field(
        default=120,
        description="Days of snapshots kept (contact_segments, contact_profiles, churn_risk, contact_lifetime, "
        "order_cohorts)",
    )
    churn_horizon_days: int = Field(
        default=28, description="churn_risk: a contact churned when it places no order in this many days"
    )
    affinity_min_pair_orders: int = Field(
        default=2, description="product_affinity: pairs bought together in fewer orders over 90 days are left out"
    )

    broadcast_window_days: int = Field(
        default=7, description="broadcast_performance: a send's activities and orders over this many days from its "
        "send day (ESPUTNIK_BROADCAST_WINDOW_DAYS)",
    )

    def open(self) -> contextlib.AbstractContextManager[MetricEngine]:
        raise NotImplementedError

    def params(self, day: date) -> dict[str, date | datetime | int | float | str]:
        """Every value a metric query may name, for day D (each query binds only those it uses)."""
        start, end = LocalWindow.for_days(day, day + timedelta(days=1)).utc_bounds(self.timezone)
        start_30d, _ = LocalWindow.for_days(day - timedelta(days=29), day).utc_bounds(self.timezone)
        start_90d, _ = LocalWindow.for_days(day - timedelta(days=89), day).utc_bounds(self.timezone)
        days_before = {  # the UTC start of each of the 7 days before D: channel_engagement's week
            f"start_minus_{back}d": LocalWindow.for_days(day - timedelta(days=back), day).utc_bounds(self.timezone)[0]
            for back in range(1, 8)
        }
        cohort_day = day - timedelta(days=self.journey_lag_days)
        cohort_start, cohort_end = LocalWindow.for_days(cohort_day, cohort_day + timedelta(days=1)).utc_bounds(
            self.timezone
        )
        _, broadcast_end = LocalWindow.for_days(day, day + timedelta(days=self.broadcast_window_days)).utc_bounds(
            self.timezone
        )
        costs = {cost_parameter(m): float(self.cost_per_message.get(m, 0.0)) for m in MEDIA_TYPES}
        return {
            "day": day, "start": start, "end": end, "tz": self.timezone, "start_30d": start_30d, "start_90d": start_90d,
            "min_pair_orders": self.affinity_min_pair_orders,
            **days_before,
            "cohort_day": cohort_day, "cohort_start": cohort_start, "cohort_end": cohort_end,
            "attribution_seconds": self.attribution_window_hours * 3600,
            "churn_horizon_days": self.churn_horizon_days, "broadcast_end": broadcast_end,
            **costs,
        }  # fmt: skip

    @property
    def journey_lag_days(self) -> int:
        """customer_journeys' row of D follows the contacts delivered this many days earlier: every window closed."""
        return journey_lag_days(self.attribution_window_hours)

    def location(self) -> str:
        raise NotImplementedError


class DuckDBMetricsWarehouse(MetricsWarehouse):
    """Metric tables in a second schema of the same DuckDB file as the raw tables."""

    path: str = Field(default="data/warehouse.duckdb", description="DuckDB file (ESPUTNIK_DUCKDB_PATH)")
    memory_limit: str = Field(default="256MB", description="DuckDB's memory limit for metric queries (spills beyond)")

    @contextlib.contextmanager
    def open(self) -> Iterator[DuckDBMetricEngine]:
        warehouse = DuckDBWarehouse(
            self.path, self.raw_dataset, metrics_schema=self.metrics_dataset, memory_limit=self.memory_limit
        )
        yield DuckDBMetricEngine(warehouse)

    def location(self) -> str:
        return f"{self.path}:{self.metrics_dataset}"


class BigQueryMetricsWarehouse(MetricsWarehouse):
    """Metric tables in a second BigQuery dataset of the same project, partitioned by `date`."""

    bigquery: EsputnikBigQueryResource

    @contextlib.contextmanager
    def open(self) -> Iterator[BigQueryMetricEngine]:
        from esputnik_assets.warehouse.bigquery import BigQueryWarehouse

        with self.bigquery.get_client() as client:
            yield BigQueryMetricEngine(
                BigQueryWarehouse(client, self.raw_dataset, self.bigquery.location, self.metrics_dataset)
            )

    def location(self) -> str:
        return f"{self.bigquery.project}.{self.metrics_dataset}"

