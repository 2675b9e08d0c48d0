"""The metric layer's part of the environment map: its settings, its resource (beside the raw tables), its assets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg

from esputnik_assets.checks.freshness import Freshness
from esputnik_assets.metrics.assets import RESOURCE_KEY, build_metric_assets
from esputnik_assets.metrics.catalog import METRICS
from esputnik_assets.metrics.churn import CHURN_RISK
from esputnik_assets.metrics.resource import (
    COSTS_CONFIGURED,
    COSTS_NOT_CONFIGURED,
    DEMO_EXAMPLE_COSTS,
    METRICS_DATASET,
    BigQueryMetricsWarehouse,
    DuckDBMetricsWarehouse,
    MetricsWarehouse,
    cost_settings,
)
from esputnik_assets.warehouse.io_manager import BigQueryIOManager, DuckDBIOManager, WarehouseIOManager

ALL_METRICS = (*METRICS, CHURN_RISK)


class MetricSettingsError(ValueError):
    """A metric setting this project cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = (env.get(name) or str(default)).strip()
    try:
        value = int(raw)
    except ValueError as exc:
        raise MetricSettingsError(f"{name}={raw!r} is not a whole number") from exc
    if value < minimum:
        raise MetricSettingsError(f"{name}={raw!r} must be >= {minimum}")
    return value


def _costs(env: Mapping[str, str], demo_account: bool) -> tuple[dict[str, float], str]:
    """The configured costs per message and where they come from: the demo account, when none is set, has examples."""
    try:
        configured = cost_settings(env)
    except ValueError as exc:
        raise MetricSettingsError(str(exc)) from exc
    if configured:
        return configured, COSTS_CONFIGURED
    if demo_account:
        from esputnik_assets.demo.account import EXAMPLE_COST_PER_MESSAGE  # the demo loads only when it is used

        return dict(EXAMPLE_COST_PER_MESSAGE), DEMO_EXAMPLE_COSTS
    return {}, COSTS_NOT_CONFIGURED


def metrics_warehouse(
    env: Mapping[str, str], io_manager: WarehouseIOManager, demo_account: bool = False
) -> MetricsWarehouse:
    """The metric tables live beside the raw ones: same DuckDB file or BigQuery project, schema `esputnik_metrics`."""
    costs, source = _costs(env, demo_account)
    common = dict(
        timezone=io_manager.timezone,
        metrics_dataset=(env.get("ESPUTNIK_METRICS_DATASET") or METRICS_DATASET).strip(),
        cost_per_message=costs,
        costs=source,
        attribution_window_hours=_int(env, "ESPUTNIK_ATTRIBUTION_WINDOW_HOURS", 72, 1),
        snapshot_retention_days=_int(env, "ESPUTNIK_SNAPSHOT_RETENTION_DAYS", 120, 1),
        churn_horizon_days=_int(env, "ESPUTNIK_CHURN_HORIZON_DAYS", 28, 1),
        affinity_min_pair_orders=_int(env, "ESPUTNIK_AFFINITY_MIN_PAIR_ORDERS", 2, 1),
    )
    if common["snapshot_retention_days"] <= 2 * common["churn_horizon_days"]:
        raise MetricSettingsError(
            "ESPUTNIK_SNAPSHOT_RETENTION_DAYS must exceed 2 x ESPUTNIK_CHURN_HORIZON_DAYS: churn_risk trains on the "
            "contact_segments snapshot of that many days ago"
        )
    if isinstance(io_manager, BigQueryIOManager):
        return BigQueryMetricsWarehouse(bigquery=io_manager.bigquery, raw_dataset=io_manager.dataset, **common)
    assert isinstance(io_manager, DuckDBIOManager)
    return DuckDBMetricsWarehouse(path=io_manager.path, raw_dataset=io_manager.dataset, **common)


def build_metrics(
    env: Mapping[str, str],
    datasets: Sequence[str],
    partitions_def: dg.PartitionsDefinition,
    backfill_policy: dg.BackfillPolicy,
    io_manager: WarehouseIOManager,
    freshness: Freshness | None = None,
    demo_account: bool = False,
) -> tuple[list[dg.AssetsDefinition], dict[str, dg.ConfigurableResource]]:
    """The metric assets over the exported datasets and the resource they run with."""
    assets = build_metric_assets(ALL_METRICS, datasets, partitions_def, backfill_policy, freshness)
    return assets, {RESOURCE_KEY: metrics_warehouse(env, io_manager, demo_account)}
