"""esputnik_metrics/kpi_dashboard: the account's KPIs of the last 90 days as one self-contained HTML page per day.

Daily-partitioned like the metrics, so the daily job and a backfill build it with them: partition D draws the 90
days D-89 .. D (its dependency on each metric it reads is that window) and writes ``kpi_dashboard_<D>.html`` in the
dashboard folder (ESPUTNIK_DASHBOARD_DIR; by default a ``kpi_dashboard`` folder beside the DuckDB file, or
``data/kpi_dashboard`` on BigQuery); the path is the materialization's ``path`` and ``dagster/uri``. Each chart's data
is one bounded query of the metric tables through the metric engine (project SQL, DuckDB and BigQuery alike); the
charts are SVG drawn here (see `svg.py`), the page holds no script and loads nothing, so it opens offline.

Flagged days are recomputed from the metric tables with the rule of the raw ``kpi_*`` checks (a KPI more than
ESPUTNIK_CHECK_KPI_MAX_DROP below its trailing 7-day baseline) rather than read from the Dagster instance: the
checks report one outcome per run range, the tables hold each day, and the page is then the same on any instance.
A channel's delivery, open or click rate is flagged against channel_engagement's ``<rate>_prev_7d`` (the weighted
rate of D-7 .. D-1); the day's revenue against the mean daily_sales revenue of the 7 days before it.
"""

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from html import escape
from pathlib import Path

import dagster as dg
import polars as pl
from pydantic import Field

from esputnik_assets.keys import SINGLE_ACCOUNT, AccountNames
from esputnik_assets.metrics.assets import RESOURCE_KEY, window_dep
from esputnik_assets.metrics.engine import MetricEngine
from esputnik_assets.metrics.kpis import HIGH_RISK_SCORE
from esputnik_assets.metrics.resource import MetricsWarehouse
from esputnik_assets.metrics.svg import PALETTE, Series, bar_chart, bars_and_line, line_chart, number, percent
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.step_errors import redacted_errors

DASHBOARD = "kpi_dashboard"
DASHBOARD_RESOURCE_KEY = "kpi_dashboard"  # the asset's parameter of that name
DASHBOARD_DAYS = 90
SENDS_SHOWN = 20  # the latest sends drawn in "sends by broadcast"
READS = ("channel_engagement", "broadcast_performance", "daily_sales", "contact_segments", "churn_risk")
FLAGGED_RATES = ("delivery_rate", "open_rate", "click_rate")  # the rates the raw kpi_* checks watch
FUNNEL_RATES = (*FLAGGED_RATES, "unsubscribe_rate")
# The funnel's axis stops at 100%: an activity day's open rate can exceed it (opens of earlier deliveries), and one
# such day (a day whose deliveries failed) would flatten every other day's line.
RATE_AXIS_TOP = 1.0

# One bounded query per chart; @first_day .. @last_day is the page's 90 days.
FUNNEL_SQL = f"""
SELECT date, mediaType, delivered, {", ".join(f"{r}, {r}_prev_7d" for r in FUNNEL_RATES)},
  {", ".join(f"{r} < (1 - @max_drop) * {r}_prev_7d AS {r}_flagged" for r in FLAGGED_RATES)}
FROM metrics.channel_engagement
WHERE date BETWEEN @first_day AND @last_day
ORDER BY date, mediaType
"""
SENDS_SQL = f"""
SELECT date, broadcastId, name, mediaType, delivered, unique_opens, unique_clicks
FROM metrics.broadcast_performance
WHERE date BETWEEN @first_day AND @last_day
ORDER BY date DESC, broadcastId DESC
LIMIT {SENDS_SHOWN}
"""
SALES_SQL = """
SELECT *, revenue < (1 - @max_drop) * revenue_prev_7d_mean AS revenue_flagged FROM (
  SELECT date, revenue, attributed_share,
    AVG(revenue) OVER (
      ORDER BY DATE_DIFF(date, DATE '1970-01-01', DAY) RANGE BETWEEN 7 PRECEDING AND 1 PRECEDING
    ) AS revenue_prev_7d_mean
  FROM metrics.daily_sales WHERE date BETWEEN DATE_SUB(@first_day, INTERVAL 7 DAY) AND @last_day
) AS sales
WHERE date >= @first_day
ORDER BY date
"""
SEGMENTS_SQL = """
SELECT date, segment, COUNT(*) AS contacts
FROM metrics.contact_segments
WHERE date BETWEEN @first_day AND @last_day
GROUP BY date, segment
ORDER BY date, segment
"""
CHURN_SQL = f"""
SELECT IF(churn_score IS NULL, -1, LEAST(CAST(FLOOR(churn_score * 10) AS INT64), 9)) AS bucket, COUNT(*) AS contacts,
  COUNTIF(churn_score >= {HIGH_RISK_SCORE}) AS high_risk
FROM metrics.churn_risk
WHERE date = (SELECT MAX(date) FROM metrics.churn_risk WHERE date BETWEEN @first_day AND @last_day)
GROUP BY bucket
ORDER BY bucket
"""
CHARTS = ("funnel", "sends", "revenue", "segments", "churn")  # the page's charts, as its data-chart attributes


class KpiDashboard(dg.ConfigurableResource):
    """Where the dashboard pages go and the drop that flags a KPI (the raw kpi_* checks' threshold)."""

    directory: str = Field(description="Folder of the pages (ESPUTNIK_DASHBOARD_DIR)")
    kpi_max_drop: float = Field(
        default=0.3,
        description="A KPI this far (relative) below its 7-day baseline is flagged (ESPUTNIK_CHECK_KPI_MAX_DROP)",
    )

    def page_path(self, day: date) -> Path:
        return Path(self.directory) / f"{DASHBOARD}_{day.isoformat()}.html"


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _funnel(frame: pl.DataFrame, days: list[date]) -> tuple[str, int]:
    """A chart per channel (most delivered first): its rates, their 7-day baselines dashed, flagged days in red."""
    if frame.is_empty():
        return "<p>No channel activity in these days.</p>", 0
    order = (  # a channel without a delivery in these days has no rate to draw
        frame.group_by("mediaType").agg(pl.col("delivered").sum()).filter(pl.col("delivered") > 0)
        .sort(["delivered", "mediaType"], descending=True)
    )  # fmt: skip
    html, flags = [], 0
    for media in order["mediaType"]:
        rows = frame.filter(pl.col("mediaType") == media)
        series, flagged = [], {}
        by_day = {r["date"]: r for r in rows.to_dicts()}
        for i, rate in enumerate(FLAGGED_RATES):
            series.append(Series(rate, {d: r[rate] for d, r in by_day.items()}, PALETTE[i]))
            baseline = {d: r[f"{rate}_prev_7d"] for d, r in by_day.items()}
            series.append(Series(f"{rate} previous 7 days", baseline, PALETTE[i], dashed=True))
            for d, r in by_day.items():
                if r[f"{rate}_flagged"]:
                    flagged[d] = "; ".join(
                        filter(None, [flagged.get(d), f"{rate} {percent(r[rate])} vs {percent(r[f'{rate}_prev_7d'])}"])
                    )
        flags += len(flagged)
        last = rows.sort("date").row(-1, named=True)
        latest = ", ".join(
            f"{r} {percent(last[r]) if last[r] is not None else 'n/a'} (prev 7d "
            f"{percent(last[f'{r}_prev_7d']) if last[f'{r}_prev_7d'] is not None else 'n/a'})"
            for r in FUNNEL_RATES
        )
        html.append(
            f'<div class="channel" data-channel="{escape(media)}"><h3>{escape(media)}</h3>'
            f'<p class="latest">{last["date"]}: {escape(latest)}</p>'
            f"{line_chart(f'{media} funnel rates', days, series, percent, flagged, RATE_AXIS_TOP)}</div>"
        )
    return f'<div class="channels">{"".join(html)}</div>', flags


def _sends(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return "<p>No sends in these days.</p>"
    rows = frame.to_dicts()
    labels = [f"{r['date']:%m-%d} {r['mediaType'] or '?'}: {r['name'] or r['broadcastId']}"[:34] for r in rows]
    series = [(name, PALETTE[i], [float(r[column] or 0) for r in rows])
              for i, (name, column) in enumerate((("delivered", "delivered"), ("unique opens", "unique_opens"),
                                                  ("unique clicks", "unique_clicks")))]  # fmt: skip
    return bar_chart("sends by broadcast", labels, series, number)


def _revenue(frame: pl.DataFrame, days: list[date]) -> tuple[str, int]:
    rows = {r["date"]: r for r in frame.to_dicts()}
    flagged = {
        d: f"revenue {number(r['revenue'])} vs 7-day mean {number(r['revenue_prev_7d_mean'])}"
        for d, r in rows.items()
        if r["revenue_flagged"]
    }
    bars = Series("revenue", {d: r["revenue"] for d, r in rows.items()}, PALETTE[0])
    share = Series("attributed share", {d: r["attributed_share"] for d, r in rows.items()}, PALETTE[1])
    return bars_and_line("revenue and attributed share", days, bars, share, number, percent, flagged), len(flagged)


def _segments(frame: pl.DataFrame, days: list[date]) -> str:
    names, held = sorted(set(frame["segment"].to_list()) - {None}), set(frame["date"].to_list())
    counts = {(d, name): n for d, name, n in frame.select("date", "segment", "contacts").iter_rows()}
    series = [  # a day the table holds without a segment's contacts counts 0 of them
        Series(name, {d: counts.get((d, name), 0) for d in held}, PALETTE[i % len(PALETTE)])
        for i, name in enumerate(names)
    ]
    return line_chart("contacts per segment", days, series, number)


def _churn(frame: pl.DataFrame) -> str:
    counts = dict(zip(frame["bucket"].to_list(), frame["contacts"].to_list()))
    labels = ["not scored", *(f"{b / 10:.1f} - {(b + 1) / 10:.1f}" for b in range(10))]
    values = [float(counts.get(b, 0)) for b in range(-1, 10)]
    scored, high = sum(values[1:]), int(frame["high_risk"].sum() or 0)
    share = f"{high / scored:.1%} of {number(scored)} scored contacts" if scored else "no contact scored yet"
    caption = f"<p>High risk (score &ge; {HIGH_RISK_SCORE}): {share}.</p>"
    return caption + bar_chart("churn score distribution", labels, [("contacts", PALETTE[3], values)], number)


STYLE = """
body{font:13px system-ui,sans-serif;margin:24px;color:#222;max-width:1360px}
h1{font-size:20px}h2{font-size:16px;margin:0 0 6px}h3{font-size:14px;margin:8px 0 2px}
.charts{display:flex;flex-wrap:wrap;gap:16px}
figure.chart{margin:0;padding:12px;border:1px solid #ddd;border-radius:6px;flex:1 1 600px}
figure[data-chart=funnel]{flex-basis:100%}
.channels{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:8px 16px}
figure svg[role=img]{width:100%;height:auto;max-width:720px}
svg text{font-size:10px;fill:#555}svg .grid{stroke:#eee}
.legend{display:flex;flex-wrap:wrap;gap:10px;font-size:11px}.key svg{margin-right:4px}
.latest{margin:0;font-size:11px;color:#555}.flags{color:#d62728}
"""


def render_page(engine: MetricEngine, day: date, max_drop: float) -> tuple[str, dict[str, int]]:
    """The page as of `day` (its 90 days), and figures about it: the flagged days per chart."""
    window_start = day - timedelta(days=DASHBOARD_DAYS - 1)
    params = {"first_day": window_start, "last_day": day, "max_drop": max_drop}
    funnel_rows, sales, segments = (engine.fetch(sql, params)[0] for sql in (FUNNEL_SQL, SALES_SQL, SEGMENTS_SQL))
    # the time axis starts at the first day any series has (an account with less history than the window)
    first = min((f["date"].min() for f in (funnel_rows, sales, segments) if f.height), default=day)
    days = _days(first, day)
    funnel, funnel_flags = _funnel(funnel_rows, days)
    revenue, revenue_flags = _revenue(sales, days)
    charts = {
        "funnel": ("Funnel rates per channel, against their previous 7 days", funnel),
        "sends": (f"Sends by broadcast (the latest {SENDS_SHOWN})", _sends(engine.fetch(SENDS_SQL, params)[0])),
        "revenue": ("Revenue and attributed share", revenue),
        "segments": ("Segments over time", _segments(segments, days)),
        "churn": ("Churn-risk distribution (the latest day scored)", _churn(engine.fetch(CHURN_SQL, params)[0])),
    }
    body = "".join(
        f'<figure class="chart" data-chart="{name}"><h2>{escape(title)}</h2>{html}</figure>'
        for name, (title, html) in charts.items()
    )
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>KPI trends to {day}</title><style>{STYLE}</style></head><body>"
        f"<h1>KPI trends to {day}: the last {DASHBOARD_DAYS} days (data from {first})</h1>"
        f'<p>From the metric tables; made {made}. <span class="flags">Red bands</span>: days a KPI fell more than '
        f"{max_drop:.0%} below its 7-day baseline (the kpi_* checks' rule). Hover a point for its value.</p>"
        f'<div class="charts">{body}</div></body></html>'
    )
    return page, {"flagged_channel_days": funnel_flags, "flagged_revenue_days": revenue_flags}


def build_kpi_dashboard_asset(
    partitions_def: dg.PartitionsDefinition, backfill_policy: dg.BackfillPolicy, names: AccountNames = SINGLE_ACCOUNT
) -> dg.AssetsDefinition:
    """The dashboard asset of one account, downstream of the metric tables it draws (the 90 days up to D)."""
    warehouse_key, dashboard_key = names.resource(RESOURCE_KEY), names.resource(DASHBOARD_RESOURCE_KEY)

    @dg.asset(
        key=names.metric(DASHBOARD),
        group_name=names.metrics_prefix,
        description=f"The last {DASHBOARD_DAYS} days of KPIs as one self-contained HTML page (no script, no network): "
        "funnel rates per channel with their 7-day baselines, sends by broadcast, revenue and attributed share, "
        "segments over time, the churn-risk distribution, flagged days in red.",
        deps=[window_dep(names.metric(m), (-(DASHBOARD_DAYS - 1), 0)) for m in READS],
        partitions_def=partitions_def,
        backfill_policy=backfill_policy,
        kinds={"html"},
        required_resource_keys={warehouse_key, dashboard_key},
        op_tags=names.run_tags,
    )
    @redacted_errors
    def kpi_dashboard_pages(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult]:
        metrics_warehouse: MetricsWarehouse = getattr(context.resources, warehouse_key)
        kpi_dashboard: KpiDashboard = getattr(context.resources, dashboard_key)
        window = context.partition_time_window
        days = LocalWindow.for_days(window.start.date(), window.end.date()).days()
        with metrics_warehouse.open() as engine:
            for day in days:  # each partition of a range run gets its own page
                page, figures = render_page(engine, day, kpi_dashboard.kpi_max_drop)
                path = kpi_dashboard.page_path(day)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(page, encoding="utf-8")
                context.add_asset_metadata(
                    {"path": dg.MetadataValue.path(str(path.resolve())),
                     "dagster/uri": dg.MetadataValue.url(path.resolve().as_uri()),
                     "page_bytes": len(page.encode()), **figures},
                    partition_key=day.isoformat(),
                )  # fmt: skip
                context.log.info(f"{DASHBOARD} {day}: {path}")
        yield dg.MaterializeResult(metadata={"days": f"{days[0]} .. {days[-1]}" if len(days) > 1 else str(days[0])})

    return kpi_dashboard_pages
