"""Each endpoint and each export table described once; the client, shaping, warehouse and assets are generic over these.

A `SourceSpec` is one eSputnik endpoint (path, paging, date window, answer fields). A `DatasetSpec` is one export
table (its source, how a page becomes rows, its key, and how it is written). orders and orderItems share one source,
so one scan of /v1/orders feeds both tables.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from esputnik_assets.shaping import datasets as shape
from esputnik_assets.shaping.columns import TypedPage

S = pl.String()


class Paging(enum.Enum):
    """How an endpoint pages: v1 `startindex`/`maxrows`, or the activity endpoint's `offset` cursor."""

    V1 = "v1"
    ACTIVITY_CURSOR = "activity_cursor"


class WriteMode(enum.Enum):
    """Facts replace whole days of their event time; entities hold the current state, upserted by key."""

    REPLACE_DAYS = "replace_days"
    UPSERT = "upsert"


@dataclass(frozen=True)
class SourceSpec:
    name: str
    path: str  # below the base URL; `{type}` is filled from `variants`
    status: str  # "public", "inferred" or "assumed" (esputnik-api.md)
    paging: Paging
    date_window: bool  # takes dateFrom/dateTo; otherwise every read is a full scan
    answer_schema: dict[str, pl.DataType]
    answer_key: tuple[str, ...]  # the answer's fields that tell its rows apart (paging guards compare them)
    # For paths with `{type}`: each value of `type` and the columns its answers gain (messages' mediaType).
    variants: tuple[tuple[str, dict[str, str]], ...] = ()
    page_rows: int = 500  # the most rows a page may ask for (v1: 500; the activity endpoint: 1000)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    source: SourceSpec
    shape: Callable[[TypedPage], pl.DataFrame]
    write_mode: WriteMode
    key: tuple[str, ...]  # rows with equal keys are one row (dedupe inside a read; upsert key of entities)
    partition_column: str | None = None  # event time of a fact table: a day of it is replaced at once
    description: str = ""
    cluster_by: tuple[str, ...] = ()  # BigQuery clustering: the columns analyses filter on most
    nullable_key: tuple[str, ...] = ()  # key columns where null is a legitimate value (matched null to null)
    # Rows that arrive together as one copy of a parent (an order's items), numbered from 0 in `_item`: a later copy
    # of the parent replaces the earlier one whole, so items of two copies never mix.
    copy_key: tuple[str, ...] = ()

    @property
    def dedupe_key(self) -> tuple[str, ...]:
        """What makes rows of one read the same thing: the parent copy (`copy_key`) if any, else the key."""
        return self.copy_key or self.key

    @property
    def required_key(self) -> tuple[str, ...]:
        """Key columns that every row must carry: a null there would merge unrelated rows."""
        return tuple(column for column in self.key if column not in self.nullable_key)


def _scalars(*names: str) -> dict[str, pl.DataType]:
    return {name: S for name in names}


_ACTIVITY_FIELDS = (
    "contactId", "email", "sms", "mediaType", "activityStatus", "activityDateTime", "messageId",
    "messageInstanceId", "messageName", "messageTag", "messageLanguageCode", "clickEventLink", "viewMessageLink",
    "statusDescription", "hardBounce", "workflowId", "workflowInstanceId", "workflowBlockId", "broadcastId",
    "externalCustomerId", "sourceEventId", "sourceEventKey", "sourceEventTypeKey", "from",
)  # fmt: skip

ACTIVITY = SourceSpec(
    name="contactActivities",
    path="/v2/contacts/activity",
    status="public",
    paging=Paging.ACTIVITY_CURSOR,
    date_window=True,
    answer_key=("iid",),
    answer_schema=_scalars("iid", "offset", *_ACTIVITY_FIELDS),
    page_rows=1000,
)
MESSAGES = SourceSpec(
    name="messages",
    path="/v1/messages/{type}",
    status="public (webpush assumed)",
    paging=Paging.V1,
    date_window=False,
    answer_key=("id",),
    answer_schema=_scalars("id", "name", "from", "subject", "replyTo", "languageCode", "annoyanceLevel", "updatedDate")
    | {"tags": pl.List(S), "translations": pl.List(pl.Struct({"languageCode": S}))},
    variants=tuple(
        (path_type, {"mediaType": media_type})
        for path_type, media_type in (
            ("email", "Email"), ("sms", "Sms"), ("viber", "Viber"), ("mobilepush", "MobilePush"),
            ("webpush", "WebPush"), ("appinbox", "AppInbox"), ("telegram", "Telegram"),
        )
    ),  # fmt: skip
)
CONTACTS = SourceSpec(
    name="contacts",
    path="/v1/contacts",
    status="public",
    paging=Paging.V1,
    date_window=False,
    answer_key=("id",),
    answer_schema=_scalars(
        "id", "firstName", "lastName", "externalCustomerId", "languageCode", "contactSource", "createdDate",
        "emailStatus", "lastSentDate", "lastReceivedDate", "lastViewedDate", "lastClickedDate", "totalSent",
        "totalReceived", "totalViewed", "totalClicked",
    )  # fmt: skip
    | {"channels": pl.List(pl.Struct({"type": S, "value": S}))},
)
BROADCASTS = SourceSpec(
    name="broadcasts",
    path="/v1/broadcasts",
    status="inferred",
    paging=Paging.V1,
    date_window=False,
    answer_key=("broadcastId",),
    answer_schema=_scalars(
        "broadcastId", "title", "messageId", "startDate", "status", "mediaType", "createdDate", "updatedDate"
    )
    | {"groupId": pl.List(S)},
)
ORDERS = SourceSpec(
    name="orders",
    path="/v1/orders",
    status="assumed",
    paging=Paging.V1,
    date_window=True,
    answer_key=("orderId",),
    answer_schema=_scalars(
        "orderId", "externalOrderId", "externalCustomerId", "contactId", "status", "date", "createdDate", "totalCost",
        "discount", "currency", "email", "phone", "firstName", "lastName", "deliveryMethod", "paymentMethod",
        "deliveryAddress",
    )  # fmt: skip
    | {
        "items": pl.List(
            pl.Struct(_scalars("externalItemId", "name", "description", "quantity", "cost", "url", "imageUrl"))
        )
    },
)
EVENTS = SourceSpec(
    name="events",
    path="/v1/events",
    status="assumed",
    paging=Paging.V1,
    date_window=True,
    answer_key=("eventId",),
    answer_schema=_scalars("eventId", "eventTypeKey", "keyValue", "contactId", "occurred")
    | {"params": pl.List(pl.Struct({"name": S, "value": S}))},
)
DEVICES = SourceSpec(
    name="devices",
    path="/v1/devices",
    status="assumed",
    paging=Paging.V1,
    date_window=False,
    answer_key=("deviceId",),
    answer_schema=_scalars(
        "deviceId", "contactId", "externalCustomerId", "appId", "appVersion", "category", "deviceModel", "os",
        "osVersion", "locale", "token", "timeZone",
    ),  # fmt: skip
)
REVENUE = SourceSpec(
    name="revenue",
    path="/v1/revenue",
    status="assumed",
    paging=Paging.V1,
    date_window=True,
    answer_key=("orderId", "messageInstanceId"),
    answer_schema=_scalars(
        "orderId", "externalOrderId", "orderDate", "totalCost", "currency", *_ACTIVITY_FIELDS
    ),
)

SOURCES: dict[str, SourceSpec] = {
    s.name: s for s in (ACTIVITY, MESSAGES, CONTACTS, BROADCASTS, ORDERS, EVENTS, DEVICES, REVENUE)
}

DATASETS: dict[str, DatasetSpec] = {
    d.name: d
    for d in (
        DatasetSpec(
            "broadcasts", BROADCASTS, shape.shape_broadcasts, WriteMode.UPSERT, ("id",),
            description="Bulk campaigns (broadcasts): current state, one row per broadcast id.",
        ),
        DatasetSpec(
            "contactActivities", ACTIVITY, shape.shape_contact_activities, WriteMode.REPLACE_DAYS, ("_iid",),
            partition_column="activityDateTime", cluster_by=("activityStatus", "mediaType", "broadcastId"),
            description="Every message activity (sent, delivered, opened, clicked, ...) by its day of activity.",
        ),
        DatasetSpec(
            "contacts", CONTACTS, shape.shape_contacts, WriteMode.UPSERT, ("contactId",),
            description="Contacts: current state, one row per contact id (a full scan each run).",
        ),
        DatasetSpec(
            "devices", DEVICES, shape.shape_devices, WriteMode.UPSERT, ("deviceId",),
            description="App devices of contacts (push tokens, OS, app version): current state per device id.",
        ),
        DatasetSpec(
            "events", EVENTS, shape.shape_events, WriteMode.REPLACE_DAYS, ("eventId",),
            partition_column="occured", cluster_by=("eventTypeKey", "contactId"),
            description="Custom events sent to eSputnik, by their day of occurrence.",
        ),
        DatasetSpec(
            "messages", MESSAGES, shape.shape_messages, WriteMode.UPSERT, ("mediaType", "messageId"),
            description="Message templates of every channel: current state per media type and message id.",
        ),
        DatasetSpec(
            "orderItems", ORDERS, shape.shape_order_items, WriteMode.REPLACE_DAYS, ("orderId", "_item"),
            partition_column="orderDate", cluster_by=("externalProductId",), copy_key=("orderId",),
            description="Items of each order, by the order's day (read from the same scan as orders).",
        ),
        DatasetSpec(
            "orders", ORDERS, shape.shape_orders, WriteMode.REPLACE_DAYS, ("orderId",),
            partition_column="orderDate", cluster_by=("Status", "contactId"),
            description="Orders, by order day; re-read days pick up status and total changes.",
        ),
        DatasetSpec(
            "revenue", REVENUE, shape.shape_revenue, WriteMode.REPLACE_DAYS, ("orderId", "messageInstanceId"),
            partition_column="orderDate", cluster_by=("mediaType", "broadcastId"),
            nullable_key=("messageInstanceId",),  # an order credited to a transactional (IM) message has none
            description="Orders credited to message activities, by order day; eSputnik's later updates replace rows.",
        ),
    )  # fmt: skip
}
