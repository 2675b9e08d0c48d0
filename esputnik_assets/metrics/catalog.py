"""The metric definitions: for each metric, its table, its formula in words, and its one SQL (BigQuery dialect).

Every query describes one local day D of the account and is given these parameters, bound by the driver:
``@day`` (DATE D), ``@start`` / ``@end`` (TIMESTAMP, the UTC instants D spans), ``@start_30d`` / ``@start_90d``
(the UTC start of D-29 / D-89), ``@cohort_day`` / ``@cohort_start`` / ``@cohort_end`` (customer_journeys' cohort day),
``@tz`` (the account's time zone), ``@cost_<media>`` (FLOAT64 cost per delivered message, e.g. ``@cost_email``;
``@cost_inapp`` for In-App), ``@attribution_seconds`` and ``@min_pair_orders`` (see `MetricsWarehouse`). Every raw
fact read filters its partition column on these bounds, every metric table read its `date`.

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
    # The raw days the row of D reads, as offsets from D (first, last): (-89, 0) reads D-89 .. D, (0, 6) D .. D+6.
    # A rerun of any of those raw days makes D stale (its partition dependency).
    window: tuple[int, int] = (0, 0)
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

_MEANS_SQL = ",\n    ".join(f"AVG({r}) AS {r}_7d" for r in RATES)

CHANNEL_ENGAGEMENT = Metric(
    table=MetricTable(
        "channel_engagement",
        (
            DATE,
            col("mediaType", "string", "The channel (activities without one: 'Unknown')", f"{ACT}.mediaType"),
            *_with_rate_lineage(_funnel_columns()),
            *(
                col(f"{r}_7d", "float", f"Mean of the daily {r} over D-6 .. D (days with a value)",
                    f"{ACT}.contactId", f"{ACT}.activityStatus", f"{ACT}.activityDateTime",
                    rate=r == "delivery_rate")  # a mean of shares is a share
                for r in RATES
            ),
        ),
        cluster_by=("mediaType",),
        grain=("date", "mediaType"),
    ),
    formula=(
        "Use cases 1 and 6 (campaign performance by channel, KPI monitoring). One row per mediaType with activity on "
        "D, over all of D's activities (broadcasts and triggered messages): the funnel counts and rates of "
        "campaign_performance (distinct contacts per status; rates null on a zero denominator), plus each rate's "
        "trailing 7-day mean <rate>_7d = the mean of that channel's daily rate over D-6 .. D, over the days where "
        "the rate is not null (read from this table's earlier days, so a range run computes days in order)."
    ),
    sql=f"""
WITH today AS (
  SELECT COALESCE(mediaType, 'Unknown') AS mediaType,
    {_FUNNEL_COUNTS}
  FROM raw.contactActivities
  WHERE activityDateTime >= @start AND activityDateTime < @end
  GROUP BY COALESCE(mediaType, 'Unknown')
),
rated AS (
  SELECT @day AS date, mediaType, sent, delivered, undelivered, opened, clicked, unsubscribed, spam,
  {_RATES_SQL}
  FROM today
),
history AS (
  SELECT mediaType, {", ".join(RATES)} FROM metrics.channel_engagement
  WHERE date >= DATE_SUB(@day, INTERVAL 6 DAY) AND date < @day
  UNION ALL
  SELECT mediaType, {", ".join(RATES)} FROM rated
),
means AS (
  SELECT mediaType,
    {_MEANS_SQL}
  FROM history GROUP BY mediaType
)
SELECT r.*, {", ".join(f"m.{r}_7d" for r in RATES)}
FROM rated AS r JOIN means AS m ON m.mediaType = r.mediaType
""",
    reads=(ACT,),
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
)

CUSTOMER_JOURNEYS = Metric(
    table=MetricTable(
        "customer_journeys",
        (
            DATE,
            col("cohort_date", "date", "C = D - ceil(attribution window / 24 h) days: the day the contacts were "
                "delivered", f"{ACT}.activityDateTime"),
            col("mediaType", "string", "The channel", f"{ACT}.mediaType"),
            col("delivered", "int", "Contacts with a DELIVERED activity in the channel on C", f"{ACT}.activityStatus"),
            col("opened", "int", "Of those, contacts that opened (RECEIVED) in the channel on C", f"{ACT}.activityStatus"),
            col("clicked", "int", "Of those, contacts that clicked in the channel on C", f"{ACT}.activityStatus"),
            col("ordered", "int", "Of those, contacts with an order (not canceled) within the attribution window "
                "after their first click", "orders.contactId", "orders.orderDate", "orders.Status"),
            col("open_conversion", "float", "opened / delivered", f"{ACT}.activityStatus", rate=True),
            col("click_conversion", "float", "clicked / opened", f"{ACT}.activityStatus", rate=True),
            col("order_conversion", "float", "ordered / clicked", "orders.orderDate", rate=True),
            col("overall_conversion", "float", "ordered / delivered", "orders.orderDate", rate=True),
            col("dropped_before_open", "int", "delivered - opened", f"{ACT}.activityStatus"),
            col("dropped_before_click", "int", "opened - clicked", f"{ACT}.activityStatus"),
            col("dropped_before_order", "int", "clicked - ordered", "orders.orderDate"),
        ),
        grain=("date", "mediaType"),
    ),
    formula=(
        "Use case 8 (customer journeys). The row of day D follows the cohort of cohort_date C = D - ceil(W / 24 h) "
        "days, W = ESPUTNIK_ATTRIBUTION_WINDOW_HOURS (default 72), so every attribution window has closed by the end "
        "of D and a day's row never changes when later days arrive. Per channel (mediaType), the contacts delivered "
        "a message on C and how far they went, each step a subset of the one before: opened (RECEIVED on C in the "
        "channel), clicked (CLICKED on C in the channel), ordered (an order of the contact, not CANCELED, placed "
        "from its first click up to W hours later). Conversions are step / previous step (and ordered / delivered "
        "overall), null on a zero denominator; drop-offs are previous step - step."
    ),
    sql="""
WITH day_activity AS (
  SELECT contactId, COALESCE(mediaType, 'Unknown') AS mediaType,
    LOGICAL_OR(activityStatus = 'DELIVERED') AS delivered, LOGICAL_OR(activityStatus = 'RECEIVED') AS opened,
    MIN(IF(activityStatus = 'CLICKED', activityDateTime, NULL)) AS first_click_at
  FROM raw.contactActivities
  WHERE activityDateTime >= @cohort_start AND activityDateTime < @cohort_end AND contactId IS NOT NULL
    AND activityStatus IN ('DELIVERED', 'RECEIVED', 'CLICKED')
  GROUP BY contactId, COALESCE(mediaType, 'Unknown')
),
steps AS (
  SELECT contactId, mediaType, opened, IF(opened, first_click_at, NULL) AS click_at
  FROM day_activity WHERE delivered
),
later_orders AS (
  SELECT orderId, MAX(contactId) AS contactId, MIN(orderDate) AS orderDate
  FROM raw.orders
  WHERE orderDate >= @cohort_start AND orderDate < @end AND (Status IS NULL OR Status <> 'CANCELED')
  GROUP BY orderId
),
converted AS (
  SELECT DISTINCT s.contactId, s.mediaType
  FROM steps AS s JOIN later_orders AS o ON o.contactId = s.contactId
  WHERE o.orderDate >= s.click_at AND o.orderDate <= TIMESTAMP_ADD(s.click_at, INTERVAL @attribution_seconds SECOND)
),
funnel AS (
  SELECT s.mediaType, COUNT(*) AS delivered, COUNTIF(s.opened) AS opened, COUNTIF(s.click_at IS NOT NULL) AS clicked,
    COUNTIF(c.contactId IS NOT NULL) AS ordered
  FROM steps AS s LEFT JOIN converted AS c ON c.contactId = s.contactId AND c.mediaType = s.mediaType
  GROUP BY s.mediaType
)
SELECT @day AS date, @cohort_day AS cohort_date, mediaType, delivered, opened, clicked, ordered,
  SAFE_DIVIDE(opened, delivered) AS open_conversion, SAFE_DIVIDE(clicked, opened) AS click_conversion,
  SAFE_DIVIDE(ordered, clicked) AS order_conversion, SAFE_DIVIDE(ordered, delivered) AS overall_conversion,
  delivered - opened AS dropped_before_open, opened - clicked AS dropped_before_click,
  clicked - ordered AS dropped_before_order
FROM funnel
""",
    reads=(ACT, "orders"),
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
    CONTACT_PROFILES, PRODUCT_AFFINITY, CUSTOMER_JOURNEYS, WORKFLOW_PERFORMANCE,
)  # fmt: skip
