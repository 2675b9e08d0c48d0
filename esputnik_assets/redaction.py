"""One redaction of the API key in all its forms, for every string that leaves the process.

Servers echo what they are sent: the key raw, URL-encoded, or as the Basic-auth header's base64, in an error body, a
header, or a field of a row. Every text the project hands on (errors, log lines, Dagster metadata, check results,
alert payloads) passes `redact` or `redact_metadata` first. The client that sends a key registers its forms here
once, so code far from the client (a check quoting a stored value, an alert quoting a check) redacts without being
handed the key. Nothing here reads the environment.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import TypeVar
from urllib.parse import quote, quote_plus

MASK = "***"
# The shortest form kept process-wide: a shorter one ("k", a test key) would mask ordinary words in every text. Such a
# key is still redacted by the client that holds it (`redact(text, key)`); real API keys are far longer.
MIN_REGISTERED_CHARS = 8
T = TypeVar("T")

_lock = threading.Lock()
_forms: tuple[str, ...] = ()  # every registered form, longest first, so a longer form is never half-replaced


def secret_forms(secret: str) -> tuple[str, ...]:
    """Every form a key can take in a server's text, longest first: raw, URL-encoded, and base64 as in the
    Basic-auth header (of ":" + key, and of the key alone; unpadded, so a padded copy loses its secret part too)."""
    if not secret:
        return ()
    forms = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret)}
    for raw in (f":{secret}".encode(), secret.encode()):
        forms |= {base64.b64encode(raw).decode().rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("=")}
    return tuple(sorted(forms, key=len, reverse=True))


def distinctive_forms(secret: str) -> tuple[str, ...]:
    """The forms long enough to tell from ordinary text: what is registered, and what answers are searched for."""
    return tuple(form for form in secret_forms(secret) if len(form) >= MIN_REGISTERED_CHARS)


def register_secret(secret: str | None) -> None:
    """Remember a secret's forms for the life of the process (idempotent; forms under MIN_REGISTERED_CHARS are not)."""
    global _forms
    new = distinctive_forms(secret or "")
    if not new:
        return
    with _lock:
        if set(new) <= set(_forms):
            return
        _forms = tuple(sorted(set(_forms) | set(new), key=len, reverse=True))


def redact(text: str, *extra_secrets: str | None) -> str:
    """`text` with every form of every registered secret (and of `extra_secrets`) replaced by ***."""
    forms = _forms
    if extra_secrets:
        extra = {form for secret in extra_secrets for form in secret_forms(secret or "")}
        forms = tuple(sorted(set(forms) | extra, key=len, reverse=True))
    for form in forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def holds_secret(text: str) -> bool:
    """True when `text` holds any registered form (a value a server copied a key into)."""
    return any(form in text for form in _forms)


def redact_metadata(value: T) -> T:
    """A metadata mapping, check description or any Dagster-serializable value, with every registered form redacted.

    Serialized once and compared as text, so no kind of metadata value (text, Markdown, JSON, a table's records) can
    carry a form through; only a value that holds one is rebuilt.
    """
    forms = _forms
    if not forms:
        return value
    if isinstance(value, str):
        return redact(value)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {redact(str(k)) if isinstance(k, str) else k: redact_metadata(v) for k, v in value.items()}  # type: ignore[return-value]
    if type(value) in (list, tuple):  # exactly: Dagster's metadata values are records, some of them tuples
        return type(value)(redact_metadata(v) for v in value)  # type: ignore[return-value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    from dagster import deserialize_value, serialize_value  # only metadata values reach here

    text = serialize_value(value)  # type: ignore[arg-type]
    escaped = [json.dumps(form)[1:-1] for form in forms]
    if not any(form in text for form in escaped):
        return value
    for form in escaped:
        text = text.replace(form, MASK)
    return deserialize_value(text)  # type: ignore[return-value]
