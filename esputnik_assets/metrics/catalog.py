"""The metric definitions: for each metric, its table, its formula in words, and its one SQL (BigQuery dialect).

Every query describes one local day D of the account and is given these parameters, bound by the driver:
``@day`` (DATE D), ``@start`` / ``@end`` (TIMESTAMP, the UTC instants D spans: every raw fact read filters its
partition column on them or on a history window derived from them), ``@tz`` (the account's time zone),
``@cost_<media>`` (FLOAT64 cost per delivered message, e.g. ``@cost_email``; ``@cost_inapp`` for In-App) and the
windows of `MetricSettings`. "The day's activities" are contactActivities with activityDateTime in D; a count of a
status is the number of distinct contactId among those activities with that activityStatus; a rate whose
denominator is zero is null (SAFE_DIVIDE).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
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
    # A metric that needs Python on a bounded result (the churn model) computes its day itself:
    # runner(metric, engine, warehouse, day) -> (QueryStats, extra metadata).
    runner: Callable[..., tuple[Any, dict]] | None = None

    @property
    def name(self) -> str:
        return self.table.name


def col(name: str, type_: str, description: str, *lineage: str) -> MetricColumn:
    """A metric column; lineage given as "dataset.column" strings."""
    return MetricColumn(name, type_, description, tuple(tuple(item.split(".", 1)) for item in lineage))  # type: ignore[misc]


DATE = col("date", "date", "The local day D of the account this row describes")
ACT = "contactActivities"


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
    rate = lambda name, formula: col(name, "float", f"{formula}; null when the denominator is 0")  # noqa: E731
    return (
        counted("sent", "SENT"), counted("delivered", "DELIVERED"), counted("undelivered", "UNDELIVERED"),
        counted("opened", "RECEIVED (opened)"), counted("clicked", "CLICKED"),
        counted("unsubscribed", "UNSUBSCRIBED"), counted("spam", "SPAM"),
        rate("delivery_rate", "delivered / (delivered + undelivered)"), rate("open_rate", "opened / delivered"),
        rate("click_rate", "clicked / delivered"), rate("click_to_open_rate", "clicked / opened"),
        rate("unsubscribe_rate", "unsubscribed / delivered"), rate("spam_rate", "spam / delivered"),
    )  # fmt: skip


def _with_rate_lineage(columns: tuple[MetricColumn, ...]) -> tuple[MetricColumn, ...]:
    """Rates are computed from the counts, so they carry the counts' raw lineage."""
    source = (f"{ACT}.contactId", f"{ACT}.activityStatus", f"{ACT}.activityDateTime")
    return tuple(
        MetricColumn(c.name, c.type, c.description, tuple(tuple(s.split(".", 1)) for s in source))  # type: ignore[misc]
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
    ),
    formula=(
        "One row for D. orders = distinct orderId with orderDate in D and Status not CANCELED (a null Status is not "
        "canceled); revenue = sum of their totalCost; average_order_value = revenue / orders; items = sum of "
        "orderItems.quantity of those orders; canceled_orders = distinct CANCELED orderId; attributed_revenue = sum "
        "of totalCost over distinct orderId in revenue with orderDate in D; attributed_share = attributed_revenue / "
        "revenue. A zero denominator gives null."
    ),
    sql="""
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
attributed AS (
  SELECT COALESCE(SUM(totalCost), 0) AS attributed_revenue FROM (
    SELECT orderId, MAX(totalCost) AS totalCost FROM raw.revenue
    WHERE orderDate >= @start AND orderDate < @end GROUP BY orderId
  )
)
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
            col("attributed_orders", "int", "Distinct orderId in revenue with orderDate in D and this broadcastId",
                "revenue.orderId", "revenue.broadcastId", "revenue.orderDate"),
            col("attributed_revenue", "float", "Sum of those orders' totalCost", "revenue.totalCost"),
            col("cost", "float", "delivered x the configured cost per message of the media type (ESPUTNIK_COST_PER_"
                "MESSAGE_<MEDIA>)", f"{ACT}.contactId", f"{ACT}.mediaType"),
            col("roi", "float", "(attributed_revenue - cost) / cost; null when cost is 0",
                "revenue.totalCost", f"{ACT}.contactId"),
            col("revenue_per_delivered", "float", "attributed_revenue / delivered; null when delivered is 0",
                "revenue.totalCost", f"{ACT}.contactId"),
        ),
        cluster_by=("broadcastId",),
    ),
    formula=(
        "One row per broadcastId with delivered messages or attributed orders on D. delivered = distinct contactId "
        "with DELIVERED among D's activities of the broadcast; attributed_orders = distinct orderId in revenue with "
        "orderDate in D and that broadcastId; attributed_revenue = sum of their totalCost; cost = delivered x the "
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
  FROM (
    SELECT broadcastId, orderId, MAX(mediaType) AS mediaType, MAX(totalCost) AS totalCost FROM raw.revenue
    WHERE orderDate >= @start AND orderDate < @end AND broadcastId IS NOT NULL
    GROUP BY broadcastId, orderId
  )
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

METRICS: tuple[Metric, ...] = (CAMPAIGN_PERFORMANCE, DAILY_SALES, CAMPAIGN_ROI)
