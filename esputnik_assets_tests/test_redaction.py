"""The one redaction every outgoing text passes: each form of a registered key, in text and in any metadata value."""

from __future__ import annotations

import base64
from urllib.parse import quote

import dagster as dg

from esputnik_assets import redaction

KEY = "redaction-test/key+with=odd&chars"


def _forms_present(text: str) -> list[str]:
    return [form for form in redaction.secret_forms(KEY) if form in text]


def test_every_form_of_a_registered_key_is_redacted_from_text() -> None:
    redaction.register_secret(KEY)
    basic = base64.b64encode(f":{KEY}".encode()).decode()
    text = f"raw {KEY} url {quote(KEY, safe='')} header Basic {basic} alone {base64.b64encode(KEY.encode()).decode()}"
    assert _forms_present(text)
    cleaned = redaction.redact(text)
    assert _forms_present(cleaned) == []
    assert cleaned.count(redaction.MASK) == 4
    assert redaction.holds_secret(text) and not redaction.holds_secret(cleaned)


def test_an_unregistered_key_is_redacted_when_passed_along() -> None:
    other = "never-registered-key-42"
    assert redaction.redact(f"x {other} y", other) == f"x {redaction.MASK} y"
    assert redaction.redact(f"x {other} y") == f"x {other} y"


def test_metadata_of_every_kind_is_redacted_and_clean_values_are_kept_as_they_are() -> None:
    redaction.register_secret(KEY)
    basic = base64.b64encode(f":{KEY}".encode()).decode()
    table = dg.MetadataValue.table(
        records=[dg.TableRecord({"value": f"Basic {basic}"})], schema=dg.TableSchema(columns=[dg.TableColumn("value")])
    )
    clean = dg.MetadataValue.md("| a |\n|---|\n| b |")
    metadata = {
        "examples": [f"status {KEY}", "SENT"],
        "preview": dg.MetadataValue.md(f"| v |\n|---|\n| {basic} |"),
        "json": dg.MetadataValue.json({"nested": [KEY]}),
        "table": table,
        "count": 3,
        "clean": clean,
    }
    redacted = redaction.redact_metadata(metadata)
    assert _forms_present(dg.serialize_value(redacted["preview"])) == []
    assert _forms_present(dg.serialize_value(redacted["json"])) == []
    assert _forms_present(dg.serialize_value(redacted["table"])) == []
    assert redacted["examples"] == [f"status {redaction.MASK}", "SENT"]
    assert redacted["count"] == 3
    assert redacted["clean"] is clean


def test_a_key_too_short_to_tell_from_words_is_not_registered_process_wide() -> None:
    redaction.register_secret("k")
    assert redaction.redact("unknown_values: kept") == "unknown_values: kept"
    assert redaction.redact("key k", "k") == "***ey ***"
