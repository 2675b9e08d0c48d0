"""The metric definitions: for each metric, its table, its formula in words, and its one SQL (BigQuery dialect).

Every query describes one local day D of the account and is given these parameters, bound by the driver:
``@day`` (DATE D), ``@start`` / ``@end`` (TIMESTAMP, the UTC instants D spans), ``@start_30d`` / ``@start_90d``
(the UTC start of D-29 / D-89), ``@start_minus_<k>d`` (the UTC start of D-k, k = 1 .. 7), ``@cohort_day`` /
``@cohort_start`` / ``@cohort_end`` (customer_journeys' cohort day), ``@tz`` (the account's time zone),
``@cost_<media>`` (FLOAT64 cost per delivered message, e.g. ``@cost_email``; ``@cost_inapp`` for In-App),
``@attribution_seconds`` and ``@min_pair_orders`` (see `MetricsWarehouse`). Every raw fact read filters its partition
column on these bounds, every metric table read its `date`.

"The day's activities" are contactActivities with activityDateTime in D; a count of a status is the number of
distinct contactId among those activities with that activityStatus; a rate whose denominator is zero is null
(SAFE_DIVIDE).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from esputnik_assets.metrics.engine import MetricColumn, MetricTable

MEDIA_TYPES = ("Sms", "Email", "WebPush", "Viber", "MobilePush", "AppInbox", "Widget", "In-App", "Telegram")


def cost_parameter(media_type: str) -> str:
    """The parameter (and setting suffix) holding the cost per message of a media type: In-App -> cost_inapp."""
    return "cost_" + re.sub(r"[^a-z0-9]", "", media_type.lower())


@dataclass(frozen=True)
class Metric:
    """One metric asset: its table, formula (the asset description), the SQL computing day D, what it reads."""

    table: MetricTable
    formula: str
    sql: str
    reads: tuple[str, ...]  # raw datasets
    upstream: tuple[str, ...] = ()  # metric tables it reads
    snapshot: bool = False  # one copy of the audience per day: the retention setting applies
    # The raw days the row of D reads, as offsets from D (first, last): (-89, 0) reads D-89 .. D, (0, 6) D .. D+6,
    # (ALL_EARLIER_DAYS, 0) every day up to D. A rerun of any of those raw days makes D stale (its partition
    # dependency).
    window: tuple[int | None, int] = (0, 0)
    # The days of its upstream metric tables the row of D reads, when they differ from `window`.
    upstream_window: tuple[int, int] | None = None
    # A metric that needs Python on a bounded result (the churn model) computes its day itself:
    # runner(metric, engine, warehouse, day) -> (QueryStats, extra metadata).
    runner: Callable[..., tuple[Any, dict]] | None = None

    @property
    def name(self) -> str:
        return self.table.name


def col(name: str, type_: str, description: str, *lineage: str, rate: bool = False) -> MetricColumn:
    """A metric column; lineage given as "dataset.column" strings; `rate`: a share in [0, 1] by definition."""
    sources = tuple(tuple(item.split(".", 1)) for item in lineage)
    return MetricColumn(name, type_, description, sources, rate)  # type: ignore[arg-type]


DATE = col("date", "date", "The local day D of the account this row describes")
# The first offset of a window that reads every raw day up to D, back to the first partition (a lifetime or
# cohort table): no fixed offset is honest there, since a rerun of any earlier raw day makes D stale.
ALL_EARLIER_DAYS: None = None
ACT = "contactActivities"


def crediting_rows(start: str, end: str) -> str:
    """Each order's one crediting row in revenue (last touch), for orders with orderDate in [start, end).

    eSputnik's revenue table may hold several rows for one orderId (several messages claim it). The crediting row is
    the one with the latest activityDateTime, ties broken by the greatest messageInstanceId, then the greatest
    broadcastId, a null losing to any value in each; its totalCost is the order's attributed revenue. Every metric
    that credits orders to broadcasts or workflows reads this, so no order is credited twice. `start` / `end` are
    SQL expressions (parameters such as ``@start``).
    """
    return f"""(
  SELECT orderId, contactId, broadcastId, workflowId, mediaType, messageInstanceId, activityDateTime, orderDate,
    totalCost
  FROM (
    SELECT *, ROW_NUMBER() OVER (
      PARTITION BY orderId
      ORDER BY activityDateTime DESC NULLS LAST, messageInstanceId DESC NULLS LAST, broadcastId DESC NULLS LAST
    ) AS credit_rank
    FROM raw.revenue WHERE orderDate >= {start} AND orderDate < {end} AND orderId IS NOT NULL
  )
  WHERE credit_rank = 1
)"""


def _status_count(status: str, alias: str) -> str:
    return f"COUNT(DISTINCT IF(activityStatus = '{status}', contactId, NULL)) AS {alias}"


_FUNNEL_COUNTS = ",\n    ".join(
    _status_count(s, a)
    for s, a in (
        ("SENT", "sent"), ("DELIVERED", "delivered"), ("UNDELIVERED", "undelivered"), ("RECEIVED", "opened"),
        ("CLICKED", "clicked"), ("UNSUBSCRIBED", "unsubscribed"), ("SPAM", "spam"),
    )
)  # fmt: skip
_RATES_SQL = """SAFE_DIVIDE(delivered, delivered + undelivered) AS delivery_rate,
  SAFE_DIVIDE(opened, delivered) AS open_rate,
  SAFE_DIVIDE(clicked, delivered) AS click_rate,
  SAFE_DIVIDE(clicked, opened) AS click_to_open_rate,
  SAFE_DIVIDE(unsubscribed, delivered) AS unsubscribe_rate,
  SAFE_DIVIDE(spam, delivered) AS spam_rate"""
RATES = ("delivery_rate", "open_rate", "click_rate", "click_to_open_rate", "unsubscribe_rate", "spam_rate")


def _funnel_columns() -> tuple[MetricColumn, ...]:
    counted = lambda name, status: col(  # noqa: E731
        name, "int", f"Distinct contacts with a {status} activity on D",
        f"{ACT}.contactId", f"{ACT}.activityStatus", f"{ACT}.activityDateTime",
    )
    rate = lambda name, formula, share=False: col(  # noqa: E731
        name, "float", f"{formula}; null when the denominator is 0", rate=share
    )
    return (
        counted("sent", "SENT"), counted("delivered", "DELIVERED"), counted("undelivered", "UNDELIVERED"),
        counted("opened", "RECEIVED (opened)"), counted("clicked", "CLICKED"),
        counted("unsubscribed", "UNSUBSCRIBED"), counted("spam", "SPAM"),
        # only delivery_rate is a share by definition: D's opens, clicks, ... may come from contacts delivered
        # before D, so the other ratios of an activity day can exceed 1
        rate("delivery_rate", "delivered / (delivered + undelivered)", True), rate("open_rate", "opened / delivered"),
        rate("click_rate", "clicked / delivered"), rate("click_to_open_rate", "clicked / opened"),
        rate("unsubscribe_rate", "unsubscribed / delivered"), rate("spam_rate", "spam / delivered"),
    )  # fmt: skip


def _with_rate_lineage(columns: tuple[MetricColumn, ...]) -> tuple[MetricColumn, ...]:
    """Rates are computed from the counts, so they carry the counts' raw lineage."""
    source = (f"{ACT}.contactId", f"{ACT}.activityStatus", f"{ACT}.activityDateTime")
    return tuple(
        replace(c, lineage=tuple(tuple(s.split(".", 1)) for s in source))  # type: ignore[misc]
        if c.name in RATES else c
        for c in columns
    )


CAMPAIGN_PERFORMANCE = Metric(
    table=MetricTable(
        "campaign_performance",
        (
            DATE,
            col("broadcastId", "int", "The broadcast (campaign)", f"{ACT}.broadcastId"),
            col("name", "string", "The broadcast's name", "broadcasts.name"),
            col("mediaType", "string", "The broadcast's media type (the activities' when the broadcast is unknown)",
                "broadcasts.mediaType", f"{ACT}.mediaType"),
            *_with_rate_lineage(_funnel_columns()),
        ),
        cluster_by=("broadcastId",),
        grain=("date", "broadcastId"),
    ),
    formula=(
        "One row per broadcastId (not null) with activity on D. sent, delivered, undelivered, opened (RECEIVED), "
        "clicked, unsubscribed, spam = distinct contactId among D's activities of the broadcast with that status. "
        "delivery_rate = delivered / (delivered + undelivered); open_rate = opened / delivered; click_rate = "
        "clicked / delivered; click_to_open_rate = clicked / opened; unsubscribe_rate = unsubscribed / delivered; "
        "spam_rate = spam / delivered; a zero denominator gives null. name and mediaType from broadcasts."
    ),
    sql=f"""
WITH counts AS (
  SELECT broadcastId, MAX(mediaType) AS activity_media,
    {_FUNNEL_COUNTS}
  FROM raw.contactActivities
  WHERE activityDateTime >= @start AND activityDateTime < @end AND broadcastId IS NOT NULL
  GROUP BY broadcastId
)
SELECT @day AS date, c.broadcastId, b.name, COALESCE(b.mediaType, c.activity_media) AS mediaType,
  sent, delivered, undelivered, opened, clicked, unsubscribed, spam,
  {_RATES_SQL}
FROM counts AS c LEFT JOIN raw.broadcasts AS b ON b.id = c.broadcastId
""",
    reads=(ACT, "broadcasts"),
)

# daily_sales.attributed_revenue of D, one definition: the table's column and the check `credited_within_sales`
SALES_ATTRIBUTED_REVENUE_SQL = """
  SELECT COALESCE(SUM(totalCost), 0) AS attributed_revenue FROM (
    SELECT orderId, MAX(totalCost) AS totalCost FROM raw.revenue
    WHERE orderDate >= @start AND orderDate < @end GROUP BY orderId
  )
"""

DAILY_SALES = Metric(
    table=MetricTable(
        "daily_sales",
        (
            DATE,
            col("orders", "int", "Distinct orderId with orderDate in D and Status not CANCELED (null is not canceled)",
                "orders.orderId", "orders.Status", "orders.orderDate"),
            col("revenue", "float", "Sum of those orders' totalCost (0 without orders)", "orders.totalCost"),
            col("average_order_value", "float", "revenue / orders; null without orders",
                "orders.totalCost", "orders.orderId"),
            col("items", "int", "Sum of orderItems.quantity of those orders", "orderItems.quantity", "orderItems.orderId"),
            col("canceled_orders", "int", "Distinct orderId with orderDate in D and Status CANCELED",
                "orders.orderId", "orders.Status"),
            col("attributed_revenue", "float", "Sum of totalCost over distinct orderId in revenue with orderDate in D",
                "revenue.orderId", "revenue.totalCost", "revenue.orderDate"),
            col("attributed_share", "float", "attributed_revenue / revenue; null when revenue is 0",
                "revenue.totalCost", "orders.totalCost"),
        ),
        grain=("date",),
    ),
    formula=(
        "One row for D. orders = distinct orderId with orderDate in D and Status not CANCELED (a null Status is not "
        "canceled); revenue = sum of their totalCost; average_order_value = revenue / orders; items = sum of "
        "orderItems.quantity of those orders; canceled_orders = distinct CANCELED orderId; attributed_revenue = sum "
        "of totalCost over distinct orderId in revenue with orderDate in D; attributed_share = attributed_revenue / "
        "revenue. A zero denominator gives null."
    ),
    sql=f"""
WITH day_orders AS (
  SELECT orderId, MAX(totalCost) AS totalCost, LOGICAL_OR(Status = 'CANCELED') AS canceled
  FROM raw.orders WHERE orderDate >= @start AND orderDate < @end
  GROUP BY orderId
),
kept AS (SELECT orderId, totalCost FROM day_orders WHERE canceled IS NULL OR NOT canceled),
sales AS (SELECT COUNT(*) AS orders, COALESCE(SUM(totalCost), 0) AS revenue FROM kept),
items AS (
  SELECT COALESCE(SUM(i.quantity), 0) AS items FROM raw.orderItems AS i
  WHERE i.orderDate >= @start AND i.orderDate < @end AND i.orderId IN (SELECT orderId FROM kept)
),
canceled AS (SELECT COUNT(*) AS canceled_orders FROM day_orders WHERE canceled),
attributed AS ({SALES_ATTRIBUTED_REVENUE_SQL})
SELECT @day AS date, s.orders, s.revenue, SAFE_DIVIDE(s.revenue, s.orders) AS average_order_value, i.items,
  c.canceled_orders, a.attributed_revenue, SAFE_DIVIDE(a.attributed_revenue, s.revenue) AS attributed_share
FROM sales AS s CROSS JOIN items AS i CROSS JOIN canceled AS c CROSS JOIN attributed AS a
""",
    reads=("orders", "orderItems", "revenue"),
)

_COST_CASE = "CASE mediaType " + " ".join(f"WHEN '{m}' THEN @{cost_parameter(m)}" for m in MEDIA_TYPES) + " ELSE 0 END"

CAMPAIGN_ROI = Metric(
    table=MetricTable(
        "campaign_roi",
        (
            DATE,
            col("broadcastId", "int", "The broadcast", f"{ACT}.broadcastId", "revenue.broadcastId"),
            col("mediaType", "string", "The broadcast's media type (else its activities' or revenue rows')",
                "broadcasts.mediaType", f"{ACT}.mediaType", "revenue.mediaType"),
            col("delivered", "int", "Distinct contacts with a DELIVERED activity of the broadcast on D",
                f"{ACT}.contactId", f"{ACT}.activityStatus"),
            col("attributed_orders", "int", "Distinct orderId with orderDate in D whose crediting row (last touch: "
                "one per order) has this broadcastId", "revenue.orderId", "revenue.broadcastId", "revenue.orderDate",
                "revenue.activityDateTime", "revenue.messageInstanceId"),
            col("attributed_revenue", "float", "Sum of those orders' totalCost (their crediting rows')",
                "revenue.totalCost"),
            col("cost", "float", "delivered x the configured cost per message of the media type (ESPUTNIK_COST_PER_"
                "MESSAGE_<MEDIA>)", f"{ACT}.contactId", f"{ACT}.mediaType"),
            col("roi", "float", "(attributed_revenue - cost) / cost; null when cost is 0",
                "revenue.totalCost", f"{ACT}.contactId"),
            col("revenue_per_delivered", "float", "attributed_revenue / delivered; null when delivered is 0",
                "revenue.totalCost", f"{ACT}.contactId"),
        ),
        cluster_by=("broadcastId",),
        grain=("date", "broadcastId"),
    ),
    formula=(
        "One row per broadcastId with delivered messages on D or credited orders with orderDate in D. delivered = "
        "distinct contactId with DELIVERED among D's activities of the broadcast. Each order is credited once, to its "
        "crediting row: the revenue row of that orderId with the latest activityDateTime (ties: the greatest "
        "messageInstanceId, then the greatest broadcastId; a null loses to any value in each). attributed_orders = "
        "distinct orderId with orderDate in D whose crediting row has that broadcastId; attributed_revenue = sum of "
        "their totalCost (crediting row); cost = delivered x the "
        "configured cost per message of the mediaType; roi = (attributed_revenue - cost) / cost; "
        "revenue_per_delivered = attributed_revenue / delivered. A zero denominator gives null."
    ),
    sql=f"""
WITH delivered AS (
  SELECT broadcastId, MAX(mediaType) AS media, COUNT(DISTINCT contactId) AS delivered
  FROM raw.contactActivities
  WHERE activityDateTime >= @start AND activityDateTime < @end AND broadcastId IS NOT NULL
    AND activityStatus = 'DELIVERED'
  GROUP BY broadcastId
),
attributed AS (
  SELECT broadcastId, MAX(mediaType) AS media, COUNT(*) AS attributed_orders, SUM(totalCost) AS attributed_revenue
  FROM {crediting_rows("@start", "@end")} AS credited
  WHERE broadcastId IS NOT NULL
  GROUP BY broadcastId
),
joined AS (
  SELECT COALESCE(d.broadcastId, a.broadcastId) AS broadcastId, COALESCE(d.media, a.media) AS media,
    COALESCE(d.delivered, 0) AS delivered, COALESCE(a.attributed_orders, 0) AS attributed_orders,
    COALESCE(a.attributed_revenue, 0) AS attributed_revenue
  FROM delivered AS d FULL OUTER JOIN attributed AS a ON a.broadcastId = d.broadcastId
),
costed AS (
  SELECT j.broadcastId, COALESCE(b.mediaType, j.media) AS mediaType, j.delivered, j.attributed_orders,
    j.attributed_revenue
  FROM joined AS j LEFT JOIN raw.broadcasts AS b ON b.id = j.broadcastId
)
SELECT @day AS date, broadcastId, mediaType, delivered, attributed_orders, attributed_revenue,
  delivered * {_COST_CASE} AS cost,
  SAFE_DIVIDE(attributed_revenue - delivered * {_COST_CASE}, delivered * {_COST_CASE}) AS roi,
  SAFE_DIVIDE(attributed_revenue, delivered) AS revenue_per_delivered
FROM costed
""",
    reads=(ACT, "revenue", "broadcasts"),
)



# ---- designed metrics -------------------------------------------------------------------------------------------

# The funnel's statuses: (activityStatus, distinct-contact count, total-row count).
_STATUSES = (
    ("SENT", "sent", "total_sent"), ("DELIVERED", "delivered", "total_delivered"),
    ("UNDELIVERED", "undelivered", "total_undelivered"), ("RECEIVED", "opened", "total_opens"),
    ("CLICKED", "clicked", "total_clicks"), ("UNSUBSCRIBED", "unsubscribed", "total_unsubscribed"),
    ("SPAM", "spam", "total_spam"),
)  # fmt: skip
_TOTAL_COUNTS = ",\n    ".join(f"COUNTIF(activityStatus = '{s}') AS {total}" for s, _, total in _STATUSES)
# Each rate of _RATES_SQL as (numerator, the counts its denominator sums), over the distinct-contact counts.
_RATE_TERMS = {
    "delivery_rate": ("delivered", ("delivered", "undelivered")), "open_rate": ("opened", ("delivered",)),
    "click_rate": ("clicked", ("delivered",)), "click_to_open_rate": ("clicked", ("opened",)),
    "unsubscribe_rate": ("unsubscribed", ("delivered",)), "spam_rate": ("spam", ("delivered",)),
}  # fmt: skip


def _rates_of(alias: str, suffix: str = "") -> str:
    """The rates over the counts of the relation `alias`, each named <rate><suffix>."""
    return ",\n  ".join(
        f"SAFE_DIVIDE({alias}.{num}, {' + '.join(f'{alias}.{d}' for d in den)}) AS {rate}{suffix}"
        for rate, (num, den) in _RATE_TERMS.items()
    )


_UNION = "\n  UNION ALL\n  "


def _day_counts(back: int, totals: bool = False) -> str:
    """The distinct-contact counts (and the total counts) per channel of day D-back, one scan per day: DuckDB's
    distinct aggregates over 8 days at once, grouped by day, took 20 times as long as 8 one-day scans."""
    start = "@start" if back == 0 else f"@start_minus_{back}d"
    end = {0: "@end", 1: "@start"}.get(back, f"@start_minus_{back - 1}d")
    counts = _FUNNEL_COUNTS + (",\n    " + _TOTAL_COUNTS if totals else "")
    return f"""SELECT COALESCE(mediaType, 'Unknown') AS mediaType,
    {counts}
  FROM raw.contactActivities
  WHERE activityDateTime >= {start} AND activityDateTime < {end}
  GROUP BY COALESCE(mediaType, 'Unknown')"""


CHANNEL_ENGAGEMENT = Metric(
    table=MetricTable(
        "channel_engagement",
        (
            DATE,
            col("mediaType", "string", "The channel (activities without one: 'Unknown')", f"{ACT}.mediaType"),
            *_with_rate_lineage(_funnel_columns()),
            *(
                col(total, "int", f"{s} activities (rows, a contact's second counts again) in the channel on D",
                    f"{ACT}.activityStatus", f"{ACT}.activityDateTime")
                for s, _, total in _STATUSES
            ),
            *(
                col(f"{rate}_prev_7d", "float", f"Weighted {rate} of D-7 .. D-1 (D excluded): the sum over those "
                    f"days of the daily {num} over the sum of the daily {' + '.join(den)}; null when that sum is 0",
                    f"{ACT}.contactId", f"{ACT}.activityStatus", f"{ACT}.activityDateTime",
                    rate=rate == "delivery_rate")  # a share of the same contacts; opens of D can exceed D's delivered
                for rate, (num, den) in _RATE_TERMS.items()
            ),
        ),
        cluster_by=("mediaType",),
        grain=("date", "mediaType"),
    ),
    formula=(
        "Use cases 1 and 6 (campaign performance by channel, KPI monitoring). One row per mediaType with activity on "
        "D, over all of D's activities (broadcasts and triggered messages): the funnel counts and rates of "
        "campaign_performance (distinct contacts per status; rates null on a zero denominator); the total counts "
        "total_sent, total_delivered, total_undelivered, total_opens (RECEIVED rows), total_clicks (CLICKED rows), "
        "total_unsubscribed, total_spam (activity rows, a repeat counting again); and for each rate the weighted "
        "rate of the 7 days before D, <rate>_prev_7d = the sum over D-7 .. D-1 of that channel's daily numerator "
        "over the sum of its daily denominator (each daily count being that day's distinct contacts, as D's are; "
        "e.g. open_rate_prev_7d = sum of daily opened / sum of daily delivered), null when the summed denominator is "
        "0. D itself is excluded, so D's rate can be compared with its week. Computed from the raw activities of "
        "D-7 .. D (never from this table's earlier rows), so a range run, a day's run and a backfill in any order "
        "give the same rows; a rerun of any raw day D-7 .. D makes D's row stale."
    ),
    sql=f"""
WITH today AS (
  {_day_counts(0, totals=True)}
),
daily AS (
  {_UNION.join(_day_counts(back) for back in range(1, 8))}
),
previous AS (
  SELECT mediaType, SUM(delivered) AS delivered, SUM(undelivered) AS undelivered, SUM(opened) AS opened,
    SUM(clicked) AS clicked, SUM(unsubscribed) AS unsubscribed, SUM(spam) AS spam
  FROM daily
  GROUP BY mediaType
)
SELECT @day AS date, t.mediaType, {", ".join(f"t.{unique}" for _, unique, _ in _STATUSES)},
  {", ".join(f"t.{total}" for _, _, total in _STATUSES)},
  {_rates_of("t")},
  {_rates_of("p", "_prev_7d")}
FROM today AS t LEFT JOIN previous AS p ON p.mediaType = t.mediaType
""",
    reads=(ACT,),
    window=(-7, 0),
)

CONTACT_DAILY = Metric(
    table=MetricTable(
        "contact_daily",
        (
            DATE,
            col("contactId", "int", "The contact", f"{ACT}.contactId", "orders.contactId"),
            col("mediaType", "string", "The channel of the activity counts; null on the row holding the day's orders",
                f"{ACT}.mediaType"),
            col("delivered", "int", "DELIVERED activities of the contact in the channel on D", f"{ACT}.activityStatus"),
            col("opened", "int", "RECEIVED (open) activities on D (a second open counts again)", f"{ACT}.activityStatus"),
            col("clicked", "int", "CLICKED activities on D", f"{ACT}.activityStatus"),
            col("unsubscribed", "int", "UNSUBSCRIBED activities on D", f"{ACT}.activityStatus"),
            col("last_activity_at", "timestamp", "The contact's last activity in the channel on D (UTC)",
                f"{ACT}.activityDateTime"),
            col("orders", "int", "Distinct orders of the contact on D, Status not CANCELED", "orders.orderId",
                "orders.Status"),
            col("revenue", "float", "Sum of those orders' totalCost", "orders.totalCost"),
            col("last_order_at", "timestamp", "The contact's last such order on D (UTC)", "orders.orderDate"),
        ),
        cluster_by=("contactId",),
        # the orders row has no channel: its null mediaType is part of the key (WHERE mediaType IS NULL selects it)
        grain=("date", "contactId", "mediaType"),
        nullable_grain=("mediaType",),
    ),
    formula=(
        "The daily per-contact summary that contact_segments, contact_profiles and churn_risk sum over their windows, "
        "so a day's run never rescans 90 days of raw activity. Per contact and mediaType with activity on D: counts "
        "of DELIVERED, RECEIVED (opened), CLICKED and UNSUBSCRIBED activities and the last activity time; plus one "
        "row per contact with orders on D (mediaType null): orders = distinct orderId with Status not CANCELED (null "
        "is not canceled), revenue = sum of their totalCost, last_order_at."
    ),
    sql="""
WITH activity AS (
  SELECT contactId, COALESCE(mediaType, 'Unknown') AS mediaType,
    COUNTIF(activityStatus = 'DELIVERED') AS delivered, COUNTIF(activityStatus = 'RECEIVED') AS opened,
    COUNTIF(activityStatus = 'CLICKED') AS clicked, COUNTIF(activityStatus = 'UNSUBSCRIBED') AS unsubscribed,
    MAX(activityDateTime) AS last_activity_at
  FROM raw.contactActivities
  WHERE activityDateTime >= @start AND activityDateTime < @end AND contactId IS NOT NULL
  GROUP BY contactId, COALESCE(mediaType, 'Unknown')
),
day_orders AS (
  SELECT orderId, MAX(contactId) AS contactId, MAX(totalCost) AS totalCost, MAX(orderDate) AS orderDate,
    LOGICAL_OR(Status = 'CANCELED') AS canceled
  FROM raw.orders WHERE orderDate >= @start AND orderDate < @end
  GROUP BY orderId
),
buyers AS (
  SELECT contactId, COUNT(*) AS orders, SUM(totalCost) AS revenue, MAX(orderDate) AS last_order_at
  FROM day_orders WHERE (canceled IS NULL OR NOT canceled) AND contactId IS NOT NULL
  GROUP BY contactId
)
SELECT @day AS date, contactId, mediaType, delivered, opened, clicked, unsubscribed, last_activity_at,
  0 AS orders, 0.0 AS revenue, CAST(NULL AS TIMESTAMP) AS last_order_at
FROM activity
UNION ALL
SELECT @day AS date, contactId, CAST(NULL AS STRING) AS mediaType, 0 AS delivered, 0 AS opened, 0 AS clicked,
  0 AS unsubscribed, CAST(NULL AS TIMESTAMP) AS last_activity_at, orders, COALESCE(revenue, 0) AS revenue, last_order_at
FROM buyers
""",
    reads=(ACT, "orders"),
)

SEGMENT_RULES = (
    "segment, first rule that matches: 'engaged_prospect' no order in 90 days but an open or click in 30; "
    "'unengaged' no order and no open or click; 'champions' 3+ orders, the last within 14 days; 'new' exactly one "
    "order, within 30 days; 'loyal' 2+ orders, the last within 30 days; 'at_risk' 2+ orders, the last 31-90 days "
    "ago; 'hibernating' one order, 31-90 days ago"
)

CONTACT_SEGMENTS = Metric(
    table=MetricTable(
        "contact_segments",
        (
            DATE,
            col("contactId", "int", "The contact (every known contact, plus any active in the window)",
                "contacts.contactId", "contact_daily.contactId"),
            col("recency_days", "int", "Days from the last order day to D within D-89 .. D; null without orders",
                "contact_daily.last_order_at", "contact_daily.orders"),
            col("frequency", "int", "Orders (not canceled) over D-89 .. D", "contact_daily.orders"),
            col("monetary", "float", "Their revenue (sum of totalCost) over D-89 .. D", "contact_daily.revenue"),
            col("opens_30d", "int", "Opens (RECEIVED activities) over D-29 .. D", "contact_daily.opened"),
            col("clicks_30d", "int", "Clicks over D-29 .. D", "contact_daily.clicked"),
            col("preferred_channel", "string", "mediaType with the most opens + clicks over D-29 .. D (ties: "
                "alphabetical); null without any", "contact_daily.mediaType", "contact_daily.opened"),
            col("segment", "string", SEGMENT_RULES, "contact_daily.orders", "contact_daily.opened"),
        ),
        cluster_by=("segment", "contactId"),
        grain=("date", "contactId"),
    ),
    formula=(
        "Use case 2 (segmentation). Per contact as of D, summed from the daily summary contact_daily (never from "
        "raw activity): RFM over the 90 days D-89 .. D (recency_days = D - last day with an order, frequency = "
        "orders, monetary = revenue), opens_30d and clicks_30d over D-29 .. D, preferred_channel = the mediaType "
        f"with the most opens + clicks in 30 days; {SEGMENT_RULES}. A snapshot: kept for the retention setting."
    ),
    sql="""
WITH window90 AS (
  SELECT contactId, SUM(orders) AS frequency, SUM(revenue) AS monetary,
    MAX(IF(orders > 0, date, NULL)) AS last_order_date,
    SUM(IF(date > DATE_SUB(@day, INTERVAL 30 DAY), opened, 0)) AS opens_30d,
    SUM(IF(date > DATE_SUB(@day, INTERVAL 30 DAY), clicked, 0)) AS clicks_30d
  FROM metrics.contact_daily
  WHERE date > DATE_SUB(@day, INTERVAL 90 DAY) AND date <= @day
  GROUP BY contactId
),
channels AS (
  SELECT contactId, mediaType,
    ROW_NUMBER() OVER (PARTITION BY contactId ORDER BY SUM(opened + clicked) DESC, mediaType) AS channel_rank
  FROM metrics.contact_daily
  WHERE date > DATE_SUB(@day, INTERVAL 30 DAY) AND date <= @day AND mediaType IS NOT NULL
  GROUP BY contactId, mediaType
  HAVING SUM(opened + clicked) > 0
),
audience AS (
  SELECT contactId FROM raw.contacts WHERE contactId IS NOT NULL
  UNION DISTINCT
  SELECT contactId FROM window90
),
features AS (
  SELECT a.contactId, DATE_DIFF(@day, w.last_order_date, DAY) AS recency_days,
    COALESCE(w.frequency, 0) AS frequency, COALESCE(w.monetary, 0) AS monetary,
    COALESCE(w.opens_30d, 0) AS opens_30d, COALESCE(w.clicks_30d, 0) AS clicks_30d, c.mediaType AS preferred_channel
  FROM audience AS a
  LEFT JOIN window90 AS w ON w.contactId = a.contactId
  LEFT JOIN channels AS c ON c.contactId = a.contactId AND c.channel_rank = 1
)
SELECT @day AS date, contactId, recency_days, frequency, monetary, opens_30d, clicks_30d, preferred_channel,
  CASE
    WHEN frequency = 0 AND opens_30d + clicks_30d > 0 THEN 'engaged_prospect'
    WHEN frequency = 0 THEN 'unengaged'
    WHEN frequency >= 3 AND recency_days <= 14 THEN 'champions'
    WHEN frequency = 1 AND recency_days <= 30 THEN 'new'
    WHEN frequency >= 2 AND recency_days <= 30 THEN 'loyal'
    WHEN frequency >= 2 THEN 'at_risk'
    ELSE 'hibernating'
  END AS segment
FROM features
""",
    reads=("contacts",),
    upstream=("contact_daily",),
    snapshot=True,
    window=(-89, 0),
)

CONTACT_PROFILES = Metric(
    table=MetricTable(
        "contact_profiles",
        (
            DATE,
            col("contactId", "int", "The contact (every known contact)", "contacts.contactId"),
            col("language", "string", "The contact's language code", "contacts.languageCode"),
            col("preferred_channel", "string", "As in contact_segments for D", "contact_segments.preferred_channel"),
            col("most_active_hour", "int", "Local hour (0-23, account time zone) with the most opens + clicks over "
                "D-29 .. D (ties: the earliest); null without any", f"{ACT}.activityDateTime", f"{ACT}.activityStatus"),
            col("device_count", "int", "The contact's devices", "devices.deviceId"),
            col("device_models", "string", "Distinct device models, comma-separated, sorted", "devices.deviceModel"),
            col("operating_systems", "string", "Distinct 'osType osVersion', comma-separated, sorted",
                "devices.osType", "devices.osVersion"),
            col("last_event_type", "string", "Type of the contact's last event over D-29 .. D", "events.eventTypeKey"),
            col("last_event_at", "timestamp", "Time of that event (UTC)", "events.occured"),
        ),
        cluster_by=("contactId",),
        grain=("date", "contactId"),
    ),
    formula=(
        "Use case 3 (personalization, retargeting). Per known contact as of D: language (contacts.languageCode), "
        "preferred_channel (contact_segments), most_active_hour = the local hour with the most RECEIVED + CLICKED "
        "activities over D-29 .. D (ties: earliest hour), the contact's devices (count, models, 'osType osVersion'), "
        "and the type and time of its last event over D-29 .. D. A snapshot: kept for the retention setting."
    ),
    sql="""
WITH hours AS (
  SELECT contactId, EXTRACT(HOUR FROM activityDateTime AT TIME ZONE @tz) AS hour, COUNT(*) AS actions
  FROM raw.contactActivities
  WHERE activityDateTime >= @start_30d AND activityDateTime < @end AND activityStatus IN ('RECEIVED', 'CLICKED')
    AND contactId IS NOT NULL
  GROUP BY contactId, EXTRACT(HOUR FROM activityDateTime AT TIME ZONE @tz)
),
top_hour AS (
  SELECT contactId, hour, ROW_NUMBER() OVER (PARTITION BY contactId ORDER BY actions DESC, hour) AS hour_rank
  FROM hours
),
owned AS (
  SELECT contactId, COUNT(DISTINCT deviceId) AS device_count,
    STRING_AGG(DISTINCT deviceModel, ', ' ORDER BY deviceModel) AS device_models,
    STRING_AGG(DISTINCT osType || ' ' || osVersion, ', ' ORDER BY osType || ' ' || osVersion) AS operating_systems
  FROM raw.devices WHERE contactId IS NOT NULL
  GROUP BY contactId
),
events AS (
  SELECT contactId, eventTypeKey, occured,
    ROW_NUMBER() OVER (PARTITION BY contactId ORDER BY occured DESC, eventId DESC) AS event_rank
  FROM raw.events
  WHERE occured >= @start_30d AND occured < @end AND contactId IS NOT NULL
),
known AS (
  SELECT contactId, MAX(languageCode) AS language FROM raw.contacts WHERE contactId IS NOT NULL GROUP BY contactId
)
SELECT @day AS date, k.contactId, k.language, s.preferred_channel, h.hour AS most_active_hour,
  COALESCE(d.device_count, 0) AS device_count, d.device_models, d.operating_systems,
  e.eventTypeKey AS last_event_type, e.occured AS last_event_at
FROM known AS k
LEFT JOIN (SELECT contactId, preferred_channel FROM metrics.contact_segments WHERE date = @day) AS s
  ON s.contactId = k.contactId
LEFT JOIN top_hour AS h ON h.contactId = k.contactId AND h.hour_rank = 1
LEFT JOIN owned AS d ON d.contactId = k.contactId
LEFT JOIN events AS e ON e.contactId = k.contactId AND e.event_rank = 1
""",
    reads=("contacts", ACT, "devices", "events"),
    upstream=("contact_segments",),
    snapshot=True,
    window=(-29, 0),
    upstream_window=(0, 0),
)

PRODUCT_AFFINITY = Metric(
    table=MetricTable(
        "product_affinity",
        (
            DATE,
            col("product", "string", "Product A (externalProductId, else name)", "orderItems.externalProductId",
                "orderItems.name"),
            col("other_product", "string", "Product B bought in the same order", "orderItems.externalProductId",
                "orderItems.name"),
            col("pair_orders", "int", "Orders over D-89 .. D holding both A and B", "orderItems.orderId"),
            col("product_orders", "int", "Orders holding A", "orderItems.orderId"),
            col("other_orders", "int", "Orders holding B", "orderItems.orderId"),
            col("baskets", "int", "Orders with at least one product over D-89 .. D", "orderItems.orderId"),
            col("support", "float", "pair_orders / baskets", "orderItems.orderId", rate=True),
            col("confidence", "float", "pair_orders / product_orders: P(B | A)", "orderItems.orderId", rate=True),
            col("lift", "float", "confidence / (other_orders / baskets): > 1 when A and B go together more than "
                "chance", "orderItems.orderId"),
        ),
        cluster_by=("product",),
        grain=("date", "product", "other_product"),
    ),
    formula=(
        "Use case 5 (order analysis, recommendations). Baskets = orders with orderDate in D-89 .. D that are not "
        "CANCELED, each as its set of products (externalProductId, else name). For every ordered pair A -> B bought "
        "together in at least ESPUTNIK_AFFINITY_MIN_PAIR_ORDERS (default 2) orders: support = pair_orders / baskets, "
        "confidence = pair_orders / orders with A, lift = confidence / (orders with B / baskets)."
    ),
    sql="""
WITH canceled AS (
  SELECT DISTINCT orderId FROM raw.orders
  WHERE orderDate >= @start_90d AND orderDate < @end AND Status = 'CANCELED'
),
baskets AS (
  SELECT DISTINCT i.orderId, COALESCE(i.externalProductId, i.name) AS product
  FROM raw.orderItems AS i
  WHERE i.orderDate >= @start_90d AND i.orderDate < @end AND COALESCE(i.externalProductId, i.name) IS NOT NULL
    AND i.orderId NOT IN (SELECT orderId FROM canceled)
),
totals AS (SELECT COUNT(DISTINCT orderId) AS baskets FROM baskets),
singles AS (SELECT product, COUNT(*) AS orders FROM baskets GROUP BY product),
pairs AS (
  SELECT a.product, b.product AS other_product, COUNT(*) AS pair_orders
  FROM baskets AS a JOIN baskets AS b ON a.orderId = b.orderId AND a.product <> b.product
  GROUP BY a.product, b.product
  HAVING COUNT(*) >= @min_pair_orders
)
SELECT @day AS date, p.product, p.other_product, p.pair_orders, s.orders AS product_orders, o.orders AS other_orders,
  t.baskets, p.pair_orders / t.baskets AS support, p.pair_orders / s.orders AS confidence,
  (p.pair_orders / s.orders) / (o.orders / t.baskets) AS lift
FROM pairs AS p
JOIN singles AS s ON s.product = p.product
JOIN singles AS o ON o.product = p.other_product
CROSS JOIN totals AS t
""",
    reads=("orderItems", "orders"),
    window=(-89, 0),
)

def journey_lag_days(attribution_window_hours: int) -> int:
    """customer_journeys' row of D follows the contacts delivered this many days earlier: every window has closed."""
    return -(-attribution_window_hours // 24)


# Channels with no open event in eSputnik (an SMS has no read receipt): their `opened` step and the conversions
# that use it are null, not 0. Every other channel, 'Unknown' included, can report opens (RECEIVED).
MEDIA_WITHOUT_OPENS = ("Sms",)
_WITHOUT_OPENS_SQL = ", ".join(f"'{m}'" for m in MEDIA_WITHOUT_OPENS)
_JOURNEY_ORDERS = "orders.orderId", "orders.contactId", "orders.orderDate", "orders.Status"
_JOURNEY_CREDIT = "revenue.orderId", "revenue.mediaType", "revenue.activityDateTime"

CUSTOMER_JOURNEYS = Metric(
    table=MetricTable(
        "customer_journeys",
        (
            DATE,
            col("cohort_date", "date", "C = D - ceil(W / 24 h) days: the day the cohort's contacts were delivered",
                f"{ACT}.activityDateTime"),
            col("mediaType", "string", "The channel ('Unknown' without one)", f"{ACT}.mediaType"),
            col("delivered", "int", "Contacts with a DELIVERED activity in the channel on C (the cohort)",
                f"{ACT}.contactId", f"{ACT}.activityStatus", f"{ACT}.activityDateTime"),
            col("opened", "int", "Of those, contacts that opened (RECEIVED) in the channel within W hours after their "
                "first delivery of C; null for a channel without opens (Sms)", f"{ACT}.activityStatus",
                f"{ACT}.activityDateTime"),
            col("clicked", "int", "Of the delivered, contacts that clicked in the channel within W hours after their "
                "first delivery of C, with or without an open", f"{ACT}.activityStatus", f"{ACT}.activityDateTime"),
            col("ordered", "int", "Of the clicked, contacts with an order of the channel (below) placed from their "
                "first such click up to W hours after their delivery", *_JOURNEY_ORDERS, *_JOURNEY_CREDIT),
            col("orders", "int", "Those orders (distinct orderId): each order counts once, in one channel",
                *_JOURNEY_ORDERS, *_JOURNEY_CREDIT),
            col("revenue", "float", "Sum of those orders' totalCost (orders table); 0 without orders",
                "orders.totalCost", *_JOURNEY_ORDERS),
            col("open_conversion", "float", "opened / delivered; null for a channel without opens",
                f"{ACT}.activityStatus", rate=True),
            col("click_through_conversion", "float", "clicked / delivered", f"{ACT}.activityStatus", rate=True),
            col("order_conversion", "float", "ordered / clicked", *_JOURNEY_ORDERS, rate=True),
            col("overall_conversion", "float", "ordered / delivered", *_JOURNEY_ORDERS, rate=True),
            col("dropped_before_open", "int", "delivered - opened; null for a channel without opens",
                f"{ACT}.activityStatus"),
            col("not_clicked", "int", "delivered - clicked", f"{ACT}.activityStatus"),
            col("dropped_before_order", "int", "clicked - ordered", *_JOURNEY_ORDERS),
        ),
        grain=("date", "mediaType"),
    ),
    formula=(
        "Use case 8 (customer journeys). The row of day D follows the cohort of cohort_date C = D - ceil(W / 24 h) "
        "days, W = ESPUTNIK_ATTRIBUTION_WINDOW_HOURS (default 72, so C = D-3): per channel (mediaType), the contacts "
        "with a DELIVERED activity in that channel on C, each followed from its first delivery of C (delivered_at) "
        "for W hours (its window; a window still open at the end of D, possible only across a spring DST change, is "
        "cut there). opened = those with a RECEIVED activity in the channel in their window (null, not 0, for "
        "channels without an open event: Sms); clicked = those with a CLICKED activity in the channel in their "
        "window, with or without an open; ordered = those clicked with an order of that channel placed from their "
        "first click in the window to the window's end. An order (orders table, not CANCELED) belongs to one "
        "channel only: the mediaType of its crediting row in revenue (last touch, one per orderId), or, when "
        "eSputnik credited none (or its crediting row has no mediaType), the channel of the contact's last click at "
        "or before the order and at most W hours before it (ties: the alphabetically first mediaType); an order "
        "with neither counts nowhere. orders / revenue = those orders and their totalCost. Conversions: "
        "open_conversion = opened / delivered, click_through_conversion = clicked / delivered, order_conversion = "
        "ordered / clicked, overall_conversion = ordered / delivered (null on a zero denominator); drop-offs: "
        "dropped_before_open = delivered - opened, not_clicked = delivered - clicked, dropped_before_order = clicked "
        "- ordered. Every window has closed by the end of D, so the row reads the raw days C .. D only and is final "
        "once they are: a rerun of any of them makes it stale, later days never change it."
    ),
    sql=f"""
WITH cohort AS (
  SELECT contactId, COALESCE(mediaType, 'Unknown') AS mediaType, MIN(activityDateTime) AS delivered_at
  FROM raw.contactActivities
  WHERE activityDateTime >= @cohort_start AND activityDateTime < @cohort_end AND contactId IS NOT NULL
    AND activityStatus = 'DELIVERED'
  GROUP BY contactId, COALESCE(mediaType, 'Unknown')
),
reach AS (
  SELECT contactId, COALESCE(mediaType, 'Unknown') AS mediaType, activityStatus, activityDateTime
  FROM raw.contactActivities
  WHERE activityDateTime >= @cohort_start AND activityDateTime < @end AND contactId IS NOT NULL
    AND activityStatus IN ('RECEIVED', 'CLICKED')
),
steps AS (
  SELECT c.contactId, c.mediaType,
    LEAST(TIMESTAMP_ADD(c.delivered_at, INTERVAL @attribution_seconds SECOND), @end) AS window_end,
    COUNTIF(r.activityStatus = 'RECEIVED') > 0 AS opened,
    MIN(IF(r.activityStatus = 'CLICKED', r.activityDateTime, NULL)) AS first_click_at
  FROM cohort AS c
  LEFT JOIN reach AS r ON r.contactId = c.contactId AND r.mediaType = c.mediaType
    AND r.activityDateTime >= c.delivered_at
    AND r.activityDateTime <= TIMESTAMP_ADD(c.delivered_at, INTERVAL @attribution_seconds SECOND)
  GROUP BY c.contactId, c.mediaType, c.delivered_at
),
placed AS (
  SELECT orderId, MAX(contactId) AS contactId, MIN(orderDate) AS orderDate, MAX(totalCost) AS totalCost
  FROM raw.orders
  WHERE orderDate >= @cohort_start AND orderDate < @end
  GROUP BY orderId
  HAVING NOT COALESCE(LOGICAL_OR(Status = 'CANCELED'), FALSE)
),
last_clicks AS (  -- a counted order follows a click of C .. D, so its last click lies in C .. D too
  SELECT o.orderId, r.mediaType,
    ROW_NUMBER() OVER (PARTITION BY o.orderId ORDER BY r.activityDateTime DESC, r.mediaType) AS click_rank
  FROM placed AS o
  JOIN reach AS r ON r.contactId = o.contactId AND r.activityStatus = 'CLICKED' AND r.activityDateTime <= o.orderDate
    AND r.activityDateTime >= TIMESTAMP_SUB(o.orderDate, INTERVAL @attribution_seconds SECOND)
),
channel_orders AS (
  SELECT o.orderId, o.contactId, o.orderDate, o.totalCost, COALESCE(c.mediaType, l.mediaType) AS mediaType
  FROM placed AS o
  LEFT JOIN {crediting_rows("@cohort_start", "@end")} AS c ON c.orderId = o.orderId
  LEFT JOIN last_clicks AS l ON l.orderId = o.orderId AND l.click_rank = 1
),
converted AS (
  SELECT s.contactId, s.mediaType, COUNT(*) AS orders, SUM(o.totalCost) AS revenue
  FROM steps AS s
  JOIN channel_orders AS o ON o.contactId = s.contactId AND o.mediaType = s.mediaType
  WHERE o.orderDate >= s.first_click_at AND o.orderDate <= s.window_end AND o.orderDate < @end
  GROUP BY s.contactId, s.mediaType
),
funnel AS (
  SELECT s.mediaType, COUNT(*) AS delivered,
    IF(s.mediaType IN ({_WITHOUT_OPENS_SQL}), NULL, COUNTIF(s.opened)) AS opened,
    COUNTIF(s.first_click_at IS NOT NULL) AS clicked, COUNTIF(v.contactId IS NOT NULL) AS ordered,
    COALESCE(SUM(v.orders), 0) AS orders, COALESCE(SUM(v.revenue), 0) AS revenue
  FROM steps AS s LEFT JOIN converted AS v ON v.contactId = s.contactId AND v.mediaType = s.mediaType
  GROUP BY s.mediaType
)
SELECT @day AS date, @cohort_day AS cohort_date, mediaType, delivered, opened, clicked, ordered, orders, revenue,
  SAFE_DIVIDE(opened, delivered) AS open_conversion, SAFE_DIVIDE(clicked, delivered) AS click_through_conversion,
  SAFE_DIVIDE(ordered, clicked) AS order_conversion, SAFE_DIVIDE(ordered, delivered) AS overall_conversion,
  delivered - opened AS dropped_before_open, delivered - clicked AS not_clicked,
  clicked - ordered AS dropped_before_order
FROM funnel
""",
    reads=(ACT, "orders", "revenue"),
    window=(-3, 0),  # cohort C .. D, C = D - ceil(W / 24 h): the settings' W replaces it in wiring.metrics_for
)

# ---- people and cohorts over the whole history: contact_lifetime, order_cohorts -------------------------------

# The lower bound of "all history" for crediting_rows: before any order eSputnik can hold.
_HISTORY_START = "TIMESTAMP '1970-01-01 00:00:00+00'"

# An order as the warehouse holds it up to the end of D: its rows (status updates) per (contactId, orderId), with
# orderDate before the end of D. Its date is the earliest orderDate of those rows, its totalCost the greatest (as in
# daily_sales), and it is canceled when any of its rows has Status CANCELED (daily_sales' LOGICAL_OR; a null Status is
# not canceled), so a CANCELED update cancels the order whatever row came before or after it.
_ORDERS_TO_DATE = """
  SELECT contactId, orderId, MIN(orderDate) AS orderDate, MAX(totalCost) AS totalCost,
    COALESCE(LOGICAL_OR(Status = 'CANCELED'), FALSE) AS canceled
  FROM raw.orders
  WHERE orderDate < @end AND contactId IS NOT NULL AND orderId IS NOT NULL
  GROUP BY contactId, orderId"""

RFM_RULES = (
    "Among the contacts with orders > 0 on D (n of them), each score is 1 + floor(5 x s), s = the share of those n "
    "with a strictly worse value: a longer days_since_last_order (recency_score), fewer orders (frequency_score), "
    "less revenue (monetary_score). Equal values share a score (so ties can only lower it; the best of n >= 5 "
    "distinct values scores 5), and a contact without orders (only canceled ones) has null scores; rfm_score = the "
    "three digits, e.g. '545'"
)
LIFECYCLE_RULES = (
    "E = the expected days between orders: greatest(average_days_between_orders, 7) with 2+ orders, 30 with one. "
    "First match: 'canceled_only' orders = 0; 'new' one order, days_since_last_order <= 30; 'active' 2+ orders, "
    "days_since_last_order <= 1.5 x E; 'at_risk' days_since_last_order <= 3 x E; else 'lapsed'"
)

CONTACT_LIFETIME = Metric(
    table=MetricTable(
        "contact_lifetime",
        (
            DATE,
            col("contactId", "int", "The contact: every contactId (not null) with an order dated before the end of D",
                "orders.contactId"),
            col("first_order_at", "timestamp", "Earliest orderDate of its orders that are not CANCELED; null without",
                "orders.orderDate", "orders.Status"),
            col("last_order_at", "timestamp", "Latest orderDate of its orders that are not CANCELED; null without",
                "orders.orderDate", "orders.Status"),
            col("orders", "int", "Distinct orderId not CANCELED (a null Status is not canceled) up to the end of D",
                "orders.orderId", "orders.Status"),
            col("revenue", "float", "Sum of those orders' totalCost (0 without orders)", "orders.totalCost"),
            col("average_order_value", "float", "revenue / orders; null without orders", "orders.totalCost"),
            col("canceled_orders", "int", "Distinct orderId with a CANCELED row", "orders.orderId", "orders.Status"),
            col("attributed_revenue", "float", "Sum of orders.totalCost of its not-canceled orders that have a "
                "crediting row in revenue", "orders.totalCost", "revenue.orderId"),
            col("organic_revenue", "float", "revenue - attributed_revenue", "orders.totalCost", "revenue.orderId"),
            col("days_since_last_order", "int", "D - the local date of last_order_at; null without orders",
                "orders.orderDate"),
            col("average_days_between_orders", "float", "(local date of last_order_at - local date of first_order_at) "
                "/ (orders - 1); null below 2 orders", "orders.orderDate"),
            col("recency_score", "int", "1-5 quintile of days_since_last_order among buyers, 5 = most recent",
                "orders.orderDate"),
            col("frequency_score", "int", "1-5 quintile of orders among buyers, 5 = most orders", "orders.orderId"),
            col("monetary_score", "int", "1-5 quintile of revenue among buyers, 5 = most revenue", "orders.totalCost"),
            col("rfm_score", "string", RFM_RULES, "orders.orderDate", "orders.orderId", "orders.totalCost"),
            col("lifecycle_stage", "string", LIFECYCLE_RULES, "orders.orderDate", "orders.orderId", "orders.Status"),
        ),
        cluster_by=("contactId",),
        grain=("date", "contactId"),
    ),
    formula=(
        "Use cases 2, 3 and 5 (one row per person over its whole history). One row per contactId (not null) with at "
        "least one order with orderDate before the end of D, as the warehouse holds them when D is materialized. An "
        "order is its rows in orders (status updates) with that contactId and orderId: it is CANCELED when any of "
        "its rows is (a null Status is not canceled), dated by its earliest orderDate, worth its greatest totalCost. "
        "first_order_at / last_order_at = min / max date of the orders not canceled; orders = their count; revenue "
        "= sum of their totalCost (0 without); average_order_value = revenue / orders; canceled_orders = the "
        "canceled ones; attributed_revenue = sum of totalCost of the not-canceled orders that have a crediting row "
        "(the last-touch row of revenue, orderDate before the end of D); organic_revenue = revenue - "
        "attributed_revenue; days_since_last_order = D - the local date of last_order_at (null without); "
        "average_days_between_orders = (local last - local first date) / (orders - 1), null below 2 orders. RFM: "
        f"{RFM_RULES}. Lifecycle: {LIFECYCLE_RULES}. A zero denominator gives null. A snapshot of all history: kept "
        "for the retention setting; D reads every raw day up to D."
    ),
    sql=f"""
WITH contact_orders AS ({_ORDERS_TO_DATE}
),
credited AS (SELECT orderId FROM {crediting_rows(_HISTORY_START, "@end")}),
lifetime AS (
  SELECT o.contactId,
    MIN(IF(o.canceled, NULL, o.orderDate)) AS first_order_at, MAX(IF(o.canceled, NULL, o.orderDate)) AS last_order_at,
    COUNTIF(NOT o.canceled) AS orders, COALESCE(SUM(IF(o.canceled, NULL, o.totalCost)), 0) AS revenue,
    COUNTIF(o.canceled) AS canceled_orders,
    COALESCE(SUM(IF(NOT o.canceled AND c.orderId IS NOT NULL, o.totalCost, NULL)), 0) AS attributed_revenue
  FROM contact_orders AS o LEFT JOIN credited AS c ON c.orderId = o.orderId
  GROUP BY o.contactId
),
dated AS (
  SELECT *, DATE_DIFF(@day, DATE(last_order_at, @tz), DAY) AS days_since_last_order,
    SAFE_DIVIDE(DATE_DIFF(DATE(last_order_at, @tz), DATE(first_order_at, @tz), DAY), orders - 1)
      AS average_days_between_orders
  FROM lifetime
),
buyers AS (
  SELECT contactId,
    1 + DIV(5 * (RANK() OVER (ORDER BY days_since_last_order DESC) - 1), COUNT(*) OVER ()) AS recency_score,
    1 + DIV(5 * (RANK() OVER (ORDER BY orders) - 1), COUNT(*) OVER ()) AS frequency_score,
    1 + DIV(5 * (RANK() OVER (ORDER BY revenue) - 1), COUNT(*) OVER ()) AS monetary_score
  FROM dated WHERE orders > 0
)
SELECT @day AS date, d.contactId, d.first_order_at, d.last_order_at, d.orders, d.revenue,
  SAFE_DIVIDE(d.revenue, d.orders) AS average_order_value, d.canceled_orders, d.attributed_revenue,
  d.revenue - d.attributed_revenue AS organic_revenue, d.days_since_last_order, d.average_days_between_orders,
  b.recency_score, b.frequency_score, b.monetary_score,
  CONCAT(CAST(b.recency_score AS STRING), CAST(b.frequency_score AS STRING), CAST(b.monetary_score AS STRING))
    AS rfm_score,
  CASE
    WHEN d.orders = 0 THEN 'canceled_only'
    WHEN d.orders = 1 AND d.days_since_last_order <= 30 THEN 'new'
    WHEN d.orders >= 2 AND d.days_since_last_order <= 1.5 * GREATEST(d.average_days_between_orders, 7) THEN 'active'
    WHEN d.days_since_last_order <= 3 * IF(d.orders = 1, 30, GREATEST(d.average_days_between_orders, 7)) THEN 'at_risk'
    ELSE 'lapsed'
  END AS lifecycle_stage
FROM dated AS d LEFT JOIN buyers AS b ON b.contactId = d.contactId
""",
    reads=("orders", "revenue"),
    snapshot=True,
    window=(ALL_EARLIER_DAYS, 0),
)

ORDER_COHORTS = Metric(
    table=MetricTable(
        "order_cohorts",
        (
            DATE,
            col("cohort_month", "date", "First day of the local month of the customers' first order (not canceled)",
                "orders.orderDate", "orders.Status"),
            col("months_since", "int", "Months from cohort_month to the month described (0 = the cohort's month)",
                "orders.orderDate"),
            col("cohort_customers", "int", "Contacts whose first order falls in cohort_month", "orders.contactId"),
            col("active_customers", "int", "Of those, contacts with an order (not canceled) in that month",
                "orders.contactId", "orders.orderDate"),
            col("orders", "int", "Their orders (not canceled) in that month", "orders.orderId"),
            col("revenue", "float", "Sum of those orders' totalCost (0 without)", "orders.totalCost"),
            col("retention_rate", "float", "active_customers / cohort_customers", "orders.contactId", rate=True),
        ),
        cluster_by=("cohort_month",),
        grain=("date", "cohort_month", "months_since"),
    ),
    formula=(
        "Use case 5 (the cohort table of order analysis). The cohort table as of D: orders as contact_lifetime "
        "reads them (orderDate before the end of D; an order with a CANCELED row is canceled and left out). A "
        "customer's cohort_month is the local month (first day) of its first order; for every cohort and every "
        "month from the cohort's (months_since 0) up to D's month, also months without orders: cohort_customers, "
        "active_customers = the cohort's contacts with an order in that month, orders and revenue (sum of "
        "totalCost, 0 without) of those orders, retention_rate = active_customers / cohort_customers (months_since "
        "0 is 1 by construction). D's month is counted up to the end of D (month to date), so a month's figures are "
        "final once the month is over and its late data has arrived. A snapshot of all history: kept for the "
        "retention setting; D reads every raw day up to D."
    ),
    sql=f"""
WITH kept_orders AS (
  SELECT contactId, orderId, totalCost, DATE_TRUNC(DATE(orderDate, @tz), MONTH) AS order_month
  FROM ({_ORDERS_TO_DATE}
  )
  WHERE NOT canceled
),
cohorts AS (SELECT contactId, MIN(order_month) AS cohort_month FROM kept_orders GROUP BY contactId),
sizes AS (SELECT cohort_month, COUNT(*) AS cohort_customers FROM cohorts GROUP BY cohort_month),
grid AS (
  SELECT s.cohort_month, s.cohort_customers, months_since
  FROM sizes AS s
  CROSS JOIN UNNEST(GENERATE_ARRAY(0, DATE_DIFF(DATE_TRUNC(@day, MONTH), s.cohort_month, MONTH))) AS months_since
),
monthly AS (
  SELECT c.cohort_month, DATE_DIFF(o.order_month, c.cohort_month, MONTH) AS months_since,
    COUNT(DISTINCT o.contactId) AS active_customers, COUNT(*) AS orders, SUM(o.totalCost) AS revenue
  FROM kept_orders AS o JOIN cohorts AS c ON c.contactId = o.contactId
  GROUP BY c.cohort_month, DATE_DIFF(o.order_month, c.cohort_month, MONTH)
)
SELECT @day AS date, g.cohort_month, g.months_since, g.cohort_customers,
  COALESCE(m.active_customers, 0) AS active_customers, COALESCE(m.orders, 0) AS orders,
  COALESCE(m.revenue, 0) AS revenue, SAFE_DIVIDE(COALESCE(m.active_customers, 0), g.cohort_customers) AS retention_rate
FROM grid AS g
LEFT JOIN monthly AS m ON m.cohort_month = g.cohort_month AND m.months_since = g.months_since
""",
    reads=("orders",),
    snapshot=True,
    window=(ALL_EARLIER_DAYS, 0),
)

# ---- workflow_performance (pinned, version 2) -------------------------------------------------------------------

_WORKFLOW_COUNTED = (f"{ACT}.contactId", f"{ACT}.activityStatus", f"{ACT}.activityDateTime")
_WORKFLOW_CREDIT = ("revenue.orderId", "revenue.workflowId", "revenue.mediaType", "revenue.orderDate",
                    "revenue.activityDateTime", "revenue.messageInstanceId")  # fmt: skip

WORKFLOW_PERFORMANCE = Metric(
    table=MetricTable(
        "workflow_performance",
        (
            DATE,
            col("workflowId", "string", "The workflow (flow) of triggered messages, as text (a string in "
                "contactActivities, an integer in revenue)", f"{ACT}.workflowId", "revenue.workflowId"),
            col("mediaType", "string", "The media type of the workflow's activities or crediting rows (null when "
                "eSputnik gives none)", f"{ACT}.mediaType", "revenue.mediaType"),
            col("delivered", "int", "Distinct contacts with a DELIVERED activity of the workflow on D",
                *_WORKFLOW_COUNTED),
            col("unique_opens", "int", "Distinct contacts with a RECEIVED (open) activity on D", *_WORKFLOW_COUNTED),
            col("unique_clicks", "int", "Distinct contacts with a CLICKED activity on D", *_WORKFLOW_COUNTED),
            col("unsubscribed", "int", "Distinct contacts with an UNSUBSCRIBED activity on D", *_WORKFLOW_COUNTED),
            col("open_rate", "float", "unique_opens / delivered; null when delivered is 0", *_WORKFLOW_COUNTED),
            col("click_rate", "float", "unique_clicks / delivered; null when delivered is 0", *_WORKFLOW_COUNTED),
            col("click_to_open_rate", "float", "unique_clicks / unique_opens; null when unique_opens is 0",
                *_WORKFLOW_COUNTED),
            col("attributed_orders", "int", "Distinct orderId with orderDate in D whose crediting row (last touch: one "
                "per order) has this workflowId (as text) and mediaType", *_WORKFLOW_CREDIT),
            col("attributed_revenue", "float", "Sum of those orders' totalCost (their crediting rows')",
                "revenue.totalCost"),
        ),
        cluster_by=("workflowId",),
        grain=("date", "workflowId", "mediaType"),
        nullable_grain=("mediaType",),
    ),
    formula=(
        "Use cases 1 and 8 (triggered messages: flows). One row per (workflowId, mediaType) among D's activities "
        "whose workflowId is not null (with or without a broadcastId), and per (workflowId, mediaType) of the "
        "crediting rows of orders with orderDate in D; workflowId is compared as text (a string in "
        "contactActivities, an integer in revenue). delivered, unique_opens (RECEIVED), unique_clicks, unsubscribed "
        "= distinct contactId among D's activities of the workflow and mediaType with that status; open_rate = "
        "unique_opens / delivered; click_rate = unique_clicks / delivered; click_to_open_rate = unique_clicks / "
        "unique_opens; a zero denominator gives null. Each order is credited once, to its crediting row (the revenue "
        "row of the orderId with the latest activityDateTime; ties: the greatest messageInstanceId, then the "
        "greatest broadcastId; a null loses to any value in each): attributed_orders = distinct orderId with orderDate "
        "in D whose crediting row has that workflowId and mediaType, attributed_revenue = the sum of their totalCost. "
        "A workflow with credited orders but no activity on D has zero counts and null rates."
    ),
    sql=f"""
WITH touches AS (
  SELECT CAST(workflowId AS STRING) AS workflowId, mediaType, activityStatus, contactId,
    CAST(NULL AS INT64) AS orderId, CAST(NULL AS FLOAT64) AS totalCost
  FROM raw.contactActivities
  WHERE activityDateTime >= @start AND activityDateTime < @end AND workflowId IS NOT NULL
  UNION ALL
  SELECT CAST(workflowId AS STRING) AS workflowId, mediaType, CAST(NULL AS STRING) AS activityStatus,
    CAST(NULL AS INT64) AS contactId, orderId, totalCost
  FROM {crediting_rows("@start", "@end")} AS credited
  WHERE workflowId IS NOT NULL
),
counts AS (
  SELECT workflowId, mediaType,
    {_status_count("DELIVERED", "delivered")},
    {_status_count("RECEIVED", "unique_opens")},
    {_status_count("CLICKED", "unique_clicks")},
    {_status_count("UNSUBSCRIBED", "unsubscribed")},
    COUNT(DISTINCT orderId) AS attributed_orders, COALESCE(SUM(totalCost), 0) AS attributed_revenue
  FROM touches
  GROUP BY workflowId, mediaType
)
SELECT @day AS date, workflowId, mediaType, delivered, unique_opens, unique_clicks, unsubscribed,
  SAFE_DIVIDE(unique_opens, delivered) AS open_rate, SAFE_DIVIDE(unique_clicks, delivered) AS click_rate,
  SAFE_DIVIDE(unique_clicks, unique_opens) AS click_to_open_rate, attributed_orders, attributed_revenue
FROM counts
""",
    reads=(ACT, "revenue"),
)

METRICS: tuple[Metric, ...] = (
    CAMPAIGN_PERFORMANCE, DAILY_SALES, CAMPAIGN_ROI, CHANNEL_ENGAGEMENT, CONTACT_DAILY, CONTACT_SEGMENTS,
    CONTACT_PROFILES, PRODUCT_AFFINITY, CUSTOMER_JOURNEYS, CONTACT_LIFETIME, ORDER_COHORTS,
    WORKFLOW_PERFORMANCE,
)  # fmt: skip
