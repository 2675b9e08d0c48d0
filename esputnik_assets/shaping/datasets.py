"""The contract's mapping rules, one function per export table: a parsed page in, export rows out."""

from __future__ import annotations

import polars as pl

from esputnik_assets.contracts import load_contracts
from esputnik_assets.shaping.columns import ShapeContext, TypedPage, conform, utm_campaign

ACTIVITY_STATUS_NAMES = {"READ": "RECEIVED"}
ORDER_STATUS_NAMES = {"IN_PROGRESS": "IN PROGRESS", "CANCELLED": "CANCELED"}
EVENT_PARAMS_KEPT = 50
EVENT_PARAM_VALUE_CHARS = 300


def _activity_columns(page: TypedPage, url_column: str, workflow_id: pl.Series) -> dict[str, pl.Series]:
    """Columns that contactActivities and revenue share: both carry a message activity, mapped one way."""
    status = page.str("activityStatus").replace(ACTIVITY_STATUS_NAMES)
    happened = page.timestamp("activityDateTime")
    broadcast_id = page.int("broadcastId")
    click_link = page.str("clickEventLink")
    return {
        "activityStatus": status,
        "activity": status,
        "activityDateTime": happened,
        "started": happened,
        "broadcastId": broadcast_id,
        "campaignType": broadcast_id.is_not_null().replace_strict({True: "Group", False: "IM"}, return_dtype=pl.String),
        "clickEventLink": click_link,
        "utmCampaign": utm_campaign(click_link),
        "contactId": page.int("contactId"),
        "externalCustomerId": page.str("externalCustomerId"),
        "mediaType": page.str("mediaType"),
        "messageInstanceId": page.int("messageInstanceId"),
        "messageName": page.str("messageName"),
        "messageTags": page.str("messageTag"),
        url_column: page.str("viewMessageLink"),
        "messageLanguageCode": page.str("messageLanguageCode"),
        "senderName": page.str("from"),
        "eventKey": page.str("sourceEventKey"),
        "eventTypeKey": page.str("sourceEventTypeKey"),
        "workflowId": workflow_id,
    }


def shape_contact_activities(page: TypedPage) -> pl.DataFrame:
    columns = _activity_columns(page, "messageURL", page.str("workflowId"))
    description = page.str("statusDescription")
    columns |= {
        "statusDescription": description,
        "errorCode": description,
        "eventId": page.str("sourceEventId"),
        "messageId": page.int("messageId"),
        "workflowInstanceId": page.str("workflowInstanceId"),
        "workflowBlockId": page.str("workflowBlockId"),
    }
    return conform(columns, load_contracts()["contactActivities"], {"_iid": page.str("iid")})


def shape_revenue(page: TypedPage) -> pl.DataFrame:
    columns = _activity_columns(page, "messageUrl", page.int("workflowId"))
    columns |= {
        "orderId": page.int("orderId"),
        "externalOrderId": page.str("externalOrderId"),
        "orderDate": page.timestamp("orderDate"),
        "totalCost": page.float("totalCost"),
        "currency": page.str("currency"),
    }
    return conform(columns, load_contracts()["revenue"], {})


def shape_orders(page: TypedPage) -> pl.DataFrame:
    columns = {
        "orderId": page.int("orderId"),
        "externalOrderId": page.str("externalOrderId"),
        "contactId": page.int("contactId"),
        "Status": page.str("status").replace(ORDER_STATUS_NAMES),
        "orderDate": page.timestamp("date"),
        "orderCreatedDate": page.timestamp("createdDate"),
        "totalCost": page.float("totalCost"),
        "discount": page.float("discount"),
        "email": page.str("email"),
        "Phone": page.str("phone"),
        "firstName": page.str("firstName"),
        "lastName": page.str("lastName"),
        "deliveryMethod": page.str("deliveryMethod"),
        "paymentMethod": page.str("paymentMethod"),
        "deliveryAddress": page.str("deliveryAddress"),
    }
    return conform(columns, load_contracts()["orders"], {})


def shape_order_items(page: TypedPage) -> pl.DataFrame:
    """One row per item of each order, with the order's id and date; `_item` keeps the item's place in its order."""
    orders = pl.DataFrame([page.int("orderId"), page.timestamp("date").alias("orderDate"), page.raw.get_column("items")])
    items = (
        orders.with_columns(pl.col("items").list.len().fill_null(0).alias("_count"))
        .filter(pl.col("_count") > 0)
        .with_columns(pl.int_ranges(0, pl.col("_count")).alias("_item"))
        .explode("items", "_item")
        .unnest("items")
    )
    item_page = TypedPage(items, ShapeContext(page.context.dataset, page.context.timezone))
    columns = {
        "orderId": items.get_column("orderId"),
        "orderDate": items.get_column("orderDate"),
        "externalProductId": item_page.str("externalItemId"),
        "name": item_page.str("name"),
        "description": item_page.str("description"),
        "quantity": item_page.int("quantity"),
        "cost": item_page.float("cost"),
        "url": item_page.str("url"),
        "imageUrl": item_page.str("imageUrl"),
    }
    return conform(columns, load_contracts()["orderItems"], {"_item": items.get_column("_item").cast(pl.Int64)})


def _json_string(expr: pl.Expr) -> pl.Expr:
    """A string expression as a JSON string literal (quotes and escapes done by polars' own encoder)."""
    return pl.struct(expr.alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}")


def events_params_json(params: pl.Series) -> pl.Series:
    """paramsJson: a JSON object of the first 50 params, name to value, each value cut to 300 characters."""
    pairs = params.list.head(EVENT_PARAMS_KEPT).list.eval(
        pl.concat_str(
            _json_string(pl.element().struct.field("name")),
            pl.lit(":"),
            _json_string(pl.element().struct.field("value").str.slice(0, EVENT_PARAM_VALUE_CHARS)),
        )
    )
    body = pl.select(
        pl.when(pairs.is_null()).then(None).otherwise(pl.concat_str(pl.lit("{"), pairs.list.join(","), pl.lit("}")))
    ).to_series()
    return body.alias("paramsJson")


def shape_events(page: TypedPage) -> pl.DataFrame:
    columns = {
        "eventId": page.int("eventId"),
        "eventTypeKey": page.str("eventTypeKey"),
        "keyValue": page.str("keyValue"),
        "contactId": page.int("contactId"),
        "occured": page.timestamp("occurred"),
        "paramsJson": events_params_json(page.raw.get_column("params")),
    }
    return conform(columns, load_contracts()["events"], {})


def _channel_value(channels: pl.Series, channel_type: str) -> pl.Series:
    """The value of the first channel of a type (contacts keep their first email and first phone)."""
    return channels.list.eval(
        pl.element().filter(pl.element().struct.field("type") == channel_type).struct.field("value")
    ).list.first()


def shape_contacts(page: TypedPage) -> pl.DataFrame:
    channels = page.raw.get_column("channels")
    email = _channel_value(channels, "email")
    columns = {
        "contactId": page.int("id"),
        "firstName": page.str("firstName"),
        "lastName": page.str("lastName"),
        "externalCustomerId": page.str("externalCustomerId"),
        "languageCode": page.str("languageCode"),
        "email": email,
        "emailDomain": email.str.extract(r"@([^@]+)$", 1).str.to_lowercase(),
        "sms": _channel_value(channels, "sms"),
        "contactSource": page.str("contactSource"),
        "createdDate": page.timestamp("createdDate"),
        "emailStatus": page.str("emailStatus"),
        "lastSentDate": page.timestamp("lastSentDate"),
        "lastReceivedDate": page.timestamp("lastReceivedDate"),
        "lastViewedDate": page.timestamp("lastViewedDate"),
        "lastClickedDate": page.timestamp("lastClickedDate"),
        "totalSent": page.int("totalSent"),
        "totalReceived": page.int("totalReceived"),
        "totalViewed": page.int("totalViewed"),
        "totalClicked": page.int("totalClicked"),
    }
    return conform(columns, load_contracts()["contacts"], {})


def shape_messages(page: TypedPage) -> pl.DataFrame:
    columns = {
        "messageId": page.int("id"),
        "name": page.str("name"),
        "sender": page.str("from"),
        "subject": page.str("subject"),
        "replyTo": page.str("replyTo"),
        "tags": page.raw.get_column("tags").list.join(","),
        "language": page.str("languageCode"),
        "translations": page.raw.get_column("translations").list.eval(
            pl.element().struct.field("languageCode")
        ).list.join(","),
        "annoyanceLevel": page.int("annoyanceLevel"),
        "updateDate": page.timestamp("updatedDate"),
        "mediaType": page.str("mediaType"),
    }
    return conform(columns, load_contracts()["messages"], {})


def shape_broadcasts(page: TypedPage) -> pl.DataFrame:
    columns = {
        "id": page.int("broadcastId"),
        "name": page.str("title"),
        "messageId": page.int("messageId"),
        "groupId": page.int_list("groupId"),
        "startedDate": page.timestamp("startDate"),
        "status": page.str("status"),
        "mediaType": page.str("mediaType"),
        "createdDate": page.timestamp("createdDate"),
        "updatedDate": page.timestamp("updatedDate"),
    }
    return conform(columns, load_contracts()["broadcasts"], {})


def shape_devices(page: TypedPage) -> pl.DataFrame:
    columns = {
        "deviceId": page.str("deviceId"),
        "contactId": page.int("contactId"),
        "externalCustomerId": page.str("externalCustomerId"),
        "applicationId": page.int("appId"),
        "appVersion": page.str("appVersion"),
        "category": page.str("category"),
        "deviceModel": page.str("deviceModel"),
        "osType": page.str("os"),
        "osVersion": page.str("osVersion"),
        "languageCode": page.str("locale"),
        "pushToken": page.str("token"),
        "timeZone": page.str("timeZone"),
    }
    return conform(columns, load_contracts()["devices"], {})
