"""The demo account served over real HTTP on loopback, exactly per the contract (shared/spec/esputnik-api.md).

Answers mix the contract's legal variations, as a live account may: answer times with and without milliseconds
(the account writes them), null fields sent as null or left out (alternate pages, per endpoint), and activity
numbers that the export keeps as text sent as numbers or strings (alternate rows).

Tests and the sandbox CLI start it in-process; a FaultPlan injects the failures and quirks of the live API
(429 with Retry-After, 5xx, latency, a disabled activity endpoint, repeated activity rows, a cursor that gives up
deep into a window) so that the pipeline's robustness is exercised against something real.
"""

from __future__ import annotations

import base64
import itertools
import random
import re
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import polars as pl

from esputnik_assets.demo.account import MESSAGE_TYPES, DemoAccount, to_ms

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
ACTIVITY_PATH = "/v2/contacts/activity"
ACTIVITY_DISABLED = "Contact support to enable ContactActivity."
ENTITY_PATHS = {"/v1/contacts": "contacts", "/v1/broadcasts": "broadcasts", "/v1/devices": "devices"}
FACT_PATHS = {"/v1/orders": "orders", "/v1/events": "events", "/v1/revenue": "revenue"}
V1_MAX_ROWS = 500
ACTIVITY_MAX_ROWS = 1000
ACTIVITY_MAX_WINDOW = timedelta(days=92)
ONE_DAY = timedelta(days=1)
NULL_FIELD = re.compile(rb',"\w+":null')  # a null field that is not its object's first (values escape their quotes)
QUOTED_ACTIVITY_NUMBERS = ("workflowId",)  # a string column of the export that the answer may give as a number

Answer = tuple[int, bytes, dict[str, str]]


@dataclass
class FaultPlan:
    """Failures and quirks to inject; all deterministic given `seed` and the order of requests."""

    seed: int = 0
    rate_429: float = 0.0
    retry_after: float | None = None
    rate_5xx: float = 0.0
    latency: float = 0.0
    fail_first: int = 0
    activity_duplicate_rate: float = 0.0
    activity_enabled: bool = True
    disabled_paths: frozenset[str] = frozenset()
    activity_cursor_depth: int = 50_000


class BadRequest(Exception):
    """A 400 whose message is the answer's text (the contract says the text says why)."""


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    return status, message.encode(), {"Content-Type": TEXT, **(headers or {})}


def _json(
    frame: pl.DataFrame, headers: dict[str, str] | None = None, *, leave_out_nulls: bool = False,
    quoted: tuple[str, ...] = (),
) -> Answer:
    """The rows as a bare JSON array, in the legal variations of the contract that a reader must take alike.

    `leave_out_nulls`: null fields are left out of the page's rows (a missing field is null); `quoted`: on every
    other row that has one, these fields' numbers are sent as strings.
    """
    body = frame.select(pl.exclude("^_.*$")).write_json().encode() if frame.height else b"[]"
    if leave_out_nulls:
        body = NULL_FIELD.sub(b"", body)
    for name in quoted:
        every_other = itertools.count()
        body = re.sub(
            rb'"%s":(-?\d+)' % name.encode(),
            lambda m: m.group(0) if next(every_other) % 2 else b'"%s":"%s"' % (name.encode(), m.group(1)),
            body,
        )
    return 200, body, {"Content-Type": JSON, **(headers or {})}


def _nulls_left_out(path: str, page_number: int) -> bool:
    """Whether a page leaves its null fields out: alternate pages, starting per endpoint, so one-page reads vary too."""
    return (zlib.crc32(path.encode()) + page_number) % 2 == 1


def _int_param(query: dict[str, str], name: str, default: int | None, low: int, high: int | None) -> int | None:
    """An integer query parameter within [low, high]; the 400 text names the limit that was broken."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if value < low:
        raise BadRequest(f"{name} must be at least {low}")
    if high is not None and value > high:
        raise BadRequest(f"{name} must not exceed {high}")
    return value


def _window(query: dict[str, str]) -> tuple[datetime, datetime]:
    """The required dateFrom/dateTo pair as naive local datetimes (no offsets: the account's own zone)."""
    bounds = []
    for name in ("dateFrom", "dateTo"):
        raw = query.get(name)
        if not raw:
            raise BadRequest(f"{name} is required")
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise BadRequest(f"{name} must look like YYYY-MM-DDTHH:mm:ss") from None
        if moment.tzinfo is not None:
            raise BadRequest(f"{name} must not carry a time zone offset")
        bounds.append(moment)
    return bounds[0], bounds[1]


def _days(start: datetime, end: datetime) -> list[date]:
    """Calendar days that the window [start, end) touches."""
    if end <= start:
        return []
    last = (end - timedelta(microseconds=1)).date()
    return [start.date() + timedelta(days=i) for i in range((last - start.date()).days + 1)]


def _reported_total(total: int) -> str:
    """TotalCount as the live API gives it: near the truth, not always equal to it (readers must not trust it)."""
    return str(max(0, total + total % 3 - 1))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    demo: DemoServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.demo._serve(self)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: tests start many servers
        pass


class DemoServer:
    """ThreadingHTTPServer in a daemon thread answering the contract's endpoints from a DemoAccount."""

    def __init__(self, account: DemoAccount | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 api_key: str = "demo-key", faults: FaultPlan | None = None) -> None:
        self.account = account or DemoAccount()
        self.host = host
        self.port = port
        self.api_key = api_key
        self.faults = faults or FaultPlan()
        self.request_log: list[tuple[str, str, dict[str, str], int]] = []
        self.last_request = time.monotonic()  # when the latest request came in (or the server started)
        self._log_lock = threading.Lock()
        self._fault_lock = threading.Lock()
        self._fault_rng = random.Random(self.faults.seed)
        self._requests_seen = 0
        self._windows: OrderedDict[tuple, pl.DataFrame] = OrderedDict()
        self._windows_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL (paths /v1/..., /v2/... go below it); known once started, as port 0 picks a free port."""
        if self._httpd is None:
            raise RuntimeError("DemoServer is not started")
        return f"http://{self.host}:{self.port}/api"

    def start(self) -> DemoServer:
        handler = type("DemoHandler", (_Handler,), {"demo": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        # A short poll interval keeps stop() fast: tests start and stop many servers.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="esputnik-demo", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd, self._thread = None, None

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests_served(self, path_prefix: str | None = None) -> int:
        """Requests answered (any status), optionally only those whose API path starts with the prefix."""
        with self._log_lock:
            return sum(1 for _, path, _, _ in self.request_log if path_prefix is None or path.startswith(path_prefix))

    # ----- request handling ------------------------------------------------------------------------------
    def _serve(self, request: _Handler) -> None:
        parts = urlsplit(request.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        try:
            status, body, headers = self._answer(request.headers.get("Authorization"), parts.path, query)
        except Exception as error:  # a bug must surface as a 500, not a hung client
            status, body, headers = _text(500, f"internal error: {type(error).__name__}")
        api_path = parts.path[4:] if parts.path.startswith("/api/") else parts.path
        with self._log_lock:
            self.request_log.append((request.command, api_path, query, status))
            self.last_request = time.monotonic()
        try:
            request.send_response(status)
            for name, value in {**headers, "Content-Length": str(len(body))}.items():
                request.send_header(name, value)
            request.end_headers()
            request.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            request.close_connection = True

    def _answer(self, authorization: str | None, path: str, query: dict[str, str]) -> Answer:
        if self.faults.latency:
            time.sleep(self.faults.latency)
        fault = self._fault()
        if fault is not None:
            return fault
        if not self._authorized(authorization):
            return _text(401, "Unauthorized: wrong API key", {"WWW-Authenticate": 'Basic realm="esputnik"'})
        if not path.startswith("/api/"):
            return _text(404, "Not found")
        try:
            return self._route(path[4:], query)
        except BadRequest as error:
            return _text(400, str(error))

    def _fault(self) -> Answer | None:
        """The plan's injected failure for this request, if any; always the same draws per request."""
        plan = self.faults
        with self._fault_lock:
            self._requests_seen += 1
            draw, status_5xx = self._fault_rng.random(), self._fault_rng.choice((500, 502, 503))
            if self._requests_seen <= plan.fail_first:
                return _text(503, "Service temporarily unavailable")
        if draw < plan.rate_429:
            headers = {} if plan.retry_after is None else {"Retry-After": f"{plan.retry_after:g}"}
            return _text(429, "Too many requests", headers)
        if draw < plan.rate_429 + plan.rate_5xx:
            return _text(status_5xx, "Transient server error")
        return None

    def _authorized(self, authorization: str | None) -> bool:
        """HTTP Basic: the user name is ignored, the password must be the API key."""
        if not authorization or not authorization.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(authorization[6:], validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return decoded.partition(":")[2] == self.api_key

    def _route(self, path: str, query: dict[str, str]) -> Answer:
        if any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.faults.disabled_paths):
            return _text(404, "Not found")
        if path in ENTITY_PATHS:
            return self._v1_page(path, self.account.entity_frame(ENTITY_PATHS[path]), query)
        if path.startswith("/v1/messages/"):
            return self._messages(path.removeprefix("/v1/messages/"), query)
        if path in FACT_PATHS:
            return self._v1_page(path, self._fact_window(FACT_PATHS[path], *_window(query)), query)
        if path == ACTIVITY_PATH:
            return self._activity(query)
        return _text(404, "Not found")

    def _v1_page(self, path: str, frame: pl.DataFrame, query: dict[str, str]) -> Answer:
        start = _int_param(query, "startindex", 1, 1, None)
        rows = _int_param(query, "maxrows", V1_MAX_ROWS, 1, V1_MAX_ROWS)
        page = frame.slice(start - 1, rows)
        headers = {"TotalCount": _reported_total(frame.height)}
        return _json(page, headers, leave_out_nulls=_nulls_left_out(path, (start - 1) // rows))

    def _messages(self, kind: str, query: dict[str, str]) -> Answer:
        if kind not in MESSAGE_TYPES:
            return _text(404, f"Unknown message type: {kind}")
        messages = self.account.entity_frame("messages")
        return self._v1_page(f"/v1/messages/{kind}", messages.filter(pl.col("type") == kind).drop("type"), query)

    def _fact_window(self, dataset: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Rows of dataset with start <= t < end; recent windows kept so paging one does not rebuild it."""
        key = (self.account.knobs, dataset, start, end)
        with self._windows_lock:
            if key in self._windows:
                self._windows.move_to_end(key)
                return self._windows[key]
        days = [self.account.day_frame(dataset, day) for day in _days(start, end)]
        if not days:
            return pl.DataFrame()
        t = pl.col("_t")
        frame = pl.concat(days).filter((t >= to_ms(start)) & (t < to_ms(end)))
        with self._windows_lock:
            self._windows[key] = frame
            if len(self._windows) > 8:
                self._windows.popitem(last=False)
        return frame

    def _activity(self, query: dict[str, str]) -> Answer:
        if not self.faults.activity_enabled:
            return _text(400, ACTIVITY_DISABLED)
        start, end = _window(query)
        if end - start > ACTIVITY_MAX_WINDOW:
            raise BadRequest("The period between dateFrom and dateTo must not exceed 3 months")
        rows = _int_param(query, "maxrows", 500, 1, ACTIVITY_MAX_ROWS)
        cursor = _int_param(query, "offset", None, -(2**62), None)
        end = min(end, start + ONE_DAY)  # quirk: a longer window silently answers its first day only
        parts = self._activity_parts(start, end)
        served = 0 if cursor is None else sum(
            int(np.searchsorted(p["offset"].to_numpy(), cursor, "right")) for p in parts)
        if cursor is not None and served >= self.faults.activity_cursor_depth:
            return _json(pl.DataFrame())  # quirk: the live cursor gives up deep into a window
        if served >= sum(p.height for p in parts):
            return _json(pl.DataFrame())  # nothing new: never repeat rows then, or a reader would loop forever
        first = served - self._repeat(query, served, rows)
        page = _slice_parts(parts, first, rows)
        nulls_left_out = _nulls_left_out(ACTIVITY_PATH, first // rows)
        return _json(page, leave_out_nulls=nulls_left_out, quoted=QUOTED_ACTIVITY_NUMBERS)

    def _activity_parts(self, start: datetime, end: datetime) -> list[pl.DataFrame]:
        """Per day, the zero-copy slice of the (time-sorted) day's activities inside the window."""
        parts = []
        for day in _days(start, end):
            frame = self.account.day_frame("contactActivities", day)
            t = frame["_t"].to_numpy()
            low, high = np.searchsorted(t, [to_ms(start), to_ms(end)], "left")
            parts.append(frame.slice(int(low), int(high - low)))
        return parts

    def _repeat(self, query: dict[str, str], served: int, rows: int) -> int:
        """Quirk: how many already served rows this page repeats (same answer on a retry of the same request)."""
        if not served or rows < 2 or not self.faults.activity_duplicate_rate:
            return 0
        key = f"{self.faults.seed}|{query.get('dateFrom')}|{query.get('dateTo')}|{query.get('offset')}".encode()
        digest = zlib.crc32(key)
        if (digest % 10_000) / 10_000 >= self.faults.activity_duplicate_rate:
            return 0
        return min(1 + (digest >> 16) % 5, served, rows - 1)


def _slice_parts(parts: list[pl.DataFrame], first: int, rows: int) -> pl.DataFrame:
    """Rows [first, first + rows) of the parts taken end to end."""
    pieces = []
    for part in parts:
        if first < part.height and rows > 0:
            piece = part.slice(first, rows)
            pieces.append(piece)
            rows -= piece.height
        first = max(0, first - part.height)
    return pl.concat(pieces) if pieces else pl.DataFrame()
