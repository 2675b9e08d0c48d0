"""The source layer against hostile servers (issue 7): endless paging, echoed keys, trickled and cut answers."""

from __future__ import annotations

import base64
import json
import logging
import re
import subprocess
import sys
import time
import traceback
from datetime import datetime, timedelta
from urllib.parse import quote, quote_plus

import polars as pl
import pytest

from esputnik_assets.source.client import EsputnikClient, RetryPolicy
from esputnik_assets.source.errors import (
    BadRequestError,
    EchoedCredentialsError,
    EsputnikError,
    PagingError,
    RedirectRefusedError,
    TransientError,
)
from esputnik_assets.source.extract import extract
from esputnik_assets.source.paging import ActivityWindowing, ReadLimits, ReadStats, read_activity, read_v1
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.specs import ACTIVITY, CONTACTS, DATASETS
from esputnik_assets.shaping.errors import AnswerFormatError, BadValueError
from esputnik_assets_tests.scripted_server import Reply, ScriptedServer, sequence

KEY = "sekret/KEY+01 23=?&~"  # characters that URL-encode and base64-encode in every variant
FORMS = {
    "raw": KEY,
    "basic": base64.b64encode(f":{KEY}".encode()).decode(),
    "base64": base64.b64encode(KEY.encode()).decode(),
    "quote": quote(KEY),
    "quote_plus": quote_plus(KEY),
}
SAFETY_STOP = 40  # scripts answer an empty page after this many requests, so a failing guard ends, not hangs
DAY = datetime(2026, 11, 20)


def make_client(server: ScriptedServer, **kwargs) -> EsputnikClient:
    kwargs.setdefault("requests_per_second", 0)
    kwargs.setdefault("retry", RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02))
    return EsputnikClient(server.url, KEY, **kwargs)


def contact_rows(n: int, start: int = 0) -> list[dict]:
    return [{"id": i, "firstName": f"c{i}"} for i in range(start, start + n)]


def read_contacts(client: EsputnikClient, **kwargs) -> list[pl.DataFrame]:
    return list(read_v1(client, "contacts", "/v1/contacts", CONTACTS.answer_schema, page_rows=500, key=CONTACTS.answer_key, **kwargs))


def stopping(script):
    """The script, until SAFETY_STOP requests; then an empty page."""
    count = [0]

    def guarded(seen):
        count[0] += 1
        return Reply(body=[]) if count[0] > SAFETY_STOP else script(seen)

    return guarded


def chain_text(error: BaseException) -> str:
    """Everything a traceback of the error would show (its causes and contexts included) and the reprs."""
    texts = ["".join(traceback.format_exception(error))]
    while error is not None:
        texts.append(repr(error))
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return "\n".join(texts)


def assert_no_key_in(text: str) -> None:
    leaked = [name for name, form in FORMS.items() if form.rstrip("=") in text]
    assert not leaked, f"the key leaked as {leaked}"


# --- endless paging ------------------------------------------------------------------------------------------


def test_a_v1_page_longer_than_asked_is_a_paging_error():
    with ScriptedServer(stopping(lambda seen: Reply(body=contact_rows(501)))) as server:
        with pytest.raises(PagingError, match=r"contacts: GET /v1/contacts answered 501 rows for maxrows 500"):
            read_contacts(make_client(server))
    assert len(server.seen) == 1


def test_a_v1_server_alternating_two_pages_is_caught_at_the_first_repeat():
    def alternating(seen):
        start = int(seen.query["startindex"])
        return Reply(body=contact_rows(500, 0 if start // 500 % 2 == 0 else 500))

    with ScriptedServer(stopping(alternating)) as server:
        with pytest.raises(PagingError, match=r"full page at startindex 1001 whose keys \(id\) all came on earlier pages"):
            read_contacts(make_client(server))
    assert len(server.seen) == 3


def test_a_v1_server_ignoring_startindex_in_another_json_form_is_caught():
    """The same rows with null fields sent, then left out, then as strings: one page, in the contract's forms."""
    forms = [
        lambda r: {**r, "lastName": None},
        lambda r: r,
        lambda r: {k: str(v) for k, v in r.items()},
    ]

    def same_rows(seen):
        form = forms[(int(seen.query["startindex"]) // 500) % len(forms)]
        return Reply(body=[form(row) for row in contact_rows(500)])

    with ScriptedServer(stopping(same_rows)) as server:
        with pytest.raises(PagingError, match=r"full page at startindex 501 whose keys \(id\) all came on earlier pages"):
            read_contacts(make_client(server))
    assert len(server.seen) == 2


@pytest.mark.parametrize(
    ("limits", "requests", "text"),
    [(ReadLimits(max_pages=4), 4, "4 pages in one read"), (ReadLimits(max_rows=1_200), 3, "1,500 rows in one read")],
)
def test_a_v1_read_that_never_ends_stops_at_its_ceiling(limits, requests, text):
    endless = lambda seen: Reply(body=contact_rows(500, int(seen.query["startindex"])))  # noqa: E731
    with ScriptedServer(stopping(endless)) as server:
        with pytest.raises(PagingError, match=text):
            read_contacts(make_client(server), limits=limits)
    assert len(server.seen) == requests


def activity_rows(first_offset: int, n: int, second: int = 0) -> list[dict]:
    moment = (DAY + timedelta(seconds=second)).isoformat()
    return [{"iid": f"i{o}", "offset": o, "activityDateTime": moment} for o in range(first_offset, first_offset + n)]


def read_activity_day(client: EsputnikClient, windowing: ActivityWindowing) -> tuple[list[pl.DataFrame], ReadStats]:
    stats = ReadStats()
    window = LocalWindow(DAY, DAY + timedelta(days=1))
    pages = read_activity(client, "contactActivities", ACTIVITY.path, ACTIVITY.answer_schema, window, windowing, stats)
    return list(pages), stats


def test_an_activity_page_longer_than_asked_is_a_paging_error():
    def generous(seen):
        return Reply(body=activity_rows(int(seen.query.get("offset", 0)) + 1, int(seen.query["maxrows"]) + 1))

    with ScriptedServer(stopping(generous)) as server:
        with pytest.raises(PagingError, match="contactActivities: GET /v2/contacts/activity answered 6 rows for maxrows 5"):
            read_activity_day(make_client(server), ActivityWindowing(page_rows=5, window_row_limit=10))
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    ("offsets", "text"),
    [((5, 3), "advance past offset 5 in 2026-11-20T00:00:00 .. 2026-11-21T00:00:00: the last row's offset is '3'"),
     (("abc",), "advance past offset None in .*: the last row's offset is 'abc'")],
)  # fmt: skip
def test_an_activity_cursor_that_does_not_advance_fails_naming_the_dataset(offsets, text):
    """A cursor that goes back (or is no number) would re-read or loop; an earlier page again is such a cursor."""
    pages = iter(offsets)

    def script(seen):
        return Reply(body=[{"iid": "i", "offset": next(pages), "activityDateTime": DAY.isoformat()}])

    with ScriptedServer(stopping(script)) as server:
        with pytest.raises(PagingError, match=f"contactActivities: the activity cursor did not {text}"):
            read_activity_day(make_client(server), ActivityWindowing(page_rows=1, window_row_limit=10))
    assert len(server.seen) == len(offsets)


def test_an_activity_read_that_never_ends_stops_at_its_ceiling():
    def endless(seen):
        return Reply(body=activity_rows(int(seen.query.get("offset", 0)) + 1, int(seen.query["maxrows"])))

    windowing = ActivityWindowing(page_rows=5, window_row_limit=10**6, limits=ReadLimits(max_pages=7))
    with ScriptedServer(stopping(endless)) as server:
        with pytest.raises(PagingError, match="7 pages in one read"):
            read_activity_day(make_client(server), windowing)
    assert len(server.seen) == 7


# --- the key never leaves in any form -----------------------------------------------------------------------


def echo(status: int):
    """A server that repeats the request's secrets in its error text, in every form a log or proxy might."""
    return lambda seen: Reply(
        status,
        f"denied: Authorization: {seen.authorization}; url=/x?key={quote(KEY)}&k2={quote_plus(KEY)}; "
        f"raw={KEY}; b64={FORMS['base64']}",
    )


@pytest.mark.parametrize(("status", "error"), [(400, BadRequestError), (500, TransientError)])
def test_the_key_never_shows_in_any_form_when_a_server_echoes_it(status, error, caplog):
    caplog.set_level(logging.DEBUG)
    with ScriptedServer(echo(status)) as server:
        client = make_client(server)
        with pytest.raises(error) as caught:
            read_contacts(client)
    assert server.seen[0].authorization == f"Basic {FORMS['basic']}"  # the echo really holds the header
    text = chain_text(caught.value)
    assert "***" in text and "denied" in text
    for shown in (text, caplog.text, repr(client)):
        assert_no_key_in(shown)


def test_the_key_never_shows_when_a_broken_answer_echoes_it(caplog):
    """A chunk-size line made of the header: the transport error's own text would quote it."""
    caplog.set_level(logging.DEBUG)
    broken = lambda seen: Reply(body=f"{seen.authorization}\r\n\r\n".encode(), chunked=True)  # noqa: E731
    with ScriptedServer(broken) as server:
        with pytest.raises(TransientError, match="ChunkedEncodingError") as caught:
            read_contacts(make_client(server))
    assert_no_key_in(chain_text(caught.value))
    assert_no_key_in(caplog.text)


def test_the_key_never_shows_when_a_200_answer_that_is_not_json_echoes_it():
    with ScriptedServer(lambda seen: Reply(body=f"hello {seen.authorization}")) as server:
        with pytest.raises(AnswerFormatError, match=r"starts with 'hello Basic \*\*\*") as caught:
            read_contacts(make_client(server))
    assert_no_key_in(chain_text(caught.value))


def test_the_key_never_shows_when_a_bad_value_echoes_it(tmp_path):
    """A value holding the header is refused before shaping (it would be a bad date too), and quoted redacted."""
    spec = DATASETS["events"]
    window = LocalWindow(DAY, DAY + timedelta(days=1))
    with ScriptedServer(lambda seen: Reply(body=[{"eventId": 1, "occurred": seen.authorization}])) as server:
        with pytest.raises(EchoedCredentialsError, match=r"'occurred' in the answer .* e\.g\. 'Basic \*\*\*'") as caught:
            extract(make_client(server), spec.source, [spec], window=window, timezone="UTC", spool_dir=tmp_path)
    assert_no_key_in(chain_text(caught.value))


# --- trickled and cut answers ------------------------------------------------------------------------------


def test_a_trickling_answer_is_cut_at_the_request_deadline_and_retried():
    """40 bytes at one per 0.1 s would take 4 s; each socket read is quick, so only a total deadline ends it."""
    with ScriptedServer(lambda seen: Reply(body=b'[{"id": 1, "firstName": "slow........."}]', trickle=0.1)) as server:
        retry = RetryPolicy(max_attempts=2, base_delay=0.01)
        client = make_client(server, read_timeout=2.0, request_deadline=0.4, retry=retry)
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"after 2 attempt\(s\) over (\d+\.\d)s") as caught:
            read_contacts(client)
        elapsed = time.monotonic() - started
    assert elapsed < 2.0 and len(server.seen) == 2
    assert "not complete after 0.4s (request_deadline_seconds)" in str(caught.value)
    reported = float(re.search(r"over (\d+\.\d)s", str(caught.value)).group(1))
    assert 0.7 <= reported <= elapsed + 0.05  # the wall time of both attempts, not only the back-off sleeps


@pytest.mark.parametrize(
    "broken",
    [
        Reply(body=b'[{"id": 1, "firstName": "cut"}, {"id": 2}]', cut_after=12),  # ChunkedEncodingError
        Reply(body=b"this is not gzip", headers={"Content-Encoding": "gzip"}),  # ContentDecodingError
    ],
)
def test_a_cut_or_garbled_answer_is_retried(broken):
    with ScriptedServer(sequence(broken, Reply(body=contact_rows(2)))) as server:
        client = make_client(server)
        pages = read_contacts(client)
    assert pl.concat(pages).height == 2 and len(server.seen) == 2 and client.stats.retries == 1


def test_a_cut_answer_that_stays_cut_fails_naming_the_dataset_and_chained_to_its_cause():
    with ScriptedServer(lambda seen: Reply(body=b'[{"id": 1}, {"id": 2}]', cut_after=5)) as server:
        with pytest.raises(TransientError) as caught:
            read_contacts(make_client(server))
    assert str(caught.value).startswith("contacts: GET /v1/contacts still failing after 3 attempt(s)")
    assert "ChunkedEncodingError" in str(caught.value.__cause__)


def test_a_redirect_loop_fails_at_once_naming_the_dataset_and_chained():
    """Not a transient failure: every attempt would follow the same 30 redirects."""
    loop = lambda seen: Reply(302, headers={"Location": "/api/v1/contacts"})  # noqa: E731
    with ScriptedServer(loop) as server:
        with pytest.raises(EsputnikError, match="contacts: GET /v1/contacts failed and cannot succeed on a retry") as caught:
            read_contacts(make_client(server))
    assert "TooManyRedirects" in str(caught.value.__cause__) and len(server.seen) == 31


# --- logging through the client's logger -------------------------------------------------------------------


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def run_log():
    """A logger like Dagster's context.log: not under esputnik_assets, so only what is passed to it lands there."""
    logger = logging.getLogger("test.run_log")
    logger.propagate, logger.level = False, logging.DEBUG
    collect = Collect()
    logger.addHandler(collect)
    yield logger, collect.lines
    logger.removeHandler(collect)


def test_retries_splits_and_out_of_window_rows_are_logged_through_the_clients_logger(run_log, caplog, tmp_path):
    logger, lines = run_log
    caplog.set_level(logging.DEBUG)
    with ScriptedServer(sequence(Reply(503, "busy"), Reply(body=contact_rows(2)))) as server:
        read_contacts(make_client(server, log=logger))
    assert any(re.fullmatch(r"contacts: GET /v1/contacts: HTTP 503: busy; retry 1 in 0\.\d+s", line) for line in lines)

    def full_windows(seen):  # every window answers 10 rows in time order, then its cursor gives up
        start = datetime.fromisoformat(seen.query["dateFrom"])
        first = int(seen.query.get("offset", 0))
        second = int((start - DAY).total_seconds())
        return Reply(body=[] if first >= 10 * (second + 1) else activity_rows(first + 1, 5, second + first % 10 // 5))

    with ScriptedServer(stopping(full_windows)) as server:
        read_activity_day(make_client(server, log=logger), ActivityWindowing(page_rows=5, window_row_limit=10))
    assert any("came back full; reading on from 2026-11-20 00:00:01" in line for line in lines)

    events = [{"eventId": 1, "occurred": "2026-11-20T12:00:00"}, {"eventId": 2, "occurred": "2026-11-21T00:00:00"}]
    with ScriptedServer(lambda seen: Reply(body=events)) as server:
        window = LocalWindow(DAY, DAY + timedelta(days=1))
        spec = DATASETS["events"]
        extract(make_client(server, log=logger), spec.source, [spec], window=window, timezone="UTC", spool_dir=tmp_path)
    assert any("events: 1 row(s) answered for" in line for line in lines)
    assert not [r for r in caplog.records if r.name.startswith("esputnik_assets")]


def test_the_source_layer_imports_without_dagster():
    code = (
        "import sys\n"
        "import esputnik_assets.source.client, esputnik_assets.source.paging, esputnik_assets.source.extract\n"
        "assert 'dagster' not in sys.modules, 'dagster was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- errors say the dataset once ---------------------------------------------------------------------------


def test_an_extract_error_names_the_dataset_once(tmp_path):
    spec = DATASETS["contacts"]
    with ScriptedServer(lambda seen: Reply(body=contact_rows(500))) as server:
        with pytest.raises(PagingError) as caught:
            extract(make_client(server), spec.source, [spec], window=None, timezone="UTC", spool_dir=tmp_path)
    assert str(caught.value).startswith("contacts: GET /v1/contacts answered a full page at startindex 501")
    assert str(caught.value).count("contacts:") == 1


def test_the_resource_passes_its_deadline_and_ceilings_to_the_reader():
    from esputnik_assets.source.resource import EsputnikResource

    with ScriptedServer(lambda seen: Reply(body=b"[" + b" " * 30 + b"]", trickle=0.05)) as server:
        resource = EsputnikResource(
            api_key=KEY, api_url=server.url, max_requests_per_second=0, max_attempts=1, request_deadline_seconds=0.3,
            max_pages_per_read=12, max_rows_per_read=3_400,
        )  # fmt: skip
        with resource.open() as api, pytest.raises(TransientError, match=r"not complete after 0\.3s"):
            api.client.get("/v1/contacts", {})
    assert resource.windowing().limits == ReadLimits(max_pages=12, max_rows=3_400)


# --- reading economy: time order is judged on instants, not on their text ----------------------------------


def two_form_activity_server(total: int, per_second: int, depth: int) -> ScriptedServer:
    """Activities in time order, `per_second` to a second, each second's equal instants written both ways
    (`...:07` and `...:07.000`, as the contract allows); the cursor gives up after `depth` rows of a window."""
    rows = [
        {"iid": f"i{k}", "offset": k + 1,
         "activityDateTime": (DAY + timedelta(seconds=k // per_second)).isoformat() + ("" if k % 2 == 0 else ".000")}
        for k in range(total)
    ]  # fmt: skip
    instants = [DAY + timedelta(seconds=k // per_second) for k in range(total)]

    def script(seen):
        start, end = (datetime.fromisoformat(seen.query[name]) for name in ("dateFrom", "dateTo"))
        inside = [row for row, t in zip(rows, instants) if start <= t < end]
        after = int(seen.query.get("offset", 0))
        served = sum(1 for row in inside if row["offset"] <= after)
        page = [row for row in inside if row["offset"] > after][: int(seen.query["maxrows"])]
        return Reply(body=page[: max(0, depth - served)])

    return ScriptedServer(script)


def test_equal_instants_written_two_ways_do_not_make_a_full_window_read_again_in_halves():
    with two_form_activity_server(total=300, per_second=3, depth=30) as server:
        pages, stats = read_activity_day(make_client(server), ActivityWindowing(page_rows=10, window_row_limit=30))
    frame = pl.concat(pages)
    assert frame["iid"].n_unique() == 300
    # each full window reads on from its last second: 30 rows of which that second's 3 come back, so 27 new rows
    # a window, in 3 pages (34 requests, 333 rows); judged on the text, 136 requests read 1,170 rows
    assert frame.height <= 300 + 3 * 12 and len(server.seen) <= 12 * 3 + 2
    assert stats.windows_split == len(server.seen) // 3


# --- issue 13: a green run means correct data, round two ---------------------------------------------------


def test_every_source_error_is_redacted_of_the_key():
    """A message quoting server data (a row's offset) passes the one redaction, whatever raises it."""
    EsputnikClient("http://127.0.0.1:9/api", KEY)  # registers the key, as every run does
    error = PagingError(f"contactActivities: the last row's offset is {('Basic ' + FORMS['basic'])!r}")
    assert "***" in str(error)
    assert_no_key_in(chain_text(error))


def echoing_activity_server(field: str) -> ScriptedServer:
    """One activity whose `field` is the request's Authorization header, as a server copying it into rows would."""

    def script(seen):
        if "offset" in seen.query:
            return Reply(body=[])
        row = {"iid": "i1", "offset": 1, "activityDateTime": DAY.isoformat(), "activityStatus": "DELIVERED"}
        return Reply(body=[{**row, field: seen.authorization}])

    return ScriptedServer(script)


@pytest.mark.parametrize("field", ["activityStatus", "offset"])
def test_a_server_echoing_the_key_into_rows_fails_the_run_and_leaves_no_form_of_it_anywhere(tmp_path, field):
    """Item 4: the Basic header copied into a value is refused at the read, naming dataset and field, the value
    redacted; nothing is written, and no form of the key is in any file of the Dagster instance after the run."""
    import dagster as dg

    from esputnik_assets.warehouse.io_manager import DuckDBIOManager
    from esputnik_assets_tests.conftest import Pipeline, failure_text

    io = DuckDBIOManager(path=str(tmp_path / "w.duckdb"))
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        with echoing_activity_server(field) as server:
            result = Pipeline(server.url, KEY, io).run(
                DAY.date().isoformat(), selection=["contactActivities"], raise_on_error=False, instance=instance
            )
        assert server.seen[0].authorization == f"Basic {FORMS['basic']}"
        message = failure_text(result)
        assert not result.success
        assert f"contactActivities: field '{field}' in the answer to GET /v2/contacts/activity holds the API key" in message
        assert "'Basic ***'" in message and "echoes request credentials into its answers" in message
        stored = b"".join(path.read_bytes() for path in (tmp_path / "home").rglob("*") if path.is_file())
        assert len(stored) > 10_000  # the run really is in there
    for name, form in FORMS.items():
        assert form.rstrip("=").encode() not in stored, name
    assert not (tmp_path / "w.duckdb").exists() or b"DELIVERED" not in (tmp_path / "w.duckdb").read_bytes()


def test_trickled_status_line_and_headers_are_cut_at_the_request_deadline():
    """Item 6: the status line and headers one byte per 0.05 s (~3 s): the deadline covers them, not only the body."""
    with ScriptedServer(lambda seen: Reply(body=b"[]", trickle_head=0.05)) as server:
        client = make_client(server, read_timeout=2.0, request_deadline=0.5, retry=RetryPolicy(max_attempts=2, base_delay=0.01))
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"not complete after 0\.5s \(request_deadline_seconds\)"):
            read_contacts(client)
        elapsed = time.monotonic() - started
    assert len(server.seen) == 2 and elapsed < 2.5, elapsed  # before: each attempt waited out the whole head


def one_field_changed():
    """The same 500 contacts whatever startindex says, one field different on every request."""
    requests = [0]

    def script(seen):
        requests[0] += 1
        return Reply(body=[{"id": i, "firstName": f"c{i}", "lastName": f"request {requests[0]}"} for i in range(500)])

    return script


def rotating_subsets():
    """startindex ignored; 1,000 contacts served as three overlapping pages in turn, each a different set."""
    requests = [0]

    def script(seen):
        requests[0] += 1
        return Reply(body=contact_rows(500, 250 * ((requests[0] - 1) % 3)))

    return script


@pytest.mark.parametrize(("script", "caught_at"), [(one_field_changed, 2), (rotating_subsets, 4)])
def test_a_v1_server_ignoring_startindex_whose_pages_differ_is_caught_by_their_keys(script, caught_at):
    """Item 7: pages differing in a field (or in which known keys they hold) are no progress: a full page whose keys
    all came on earlier pages fails the read (before: 3,714 requests a minute until the row ceiling)."""
    with ScriptedServer(stopping(script())) as server:
        with pytest.raises(PagingError, match=rf"full page at startindex {1 + 500 * (caught_at - 1)} whose keys \(id\)"):
            read_contacts(make_client(server))
    assert len(server.seen) == caught_at


def test_a_v1_read_whose_pages_overlap_a_little_is_not_refused():
    """Rows inserted while paging shift the pages: a page that repeats some keys of the previous one is progress."""

    def shifting(seen):
        first = int(seen.query["startindex"]) - 1
        return Reply(body=contact_rows(max(0, min(500, 1_400 - first)), max(0, first - 10)))

    with ScriptedServer(shifting) as server:
        pages = read_contacts(make_client(server))
    assert sum(page.height for page in pages) == 1_400 and len(server.seen) == 3


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_answer_over_max_answer_bytes_fails_clearly_and_is_not_retried(framing):
    """Item 8: refused by its Content-Length before reading, or by the bytes counted while reading (no length)."""
    from esputnik_assets.source.errors import AnswerTooLargeError
    from esputnik_assets.source.resource import EsputnikResource

    body = json.dumps(contact_rows(400)).encode()
    reply = Reply(body=body) if framing == "content-length" else Reply(body=chunked(body), chunked=True)
    with ScriptedServer(lambda seen: reply) as server:
        resource = EsputnikResource(api_key=KEY, api_url=server.url, max_requests_per_second=0, max_answer_bytes=4_096)
        with resource.open() as api, pytest.raises(AnswerTooLargeError) as caught:
            read_contacts(api.client)
    measure = f"of {len(body):,} bytes (its Content-Length)" if framing == "content-length" else "passed 4,096 bytes"
    assert str(caught.value).startswith(f"contacts: GET /v1/contacts: the answer {measure}")
    assert "over the limit of 4,096 bytes (max_answer_bytes)" in str(caught.value) and len(server.seen) == 1


def chunked(body: bytes, size: int = 1_000) -> bytes:
    """`body` in HTTP chunked framing, so the answer says no length in advance."""
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def test_a_redirect_to_another_host_is_refused_naming_the_target_without_its_query():
    """Item 9: not followed, not retried; the error names the dataset and the target's scheme, host and port."""
    with ScriptedServer(lambda seen: Reply(body=contact_rows(3))) as elsewhere:
        port = elsewhere.url.split(":")[2].split("/")[0]
        target = f"http://localhost:{port}/api/v1/contacts?token=s3cr3t"
        with ScriptedServer(lambda seen: Reply(302, headers={"Location": target})) as server:
            with pytest.raises(RedirectRefusedError) as caught:
                read_contacts(make_client(server))
    message = str(caught.value)
    assert message.startswith(f"contacts: GET /v1/contacts: the server redirected to http://localhost:{port}, off the configured http://127.0.0.1:")
    assert "s3cr3t" not in message and "token" not in message
    assert len(server.seen) == 1 and elsewhere.seen == []


def test_a_redirect_on_the_configured_host_is_followed():
    def script(seen):
        if seen.path == "/api/v1/contacts":
            return Reply(301, headers={"Location": "/api/v1/contacts-moved"})
        return Reply(body=contact_rows(3))

    with ScriptedServer(script) as server:
        pages = read_contacts(make_client(server))
    assert pl.concat(pages).height == 3 and [seen.path for seen in server.seen] == ["/api/v1/contacts", "/api/v1/contacts-moved"]
