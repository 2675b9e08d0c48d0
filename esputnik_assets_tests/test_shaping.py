"""Shaping against the contract's rules: examples.md's rows, and the odd cases a live account sends."""

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from esputnik_assets.contracts import load_contracts
from esputnik_assets.shaping.columns import ShapeContext, TypedPage
from esputnik_assets.shaping.errors import AnswerFormatError, BadValueError
from esputnik_assets.shaping.parse import read_page
from esputnik_assets.specs import DATASETS

UTC = timezone.utc


def shape(dataset: str, rows: list[dict] | bytes, tz: str = "UTC", **literals: str) -> pl.DataFrame:
    body = rows if isinstance(rows, bytes) else json.dumps(rows).encode()
    spec = DATASETS[dataset]
    page = read_page(body, dataset, spec.source.answer_schema)
    if literals:
        page = page.with_columns(pl.lit(v).alias(k) for k, v in literals.items())
    frame = spec.shape(TypedPage(page, ShapeContext(dataset, tz)))
    contract = load_contracts()[dataset]
    public = frame.select(contract.column_names)
    assert public.schema == contract.polars_schema  # exact names, order and types, every time
    return frame


def test_activity_example_rows_map_as_documented():
    rows = [
        {"iid": "a", "offset": 1200345, "contactId": 100512, "mediaType": "Email", "activityStatus": "READ",
         "activityDateTime": "2026-11-20T10:04:17.250", "messageId": 300118, "messageInstanceId": 9001187,
         "messageTag": "promo,bf", "viewMessageLink": "https://esputnik.com/view/ab12cd", "broadcastId": 7104,
         "from": None},
        {"iid": "b", "offset": 1200346, "contactId": 100877, "mediaType": "Email", "activityStatus": "CLICKED",
         "activityDateTime": "2026-11-20T10:05:02", "workflowId": 5012,
         "clickEventLink": "https://shop.example.com/cart?utm_source=esputnik&utm_campaign=cart_recovery",
         "sourceEventId": "ev-88213", "sourceEventKey": "100877", "sourceEventTypeKey": "abandonedCart",
         "statusDescription": "550 mailbox full", "from": "Shop"},
    ]  # fmt: skip
    first, second = shape("contactActivities", rows).to_dicts()
    assert (first["activityStatus"], first["activity"], first["campaignType"]) == ("RECEIVED", "RECEIVED", "Group")
    assert first["utmCampaign"] is None and first["messageURL"] == "https://esputnik.com/view/ab12cd"
    assert first["messageTags"] == "promo,bf"
    assert first["activityDateTime"] == first["started"] == datetime(2026, 11, 20, 10, 4, 17, 250000, tzinfo=UTC)
    assert (second["campaignType"], second["utmCampaign"]) == ("IM", "cart_recovery")
    assert (second["eventId"], second["eventKey"], second["eventTypeKey"]) == ("ev-88213", "100877", "abandonedCart")
    assert second["workflowId"] == "5012" and second["senderName"] == "Shop"
    assert second["statusDescription"] == second["errorCode"] == "550 mailbox full"


def test_local_times_become_utc_instants_including_midnight_and_dst():
    rows = [
        {"iid": "m", "activityDateTime": "2026-11-20T00:00:00", "activityStatus": "SENT"},
        {"iid": "d", "activityDateTime": "2026-10-25T03:30:00", "activityStatus": "SENT"},  # the repeated hour
    ]
    out = shape("contactActivities", rows, tz="Europe/Kyiv")
    assert out["activityDateTime"].to_list() == [
        datetime(2026, 11, 19, 22, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # the earlier of the two instants
    ]


def test_utm_campaign_is_decoded_and_empty_is_null():
    rows = [
        {"iid": "1", "clickEventLink": "https://s.example/p?utm_campaign=black%20friday&x=1"},
        {"iid": "2", "clickEventLink": "https://s.example/p?a=1&utm_campaign=&b=2"},
        {"iid": "3", "clickEventLink": "https://s.example/p?xutm_campaign=no"},
        {"iid": "4", "clickEventLink": "https://s.example/p#utm_campaign=frag"},
    ]
    assert shape("contactActivities", rows)["utmCampaign"].to_list() == ["black friday", None, None, None]


def test_revenue_uses_messageUrl_and_int_workflow():
    rows = [{"orderId": 5501234, "orderDate": "2026-11-20T10:41:09", "totalCost": 1299.5, "currency": "UAH",
             "activityStatus": "READ", "viewMessageLink": "https://v", "workflowId": 77, "broadcastId": None}]  # fmt: skip
    row = shape("revenue", rows).to_dicts()[0]
    assert row["messageUrl"] == "https://v" and row["workflowId"] == 77 and row["activityStatus"] == "RECEIVED"
    assert row["campaignType"] == "IM" and row["totalCost"] == 1299.5


def test_orders_status_names_and_items():
    rows = [
        {"orderId": 1, "status": "IN_PROGRESS", "date": "2026-11-20T10:41:09", "phone": "3805", "totalCost": 10,
         "items": [{"externalItemId": "SKU-1", "quantity": 2, "cost": 1.5}, {"externalItemId": "SKU-1", "quantity": 1}]},
        {"orderId": 2, "status": "CANCELLED", "date": "2026-11-20T11:00:00", "items": []},
        {"orderId": 3, "status": "ABANDONED_SHOPPING_CART", "date": "2026-11-20T12:00:00", "items": None},
    ]  # fmt: skip
    orders = shape("orders", rows)
    assert orders["Status"].to_list() == ["IN PROGRESS", "CANCELED", "ABANDONED_SHOPPING_CART"]
    assert orders["Phone"].to_list() == ["3805", None, None]
    items = shape("orderItems", rows)
    assert items.select("orderId", "externalProductId", "quantity", "cost", "_item").rows() == [
        (1, "SKU-1", 2, 1.5, 0),
        (1, "SKU-1", 1, None, 1),
    ]
    assert items["orderDate"].to_list() == [datetime(2026, 11, 20, 10, 41, 9, tzinfo=UTC)] * 2


def test_events_params_json_keeps_50_params_and_300_characters():
    long_value = "ї" * 299 + "😀" + "tail"
    params = [{"name": f"p{i}", "value": str(i)} for i in range(60)]
    params[0] = {"name": 'quote"d', "value": long_value}
    rows = [
        {"eventId": 1, "occurred": "2026-11-20T10:39:55", "params": params},
        {"eventId": 2, "occurred": "2026-11-20T10:39:56", "params": [{"name": "price", "value": 1399.5}]},
        {"eventId": 3, "occurred": "2026-11-20T10:39:57", "params": None},
    ]
    out = shape("events", rows)
    first = json.loads(out["paramsJson"][0])
    assert len(first) == 50 and "p50" not in first
    assert first['quote"d'] == "ї" * 299 + "😀"  # characters, not bytes
    assert json.loads(out["paramsJson"][1]) == {"price": "1399.5"}
    assert out["paramsJson"][2] is None


def test_contacts_channels_email_domain_and_unicode():
    rows = [
        {"id": 100512, "firstName": "Олена", "channels": [{"type": "sms", "value": "380501112233"},
         {"type": "email", "value": "olena@Example.COM"}, {"type": "email", "value": "second@x.com"}]},
        {"id": 100513, "firstName": "Zoë 🎉", "channels": [{"type": "mobilepush", "value": "tok"}]},
        {"id": 100514, "channels": None},
    ]  # fmt: skip
    out = shape("contacts", rows)
    assert out.select("email", "emailDomain", "sms").rows() == [
        ("olena@Example.COM", "example.com", "380501112233"),
        (None, None, None),
        (None, None, None),
    ]
    assert out["firstName"].to_list() == ["Олена", "Zoë 🎉", None]


def test_messages_tags_translations_and_media_type_from_path():
    rows = [{"id": 300118, "from": '"Shop" <n@s>', "tags": ["promo", "bf"], "languageCode": "uk",
             "translations": [{"languageCode": "en"}, {"languageCode": "pl"}], "updatedDate": "2026-11-18T16:20:00"}]  # fmt: skip
    row = shape("messages", rows, mediaType="Viber").to_dicts()[0]
    assert (row["tags"], row["translations"], row["language"], row["sender"]) == ("promo,bf", "en,pl", "uk", '"Shop" <n@s>')
    assert row["mediaType"] == "Viber" and row["messageId"] == 300118


def test_broadcasts_keep_every_segment():
    rows = [{"broadcastId": 7104, "title": "BF", "groupId": [11, 14], "startDate": "2026-11-20T10:00:00"},
            {"broadcastId": 7105, "groupId": []}]  # fmt: skip
    out = shape("broadcasts", rows)
    assert out["groupId"].to_list() == [[11, 14], []] and out["name"].to_list() == ["BF", None]


@pytest.mark.parametrize(
    ("dataset", "row", "field", "value"),
    [
        ("orders", {"orderId": "12x", "date": "2026-11-20T10:00:00"}, "orderId", "12x"),
        ("orders", {"orderId": 1, "date": "20/11/2026"}, "date", "20/11/2026"),
        ("orders", {"orderId": 1, "date": "2026-11-20T10:00:00", "totalCost": "lots"}, "totalCost", "lots"),
        ("contactActivities", {"iid": "x", "contactId": 1.5}, "contactId", "1.5"),
        ("broadcasts", {"broadcastId": 1, "groupId": [1, "seg"]}, "groupId", "seg"),
    ],
)
def test_bad_values_fail_naming_dataset_field_and_value(dataset, row, field, value):
    with pytest.raises(BadValueError) as caught:
        shape(dataset, [row, row])
    message = str(caught.value)
    assert dataset in message and repr(field) in message and repr(value) in message
    assert "1 more bad value(s) in the same batch" in message


def test_a_skipped_local_hour_reads_like_zoneinfo_fold_0():
    """03:30 on the spring-forward night does not exist in Kyiv; like zoneinfo, keep the offset before the jump."""
    out = shape("contactActivities", [{"iid": "x", "activityDateTime": "2026-03-29T03:30:00"}], tz="Europe/Kyiv")
    expected = datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Kyiv")).astimezone(UTC)
    assert out["activityDateTime"].to_list() == [expected] == [datetime(2026, 3, 29, 1, 30, tzinfo=UTC)]


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"error": "x"}', b"[{broken", b""])
def test_answers_that_are_not_json_arrays_fail_clearly(body):
    with pytest.raises(AnswerFormatError, match="contacts: the API answer is not a JSON array"):
        shape("contacts", body)


def test_empty_page_shapes_to_empty_typed_frame():
    for dataset in DATASETS:
        extra = {"mediaType": "Email"} if dataset == "messages" else {}
        assert shape(dataset, b" []", **extra).height == 0


@pytest.mark.parametrize("value", ["NaN", "nan", "Infinity", "-Infinity", "INF", "1e400"])
def test_numbers_that_are_not_finite_are_bad_values(value):
    """Item 11: polars reads these as DOUBLE; no sum or average of a warehouse survives one."""
    with pytest.raises(BadValueError, match=rf"orders: field 'totalCost' has value '{value}', which is not a valid finite number"):
        shape("orders", [{"orderId": 1, "date": "2026-11-20T10:00:00", "totalCost": value}])


@pytest.mark.parametrize(
    ("dataset", "body", "field", "value"),
    [
        ("contacts", rb'[{"id": 1, "firstName": "Ann\ud800"}]', "firstName", "Ann\x00"),  # a lone surrogate
        ("contacts", rb'[{"id": 1, "lastName": "a\u0000b"}]', "lastName", "a\x00b"),
        ("orders", rb'[{"orderId": 1, "items": [{"name": "x\u0000"}]}]', "items.name", "x\x00"),
        ("events", rb'[{"eventId": 1, "params": [{"name": "k", "value": "\ud800"}]}]', "params.value", "\x00"),
    ],
)
def test_nul_characters_and_lone_surrogates_are_bad_values(dataset, body, field, value):
    """Item 11: a lone UTF-16 surrogate escape is read as NUL (it was stored so); NUL is no text: both refused,
    nested fields too, naming dataset, field and value."""
    with pytest.raises(BadValueError) as caught:
        shape(dataset, body)
    assert str(caught.value).startswith(f"{dataset}: field {field!r} has value {value!r}, which is not a valid text")
