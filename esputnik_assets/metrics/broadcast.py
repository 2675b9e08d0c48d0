"""broadcast_performance (pinned, use cases 1 and 7): each send over its life, not split by the day an event falls on.

The row of send day D reads activities and orders from the start of D up to the end of D + (L - 1), L =
ESPUTNIK_BROADCAST_WINDOW_DAYS (``@broadcast_end`` is the UTC instant D + L starts), so its metric window is
(0, L - 1): a rerun of any of those raw days makes the send day stale, and it is recomputed (see `assets.py`).
"""

from __future__ import annotations

from esputnik_assets.metrics.catalog import ACT, DATE, Metric, col, crediting_rows
from esputnik_assets.metrics.engine import MetricColumn, MetricTable

DEFAULT_BROADCAST_WINDOW_DAYS = 7
# An SMTP permanent failure: the description, leading whitespace aside, starts with three digits, the first a 5.
HARD_BOUNCE_PATTERN = r"^\s*5[0-9][0-9]"
_LIFE = "from the start of the send day D to the end of D + (L - 1)"
_ACTIVITY = (f"{ACT}.contactId", f"{ACT}.activityStatus", f"{ACT}.activityDateTime", f"{ACT}.broadcastId")
_CREDIT = ("revenue.orderId", "revenue.broadcastId", "revenue.orderDate", "revenue.activityDateTime")


def _count(name: str, meaning: str, *lineage: str) -> MetricColumn:
    return col(name, "int", f"{meaning}, {_LIFE}", *(lineage or _ACTIVITY))


def _rate(name: str, formula: str) -> MetricColumn:
    return col(name, "float", f"{formula}; null when the denominator is 0", *_ACTIVITY)


BROADCAST_PERFORMANCE = Metric(
    table=MetricTable(
        "broadcast_performance",
        (
            DATE,
            col("broadcastId", "int", "The broadcast whose startedDate falls in the local day D (its send day)",
                "broadcasts.id", "broadcasts.startedDate"),
            col("name", "string", "The broadcast's name", "broadcasts.name"),
            col("mediaType", "string", "The broadcast's media type", "broadcasts.mediaType"),
            _count("delivered", "Distinct contacts with a DELIVERED activity of the broadcast"),
            _count("undelivered", "Distinct contacts with an UNDELIVERED activity of the broadcast"),
            _count("hard_bounced", "Of the undelivered, distinct contacts with a statusDescription that, trimmed, "
                   "starts with three digits the first of which is 5 (any such row makes the contact hard only)",
                   *_ACTIVITY, f"{ACT}.statusDescription"),
            _count("soft_bounced", "undelivered - hard_bounced (a null statusDescription is soft)",
                   *_ACTIVITY, f"{ACT}.statusDescription"),
            _count("unique_opens", "Distinct contacts with a RECEIVED (open) activity"),
            _count("total_opens", "RECEIVED activity rows (a second open counts again)"),
            _count("unique_clicks", "Distinct contacts with a CLICKED activity"),
            _count("total_clicks", "CLICKED activity rows"),
            _count("unsubscribed", "Distinct contacts with an UNSUBSCRIBED activity"),
            _count("spam", "Distinct contacts with a SPAM activity"),
            _rate("delivery_rate", "delivered / (delivered + undelivered)"),
            _rate("open_rate", "unique_opens / delivered"),
            _rate("click_rate", "unique_clicks / delivered"),
            _rate("click_to_open_rate", "unique_clicks / unique_opens"),
            _rate("unsubscribe_rate", "unsubscribed / delivered"),
            _count("attributed_orders", "Distinct orderId with orderDate in the same window whose crediting row "
                   "(last touch) has this broadcastId", *_CREDIT),
            col("attributed_revenue", "float", "Sum of those orders' totalCost (their crediting rows'); 0 without",
                *_CREDIT, "revenue.totalCost"),
            col("revenue_per_recipient", "float", "attributed_revenue / delivered; null when delivered is 0",
                *_CREDIT, "revenue.totalCost", f"{ACT}.contactId"),
        ),
        cluster_by=("broadcastId",),
        grain=("date", "broadcastId"),
    ),
    formula=(
        "Use cases 1 and 7 (a send over its whole life). One row per broadcast whose broadcasts.startedDate falls in "
        "the local day D (its send day), also without any activity (zero counts, null rates); partition D holds the "
        "sends of D only. Its activities count from the start of D up to the end of D + (L - 1), L = "
        "ESPUTNIK_BROADCAST_WINDOW_DAYS (default 7), as the warehouse holds them when the partition is materialized "
        "(a rerun of any raw day of that window recomputes it, so a send's row is final L days after it). delivered, "
        "undelivered, unique_opens (RECEIVED), unique_clicks, unsubscribed, spam = distinct contacts with that status; "
        "total_opens / total_clicks = RECEIVED / CLICKED rows; hard_bounced = UNDELIVERED contacts with a "
        "statusDescription that, trimmed of whitespace, starts with three digits the first of which is 5 (a contact "
        "with any such row counts as hard only; a null description is soft); soft_bounced = undelivered - "
        "hard_bounced. delivery_rate = delivered / (delivered + undelivered); open_rate = unique_opens / delivered; "
        "click_rate = unique_clicks / delivered; click_to_open_rate = unique_clicks / unique_opens; "
        "unsubscribe_rate = unsubscribed / delivered; a zero denominator gives null. attributed_orders / "
        "attributed_revenue = orders with orderDate in the same L-day window whose crediting row (one per orderId: "
        "the last touch) has this broadcastId, and the sum of their totalCost; revenue_per_recipient = "
        "attributed_revenue / delivered. name and mediaType from broadcasts."
    ),
    sql=f"""
WITH sends AS (
  SELECT id AS broadcastId, name, mediaType
  FROM raw.broadcasts WHERE startedDate >= @start AND startedDate < @end AND id IS NOT NULL
),
counts AS (
  SELECT broadcastId,
    COUNT(DISTINCT IF(activityStatus = 'DELIVERED', contactId, NULL)) AS delivered,
    COUNT(DISTINCT IF(activityStatus = 'UNDELIVERED', contactId, NULL)) AS undelivered,
    COUNT(DISTINCT IF(
      activityStatus = 'UNDELIVERED' AND REGEXP_CONTAINS(statusDescription, r'{HARD_BOUNCE_PATTERN}'), contactId, NULL
    )) AS hard_bounced,
    COUNT(DISTINCT IF(activityStatus = 'RECEIVED', contactId, NULL)) AS unique_opens,
    COUNTIF(activityStatus = 'RECEIVED') AS total_opens,
    COUNT(DISTINCT IF(activityStatus = 'CLICKED', contactId, NULL)) AS unique_clicks,
    COUNTIF(activityStatus = 'CLICKED') AS total_clicks,
    COUNT(DISTINCT IF(activityStatus = 'UNSUBSCRIBED', contactId, NULL)) AS unsubscribed,
    COUNT(DISTINCT IF(activityStatus = 'SPAM', contactId, NULL)) AS spam
  FROM raw.contactActivities
  WHERE activityDateTime >= @start AND activityDateTime < @broadcast_end
    AND broadcastId IN (SELECT broadcastId FROM sends)
  GROUP BY broadcastId
),
credited AS (
  SELECT broadcastId, COUNT(DISTINCT orderId) AS attributed_orders, SUM(totalCost) AS attributed_revenue
  FROM {crediting_rows("@start", "@broadcast_end")}
  WHERE broadcastId IN (SELECT broadcastId FROM sends)
  GROUP BY broadcastId
),
filled AS (
  SELECT s.broadcastId, s.name, s.mediaType,
    COALESCE(c.delivered, 0) AS delivered, COALESCE(c.undelivered, 0) AS undelivered,
    COALESCE(c.hard_bounced, 0) AS hard_bounced, COALESCE(c.unique_opens, 0) AS unique_opens,
    COALESCE(c.total_opens, 0) AS total_opens, COALESCE(c.unique_clicks, 0) AS unique_clicks,
    COALESCE(c.total_clicks, 0) AS total_clicks, COALESCE(c.unsubscribed, 0) AS unsubscribed,
    COALESCE(c.spam, 0) AS spam, COALESCE(a.attributed_orders, 0) AS attributed_orders,
    COALESCE(a.attributed_revenue, 0) AS attributed_revenue
  FROM sends AS s
  LEFT JOIN counts AS c ON c.broadcastId = s.broadcastId
  LEFT JOIN credited AS a ON a.broadcastId = s.broadcastId
)
SELECT @day AS date, broadcastId, name, mediaType, delivered, undelivered, hard_bounced,
  undelivered - hard_bounced AS soft_bounced, unique_opens, total_opens, unique_clicks, total_clicks, unsubscribed,
  spam,
  SAFE_DIVIDE(delivered, delivered + undelivered) AS delivery_rate,
  SAFE_DIVIDE(unique_opens, delivered) AS open_rate,
  SAFE_DIVIDE(unique_clicks, delivered) AS click_rate,
  SAFE_DIVIDE(unique_clicks, unique_opens) AS click_to_open_rate,
  SAFE_DIVIDE(unsubscribed, delivered) AS unsubscribe_rate,
  attributed_orders, attributed_revenue,
  SAFE_DIVIDE(attributed_revenue, delivered) AS revenue_per_recipient
FROM filled
""",
    reads=(ACT, "broadcasts", "revenue"),
    window=(0, DEFAULT_BROADCAST_WINDOW_DAYS - 1),  # the settings' L replaces it in wiring.metrics_for
)
