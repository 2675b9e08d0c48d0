"""Checks on every metric table: its key (grain) unique and not null, its rates in [0, 1], campaign_roi's credit
within the day's attributed sales.

Each check is one query in project SQL (BigQuery's dialect), run by the metric engine in the warehouse over the days
a run wrote, so DuckDB and BigQuery evaluate the same definition; only one example row per day comes back to
Python. Every outcome is per day (the run's partitions each get their own) and a failure names the table, the day and
an example offending key. The checks are generic over `MetricTable`: they read the table's declared `grain`,
`nullable_grain` and the columns declared `rate=True`, so a new metric table gets them by declaring those.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from esputnik_assets.checks.raw import ERROR, Outcome
from esputnik_assets.metrics.catalog import CAMPAIGN_ROI, DAILY_SALES, SALES_ATTRIBUTED_REVENUE_SQL, Metric
from esputnik_assets.metrics.engine import MetricEngine, MetricTable
from esputnik_assets.metrics.resource import MetricsWarehouse

GRAIN_UNIQUE, GRAIN_NOT_NULL, RATES_IN_RANGE = "grain_unique", "grain_not_null", "rates_in_range"
CREDITED_WITHIN_SALES = "credited_within_sales"
# Float sums of the same amounts in another order may differ in the last bits: credit beyond sales by less than
# this share of the day's attributed revenue (or of 1) is rounding, not a second credit.
CREDIT_TOLERANCE = 1e-9

DayOutcomes = dict[date, Outcome]


@dataclass(frozen=True)
class MetricCheck:
    """One check, described once; `applies` says which metric tables get it."""

    name: str
    blocking: bool
    applies: Callable[[MetricTable], bool]
    describe: Callable[[MetricTable], str]
    evaluate: Callable[[MetricEngine, MetricsWarehouse, MetricTable, Sequence[date]], DayOutcomes]


def _keys(table: MetricTable) -> list[str]:
    """The grain's columns besides `date`: what names a row within its day."""
    return [c for c in table.grain if c != "date"]


def _required_keys(table: MetricTable) -> list[str]:
    return [c for c in _keys(table) if c not in table.nullable_grain]


def _rates(table: MetricTable) -> list[str]:
    return [c.name for c in table.columns if c.rate]


def _example_per_day(engine: MetricEngine, source: str, select: str, where: str, order: str, days: Sequence[date]
                     ) -> dict[date, dict]:  # fmt: skip
    """The offending rows of `source` on the run's days, as one query: per day, their count and the first by `order`."""
    sql = f"""
SELECT * FROM (
  SELECT {select}, COUNT(*) OVER (PARTITION BY date) AS offending,
    ROW_NUMBER() OVER (PARTITION BY date ORDER BY {order}) AS example_rank
  FROM {source} AS checked
  WHERE date BETWEEN @first_day AND @last_day AND ({where})
) AS ranked
WHERE example_rank = 1
"""
    frame, _ = engine.fetch(sql, {"first_day": days[0], "last_day": days[-1]})
    return {row["date"]: row for row in frame.to_dicts()}


def _key_text(row: dict, columns: Sequence[str]) -> str:
    """The example's key: its grain columns besides date (a table of one row per day: its date)."""
    return ", ".join(f"{c}={row[c]}" for c in columns or ["date"])


def _by_day(days: Sequence[date], found: dict[date, dict], passed: Callable[[date], Outcome],
            failed: Callable[[date, dict], Outcome]) -> DayOutcomes:  # fmt: skip
    return {day: failed(day, found[day]) if day in found else passed(day) for day in days}


# -- grain ------------------------------------------------------------------------------------------------------


def _grain_unique(engine: MetricEngine, _: MetricsWarehouse, table: MetricTable, days: Sequence[date]) -> DayOutcomes:
    columns, keys = ", ".join(table.grain), _keys(table)
    repeated = f"""(
  SELECT {columns}, COUNT(*) AS copies FROM metrics.{table.name}
  WHERE date BETWEEN @first_day AND @last_day GROUP BY {columns} HAVING COUNT(*) > 1
)"""
    order = ", ".join(["copies DESC", *(f"{k} NULLS LAST" for k in keys)])
    found = _example_per_day(engine, repeated, f"{columns}, copies", "TRUE", order, days)
    grain = f"({', '.join(table.grain)})"
    return _by_day(
        days, found,
        lambda day: Outcome(True, f"{table.name} on {day}: every row has its own {grain}", {"day": str(day)}),
        lambda day, row: Outcome(
            False,
            f"{table.name} on {day}: {row['offending']} values of {grain} repeated, e.g. "
            f"{_key_text(row, keys)} in {row['copies']} rows",
            {"day": str(day), "repeated_keys": int(row["offending"]), "example": _key_text(row, keys)},
            ERROR,
        ),
    )  # fmt: skip


def _grain_not_null(engine: MetricEngine, _: MetricsWarehouse, table: MetricTable, days: Sequence[date]) -> DayOutcomes:
    required, keys = _required_keys(table), _keys(table)
    found = _example_per_day(
        engine, f"metrics.{table.name}", ", ".join(table.grain), " OR ".join(f"{c} IS NULL" for c in required),
        ", ".join(f"{k} NULLS LAST" for k in keys), days,
    )  # fmt: skip
    return _by_day(
        days, found,
        lambda day: Outcome(True, f"{table.name} on {day}: {', '.join(required)} never null", {"day": str(day)}),
        lambda day, row: Outcome(
            False,
            f"{table.name} on {day}: {row['offending']} rows with a null key column "
            f"({', '.join(c for c in required if row[c] is None)}), e.g. {_key_text(row, keys)}",
            {"day": str(day), "rows": int(row["offending"]), "example": _key_text(row, keys)},
            ERROR,
        ),
    )  # fmt: skip


# -- rates ------------------------------------------------------------------------------------------------------


def _rates_in_range(engine: MetricEngine, _: MetricsWarehouse, table: MetricTable, days: Sequence[date]) -> DayOutcomes:
    rates, keys = _rates(table), _keys(table)
    outside = " OR ".join(f"{r} < 0 OR {r} > 1" for r in rates)
    order = ", ".join(f"{k} NULLS LAST" for k in keys) or "date"
    found = _example_per_day(engine, f"metrics.{table.name}", ", ".join([*table.grain, *rates]), outside, order, days)

    def failed(day: date, row: dict) -> Outcome:
        outside = ", ".join(f"{r}={row[r]}" for r in rates if row[r] is not None and not 0 <= row[r] <= 1)
        return Outcome(
            False,
            f"{table.name} on {day}: {row['offending']} rows with a rate outside [0, 1], e.g. "
            f"{_key_text(row, keys)}: {outside}",
            {"day": str(day), "rows": int(row["offending"]), "example": f"{_key_text(row, keys)}: {outside}"},
            ERROR,
        )

    return _by_day(
        days, found,
        lambda day: Outcome(True, f"{table.name} on {day}: {', '.join(rates)} within [0, 1] or null", {"day": str(day)}),
        failed,
    )  # fmt: skip


# -- credit -----------------------------------------------------------------------------------------------------

_CREDITED_SQL = f"""
WITH credited AS (SELECT broadcastId, attributed_revenue FROM metrics.{CAMPAIGN_ROI.name} WHERE date = @day),
totals AS (
  SELECT (SELECT COALESCE(SUM(attributed_revenue), 0) FROM credited) AS credited_revenue,
    sales.attributed_revenue AS sales_attributed_revenue,
    (SELECT broadcastId FROM credited ORDER BY attributed_revenue DESC, broadcastId LIMIT 1) AS largest_broadcastId,
    (SELECT MAX(attributed_revenue) FROM credited) AS largest_credit
  FROM ({SALES_ATTRIBUTED_REVENUE_SQL}) AS sales
)
SELECT *,
  credited_revenue - sales_attributed_revenue > {CREDIT_TOLERANCE} * GREATEST(ABS(sales_attributed_revenue), 1)
    AS exceeds
FROM totals
"""


def _credited_within_sales(
    engine: MetricEngine, warehouse: MetricsWarehouse, table: MetricTable, days: Sequence[date]
) -> DayOutcomes:
    """One query per day: daily_sales.attributed_revenue's own SQL (on raw.revenue, as it stands) beside the sum."""
    outcomes = {}
    for day in days:
        frame, _ = engine.fetch(_CREDITED_SQL, warehouse.params(day))
        row = frame.row(0, named=True)
        figures = {"day": str(day), "credited_revenue": float(row["credited_revenue"]),
                   "daily_sales_attributed_revenue": float(row["sales_attributed_revenue"])}  # fmt: skip
        if row["exceeds"]:
            example = f"broadcastId={row['largest_broadcastId']} credited {row['largest_credit']:,.2f}"
            outcomes[day] = Outcome(
                False,
                f"{table.name} on {day}: attributed_revenue over broadcasts {row['credited_revenue']:,.2f} exceeds "
                f"daily_sales.attributed_revenue {row['sales_attributed_revenue']:,.2f} (an order credited more than "
                f"once?), e.g. the largest, {example}",
                {**figures, "example": example},
                ERROR,
            )
        else:
            outcomes[day] = Outcome(
                True,
                f"{table.name} on {day}: attributed_revenue over broadcasts {row['credited_revenue']:,.2f} <= "
                f"daily_sales.attributed_revenue {row['sales_attributed_revenue']:,.2f}",
                figures,
            )
    return outcomes


METRIC_CHECKS: tuple[MetricCheck, ...] = (
    MetricCheck(
        GRAIN_UNIQUE, True, lambda table: True,
        lambda table: f"No two rows of a day share the table's grain ({', '.join(table.grain)})"
        + (f"; a null {', '.join(table.nullable_grain)} is a value of the key" if table.nullable_grain else ""),
        _grain_unique,
    ),
    MetricCheck(
        GRAIN_NOT_NULL, True, lambda table: bool(_required_keys(table)),
        lambda table: f"The grain's key columns ({', '.join(_required_keys(table))}) are never null"
        + (f"; {', '.join(table.nullable_grain)} may be (declared nullable)" if table.nullable_grain else ""),
        _grain_not_null,
    ),
    MetricCheck(
        RATES_IN_RANGE, False, lambda table: bool(_rates(table)),
        lambda table: f"The rates ({', '.join(_rates(table))}: shares by definition) lie in [0, 1] or are null",
        _rates_in_range,
    ),
    MetricCheck(
        CREDITED_WITHIN_SALES, False, lambda table: table.name == CAMPAIGN_ROI.name,
        lambda table: (
            "A day's attributed_revenue summed over broadcasts is at most that day's daily_sales.attributed_revenue "
            f"(its own SQL, evaluated on raw.revenue when {table.name} is written, so the check holds whatever order "
            f"the two assets run in and also where {DAILY_SALES.name} is not built): each order is credited once"
        ),
        _credited_within_sales,
    ),
)  # fmt: skip


def checks_for(metric: Metric) -> list[MetricCheck]:
    """The checks of a metric table, in the order they run."""
    return [check for check in METRIC_CHECKS if check.applies(metric.table)]


def evaluate_metric_checks(
    metric: Metric, engine: MetricEngine, warehouse: MetricsWarehouse, days: Sequence[date],
    checks: Sequence[MetricCheck] | None = None,
) -> dict[str, DayOutcomes]:  # fmt: skip
    """Each check's outcome on each of the run's days, by check name."""
    chosen = checks_for(metric) if checks is None else checks
    return {check.name: check.evaluate(engine, warehouse, metric.table, days) for check in chosen}
