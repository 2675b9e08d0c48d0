"""The metric layer's part of the Settings map: its resource (beside the raw tables) and its assets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import dagster as dg

from esputnik_assets.checks.freshness import Freshness
from esputnik_assets.keys import SINGLE_ACCOUNT, AccountNames
from esputnik_assets.metrics.assets import RESOURCE_KEY, build_metric_assets
from esputnik_assets.metrics.broadcast import BROADCAST_PERFORMANCE
from esputnik_assets.metrics.catalog import CUSTOMER_JOURNEYS, METRICS, Metric
from esputnik_assets.metrics.churn import CHURN_RISK
from esputnik_assets.metrics.dashboard import (
    DASHBOARD,
    DASHBOARD_RESOURCE_KEY,
    READS,
    KpiDashboard,
    build_kpi_dashboard_asset,
)
from esputnik_assets.metrics.resource import (
    COSTS_CONFIGURED,
    COSTS_NOT_CONFIGURED,
    DEMO_EXAMPLE_COSTS,
    BigQueryMetricsWarehouse,
    DuckDBMetricsWarehouse,
    MetricsWarehouse,
)
from esputnik_assets.settings import Settings
from esputnik_assets.warehouse.io_manager import BigQueryIOManager, DuckDBIOManager, WarehouseIOManager

ALL_METRICS = (*METRICS, CHURN_RISK, BROADCAST_PERFORMANCE)


def _costs(settings: Settings) -> tuple[dict[str, float], str]:
    """The configured costs per message and where they come from: the demo account, when none is set, has examples."""
    if settings.cost_per_message:
        return dict(settings.cost_per_message), COSTS_CONFIGURED
    if settings.demo_account:
        from esputnik_assets.demo.account import EXAMPLE_COST_PER_MESSAGE  # the demo loads only when it is used

        return dict(EXAMPLE_COST_PER_MESSAGE), DEMO_EXAMPLE_COSTS
    return {}, COSTS_NOT_CONFIGURED


def metrics_warehouse(settings: Settings, io_manager: WarehouseIOManager) -> MetricsWarehouse:
    """The metric tables live beside the raw ones: same DuckDB file or BigQuery project, their own schema."""
    costs, source = _costs(settings)
    common = dict(
        timezone=settings.timezone,
        metrics_dataset=settings.metrics_dataset,
        cost_per_message=costs,
        costs=source,
        attribution_window_hours=settings.attribution_window_hours,
        snapshot_retention_days=settings.snapshot_retention_days,
        churn_horizon_days=settings.churn_horizon_days,
        affinity_min_pair_orders=settings.affinity_min_pair_orders,
        broadcast_window_days=settings.broadcast_window_days,
    )
    if isinstance(io_manager, BigQueryIOManager):
        return BigQueryMetricsWarehouse(bigquery=io_manager.bigquery, raw_dataset=io_manager.dataset, **common)
    assert isinstance(io_manager, DuckDBIOManager)
    return DuckDBMetricsWarehouse(path=io_manager.path, raw_dataset=io_manager.dataset, **common)


def metrics_for(metrics: Sequence[Metric], warehouse: MetricsWarehouse) -> tuple[Metric, ...]:
    """The metrics with the windows their settings decide, so each asset's partition dependencies match its reads."""
    windows = {
        BROADCAST_PERFORMANCE.name: (0, warehouse.broadcast_window_days - 1),
        CUSTOMER_JOURNEYS.name: (-warehouse.journey_lag_days, 0),
        CHURN_RISK.name: (-2 * warehouse.churn_horizon_days, 0),
    }
    return tuple(replace(m, window=windows[m.name]) if m.name in windows else m for m in metrics)


def build_metrics(
    settings: Settings,
    partitions_def: dg.PartitionsDefinition,
    backfill_policy: dg.BackfillPolicy,
    io_manager: WarehouseIOManager,
    freshness: Freshness | None = None,
    names: AccountNames = SINGLE_ACCOUNT,
) -> tuple[list[dg.AssetsDefinition], dict[str, dg.ConfigurableResource]]:
    """The metric assets over the exported datasets, the KPI dashboard when every table it draws is built, and the
    resources they run with (one account's: the same metric definitions for every account, over its own schemas and
    in its own time zone)."""
    warehouse = metrics_warehouse(settings, io_manager)
    metrics = metrics_for(ALL_METRICS, warehouse)
    assets = build_metric_assets(metrics, settings.datasets, partitions_def, backfill_policy, freshness, names)
    built = {key.path[-1] for asset in assets for key in asset.keys}
    if not set(READS) <= built:
        return assets, {names.resource(RESOURCE_KEY): warehouse}
    dashboard = KpiDashboard(directory=dashboard_directory(settings), kpi_max_drop=settings.kpi_max_drop)
    return (
        [*assets, build_kpi_dashboard_asset(partitions_def, backfill_policy, names)],
        {names.resource(RESOURCE_KEY): warehouse, names.resource(DASHBOARD_RESOURCE_KEY): dashboard},
    )


def dashboard_directory(settings: Settings) -> str:
    """ESPUTNIK_DASHBOARD_DIR, else a folder beside the DuckDB file (on BigQuery: data/kpi_dashboard); an account of
    the accounts file writes into its own subfolder, so two accounts' pages of one day never overwrite each other."""
    if settings.dashboard_dir:
        folder = Path(settings.dashboard_dir)
    else:
        folder = (Path(settings.duckdb_path).parent if settings.warehouse == "duckdb" else Path("data")) / DASHBOARD
    return str(folder if settings.account is None else folder / settings.account)
