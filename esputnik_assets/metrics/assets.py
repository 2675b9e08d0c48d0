"""One asset factory for the metric tables: an asset per metric, partitioned like the raw assets, run in the warehouse.

Each metric's dependencies carry its window as a partition mapping (the row of D reads raw days D+first .. D+last),
so the lineage shows which metric days a rerun raw day feeds, and an automation condition recomputes the metric
days that already exist once a day they read has been rewritten by a run that did not also rewrite them.
"""

import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta

import dagster as dg

from esputnik_assets.checks.freshness import PARTITION_ON_TIME, Freshness
from esputnik_assets.contracts import DATASET_NAMES
from esputnik_assets.keys import SINGLE_ACCOUNT, AccountNames
from esputnik_assets.metrics.catalog import MEDIA_TYPES, Metric, cost_parameter
from esputnik_assets.metrics.checks import checks_for, evaluate_metric_checks
from esputnik_assets.metrics.engine import MetricEngine, MetricTable, QueryStats
from esputnik_assets.metrics.kpis import KPI_FIGURES, KPI_NOTES, KPI_PREFIX, kpi_metadata
from esputnik_assets.metrics.resource import MetricsWarehouse
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.step_errors import redacted_errors
from esputnik_assets.warehouse.sql import parameter_names

GROUP = "esputnik_metrics"
KEY_PREFIX = "esputnik_metrics"
RESOURCE_KEY = "metrics_warehouse"
STALE_DAYS_SENSOR = "esputnik_stale_metric_days"
STALE_DAYS_RUN_TAGS = {"esputnik/trigger": "stale_metric_days"}  # one tag to filter these recomputations by


def metric_key(name: str) -> dg.AssetKey:
    """The asset key of a metric table of the single account (an account of the file: `AccountNames.metric`)."""
    return SINGLE_ACCOUNT.metric(name)


def _source_key(table: str, names: AccountNames) -> dg.AssetKey:
    """A lineage source: a raw table, or another metric table, of the same account."""
    return names.raw(table) if table in DATASET_NAMES else names.metric(table)


# A window reaching every earlier day (ALL_EARLIER_DAYS) maps to this many days back: a century holds any
# account's first partition, and days before the first partition are simply absent.
ALL_EARLIER_DAYS_OFFSET = -36_525


def window_dep(key: dg.AssetKey, window: tuple[int | None, int]) -> dg.AssetDep:
    """A dependency on the days D+first .. D+last of `key`: a rewrite of any of them makes day D stale."""
    first, last = window
    first = ALL_EARLIER_DAYS_OFFSET if first is None else first
    with warnings.catch_warnings():  # the flag is beta; without it a window reaching before the first partition or
        warnings.simplefilter("ignore", dg.BetaWarning)  # past today (a send's later days) would be an error
        mapping = dg.TimeWindowPartitionMapping(
            start_offset=first, end_offset=last, allow_nonexistent_upstream_partitions=True
        )
    return dg.AssetDep(key, partition_mapping=mapping)


def stale_days_condition() -> dg.AutomationCondition:
    """Recompute a metric day that exists once a day it reads was rewritten by a run that did not rewrite it too.

    A day rewritten together with the metric day (the daily run, a backfill of both) resets the condition in the
    same evaluation, or is `in_progress` until the run writes it; Dagster's `any_deps_updated` is not used because it
    ignores every update of a run that wrote *any* day of the metric (the send days before the daily run's range
    would never be recomputed). `missing` days are left alone: only materialized days can be stale, so a late day
    never fills history. Nothing is requested while a source day or the day itself is being written.
    """
    rewritten = dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.newly_updated() | dg.AutomationCondition.will_be_requested()
    ).with_label("a day it reads was rewritten")
    return (
        rewritten.since_last_handled()
        & ~dg.AutomationCondition.missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("stale metric day")


def build_stale_days_sensor(
    keys: Sequence[dg.AssetKey], names: AccountNames = SINGLE_ACCOUNT
) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the metric assets' condition between runs; several days of one metric become one backfill, which
    runs the days in dependency order (contact_daily before the contact_segments days that read it)."""
    return dg.AutomationConditionSensorDefinition(
        names.named(STALE_DAYS_SENSOR),
        target=dg.AssetSelection.assets(*keys),
        default_status=dg.DefaultSensorStatus.RUNNING,
        run_tags={**STALE_DAYS_RUN_TAGS, **names.run_tags},
        emit_backfills=True,
        description="Recomputes the metric days whose window reads a raw (or metric) day that a later run rewrote: "
        "a schedule look-back, a backfill.",
    )


def column_schema(table: MetricTable) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(c.name, c.type, description=c.description) for c in table.columns])


def column_lineage(table: MetricTable, names: AccountNames = SINGLE_ACCOUNT) -> dg.TableColumnLineage:
    return dg.TableColumnLineage(
        deps_by_column={
            c.name: [dg.TableColumnDep(asset_key=_source_key(t, names), column_name=name) for t, name in c.lineage]
            for c in table.columns
            if c.lineage
        }
    )


def compute_day(metric: Metric, engine: MetricEngine, warehouse: MetricsWarehouse, day: date) -> tuple[QueryStats, dict]:
    """Replace day D of the metric's table (its own runner, else its SQL); prune old snapshots; report what it did."""
    if metric.runner is not None:
        stats, extra = metric.runner(metric, engine, warehouse, day)
    else:
        stats, extra = engine.replace_day(metric.table, metric.sql, warehouse.params(day), day), {}
    if metric.snapshot:
        extra["snapshot_rows_pruned"] = engine.delete_before(
            metric.table, day - timedelta(days=warehouse.snapshot_retention_days - 1)
        )
    return stats, extra


def compute_days(
    metric: Metric, engine: MetricEngine, warehouse: MetricsWarehouse, days: Sequence[date], log: Callable[[str], None]
) -> tuple[QueryStats, dict[date, dict]]:
    """Each day of a run's range in order (a trailing mean reads the days before it), after ensuring the raw tables;
    the extra metadata of each day."""
    engine.ensure_raw(metric.reads)
    total, notes = QueryStats(), {}
    for day in days:
        stats, notes[day] = compute_day(metric, engine, warehouse, day)
        total.add(stats)
        log(f"{metric.name} {day}: {stats.rows_written} rows")
    return total, notes


def table_row_counts(metric: Metric, engine: MetricEngine, days: Sequence[date]) -> tuple[int, dict[date, int]]:
    """The metric table's rows after a run's writes: in all, and on each day of the run (0 for a day left empty)."""
    total, _ = engine.fetch(f"SELECT COUNT(*) AS row_count FROM metrics.{metric.name}", {})
    per_day, _ = engine.fetch(
        f"SELECT date, COUNT(*) AS row_count FROM metrics.{metric.name} WHERE date BETWEEN @first_day AND @last_day "
        "GROUP BY date",
        {"first_day": days[0], "last_day": days[-1]},
    )
    counted = dict(zip(per_day["date"].to_list(), per_day["row_count"].to_list()))
    return int(total["row_count"][0]), {day: int(counted.get(day, 0)) for day in days}


def day_kpi_notes(notes: dict) -> dict[str, dg.MetadataValue]:
    """A day's numeric notes that are headline figures (the churn model's held-out AUC), as a KPI of that day."""
    return {f"{KPI_PREFIX}/{n}": dg.MetadataValue.float(float(notes[n])) for n in KPI_NOTES if n in notes}


def cost_metadata(metric: Metric, warehouse: MetricsWarehouse) -> dict[str, str]:
    """On a metric that prices messages: where its costs per message come from, and their values when there are any."""
    if not parameter_names(metric.sql) & {cost_parameter(m) for m in MEDIA_TYPES}:
        return {}
    costs = warehouse.cost_per_message
    values = {"cost_per_message": ", ".join(f"{m} {costs.get(m, 0.0):g}" for m in MEDIA_TYPES)} if costs else {}
    return {"costs": warehouse.costs, **values}


def build_metric_asset(
    metric: Metric,
    partitions_def: dg.PartitionsDefinition,
    backfill_policy: dg.BackfillPolicy,
    freshness: Freshness | None = None,
    names: AccountNames = SINGLE_ACCOUNT,
) -> dg.AssetsDefinition:
    upstream_window = metric.upstream_window or metric.window
    deps = [window_dep(names.raw(d), metric.window) for d in metric.reads] + [
        window_dep(names.metric(m), upstream_window) for m in metric.upstream
    ]
    key = names.metric(metric.name)
    resource_key = names.resource(RESOURCE_KEY)
    checks = checks_for(metric)
    check_specs = [
        dg.AssetCheckSpec(c.name, asset=key, description=c.describe(metric.table), blocking=c.blocking) for c in checks
    ]
    if freshness:
        check_specs.append(dg.AssetCheckSpec(PARTITION_ON_TIME, asset=key, description=freshness.description))

    @dg.multi_asset(  # one asset; a multi-asset so that its checks report once per partition (can_subset)
        name=key.to_python_identifier(),
        specs=[
            dg.AssetSpec(
                key,
                group_name=names.metrics_prefix,
                description=metric.formula,
                deps=deps,
                kinds={"sql"},
                metadata={"dagster/column_schema": column_schema(metric.table), "formula": metric.formula},
                freshness_policy=freshness.policy() if freshness else None,
                automation_condition=stale_days_condition(),
            )
        ],
        partitions_def=partitions_def,
        backfill_policy=backfill_policy,
        check_specs=check_specs,
        can_subset=True,
        required_resource_keys={resource_key},
        op_tags=names.run_tags,
    )
    @redacted_errors
    def metric_asset(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation]:
        metrics_warehouse: MetricsWarehouse = getattr(context.resources, resource_key)
        window = context.partition_time_window
        days = LocalWindow.for_days(window.start.date(), window.end.date()).days()
        wanted = [c for c in checks if dg.AssetCheckKey(key, c.name) in context.selected_asset_check_keys]
        with metrics_warehouse.open() as engine:
            total, day_notes = compute_days(metric, engine, metrics_warehouse, days, context.log.info)
            table_rows, day_rows = table_row_counts(metric, engine, days)
            outcomes = evaluate_metric_checks(metric, engine, metrics_warehouse, days, wanted)
            kpis = kpi_metadata(KPI_FIGURES[metric.name], engine, days) if metric.name in KPI_FIGURES else {}
        notes = day_notes[days[-1]]
        for day, rows in day_rows.items():  # each partition of a range run gets its own day's count and figures
            context.add_asset_metadata(
                {"dagster/partition_row_count": rows, **kpis.get(day, {}), **day_kpi_notes(day_notes[day])},
                partition_key=day.isoformat(),
            )
        bytes_processed = (  # only an engine that reports them (BigQuery) has bytes to show
            {"bytes_processed": sum(total.bytes_processed),
             "bytes_processed_per_query": ", ".join(str(b) for b in total.bytes_processed)}
            if total.bytes_processed else {}
        )  # fmt: skip
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "dagster/row_count": table_rows,
                "rows_written": total.rows_written,
                "dagster/column_lineage": column_lineage(metric.table, names),
                "days": f"{days[0]} .. {days[-1]}" if len(days) > 1 else str(days[0]),
                "table": f"{metrics_warehouse.location()}.{metric.name}",
                **bytes_processed,
                **cost_metadata(metric, metrics_warehouse),
                **notes,
            },
        )
        for check in wanted:  # each partition of the run gets its own day's outcome
            for day, outcome in outcomes[check.name].items():
                yield outcome.evaluation(key, check.name, check.blocking, day.isoformat())
        if freshness and dg.AssetCheckKey(key, PARTITION_ON_TIME) in context.selected_asset_check_keys:
            outcome = freshness.evaluate(context.instance, key, freshness.clock(), context.partition_keys)
            yield from outcome.per_partition(key, PARTITION_ON_TIME, False, context.partition_keys)

    return metric_asset


def build_metric_assets(
    metrics: Sequence[Metric],
    datasets: Sequence[str],
    partitions_def: dg.PartitionsDefinition,
    backfill_policy: dg.BackfillPolicy,
    freshness: Freshness | None = None,
    names: AccountNames = SINGLE_ACCOUNT,
) -> list[dg.AssetsDefinition]:
    """The metric assets whose raw inputs are exported (and whose upstream metrics are built), in dependency order."""
    built: list[str] = []
    for metric in metrics:
        if set(metric.reads) <= set(datasets) and set(metric.upstream) <= set(built):
            built.append(metric.name)
    return [
        build_metric_asset(m, partitions_def, backfill_policy, freshness, names) for m in metrics if m.name in built
    ]
