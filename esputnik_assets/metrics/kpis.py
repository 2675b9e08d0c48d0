"""Headline figures of the metric tables, reported as numeric metadata per partition so the Plots tab draws trends.

Each metric that has headline figures declares them here: aggregate expressions over its table, optionally per a
key column (a channel, a segment). One query per run, over the run's days grouped by day (and key), computes them in
the warehouse (project SQL, both engines); only those few numbers per day reach Python. A figure is named
``kpi/<figure>`` or ``kpi/<key value>/<figure>`` (e.g. ``kpi/Email/open_rate``), stable across days, so the
asset's Plots tab shows one trend per name. No per-contact value is ever reported, only sums, counts and ratios.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import dagster as dg

from esputnik_assets.metrics.engine import MetricEngine

KPI_PREFIX = "kpi"
# churn_risk: a contact with at least this probability of no order in the next H days is "high risk"
HIGH_RISK_SCORE = 0.5
# a metric runner's numeric notes of a day that are headline figures too (reported as kpi/<note>)
KPI_NOTES = ("auc_held_out",)


@dataclass(frozen=True)
class KpiFigures:
    """A metric table's headline figures: `figures` maps a figure's name to its aggregate (project SQL) over the
    day's rows, per value of `by` when given; `counts` names the figures that are integers."""

    table: str
    figures: dict[str, str]
    by: str | None = None
    counts: tuple[str, ...] = ()

    def sql(self) -> str:
        keys = ", ".join(["date", *([self.by] if self.by else [])])
        figures = ",\n  ".join(f"{expression} AS {name}" for name, expression in self.figures.items())
        return (
            f"SELECT {keys},\n  {figures}\nFROM metrics.{self.table}\n"
            f"WHERE date BETWEEN @first_day AND @last_day\nGROUP BY {keys}"
        )

    def label(self, figure: str, key: object = None) -> str:
        return "/".join([KPI_PREFIX, *([str(key)] if self.by else []), figure])


_FUNNEL = {
    "delivery_rate": "SAFE_DIVIDE(SUM(delivered), SUM(delivered + undelivered))",
    "open_rate": "SAFE_DIVIDE(SUM(opened), SUM(delivered))",
    "click_rate": "SAFE_DIVIDE(SUM(clicked), SUM(delivered))",
    "unsubscribe_rate": "SAFE_DIVIDE(SUM(unsubscribed), SUM(delivered))",
}

KPI_FIGURES: dict[str, KpiFigures] = {
    # one row per (date, mediaType): each aggregate is that row's own rate (the same formula)
    "channel_engagement": KpiFigures(
        "channel_engagement", {**_FUNNEL, "delivered": "SUM(delivered)"}, by="mediaType", counts=("delivered",)
    ),
    "daily_sales": KpiFigures(
        "daily_sales",
        {"orders": "SUM(orders)", "revenue": "SUM(revenue)", "attributed_share": "SAFE_DIVIDE(SUM(attributed_revenue), "
         "SUM(revenue))"},
        counts=("orders",),
    ),
    "broadcast_performance": KpiFigures(
        "broadcast_performance",
        {"sends": "COUNT(*)", "delivered": "SUM(delivered)", "open_rate": "SAFE_DIVIDE(SUM(unique_opens), "
         "SUM(delivered))", "attributed_revenue": "SUM(attributed_revenue)"},
        counts=("sends", "delivered"),
    ),
    "contact_segments": KpiFigures("contact_segments", {"contacts": "COUNT(*)"}, by="segment", counts=("contacts",)),
    "churn_risk": KpiFigures(
        "churn_risk",
        {"scored_contacts": "COUNT(churn_score)",
         "high_risk_share": f"SAFE_DIVIDE(COUNTIF(churn_score >= {HIGH_RISK_SCORE}), COUNT(churn_score))"},
        counts=("scored_contacts",),
    ),
}  # fmt: skip


def kpi_metadata(
    figures: KpiFigures, engine: MetricEngine, days: Sequence[date]
) -> dict[date, dict[str, dg.MetadataValue]]:
    """Each day's figures as metadata entries; a figure that is null on a day (a zero denominator) is left out."""
    frame, _ = engine.fetch(figures.sql(), {"first_day": days[0], "last_day": days[-1]})
    found: dict[date, dict[str, dg.MetadataValue]] = {day: {} for day in days}
    for row in frame.to_dicts():
        for name in figures.figures:
            value = row[name]
            if value is None:
                continue
            entry = dg.MetadataValue.int(int(value)) if name in figures.counts else dg.MetadataValue.float(float(value))
            found[row["date"]][figures.label(name, row.get(figures.by) if figures.by else None)] = entry
    return found
