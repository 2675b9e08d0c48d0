"""The HTTP client and pagers against loopback servers: retries, errors, paging, window splitting, no key leaks."""

import logging
import re
from datetime import datetime, timedelta

import polars as pl
import pytest

from esputnik_assets.demo import DemoAccount, DemoServer, FaultPlan
from esputnik_assets.source import client as client_module
from esputnik_assets.source.client import EsputnikClient, RetryPolicy, retry_after_seconds
from esputnik_assets.source.errors import (
    ActivityNotEnabledError,
    AuthenticationError,
    BadRequestError,
    EndpointNotFoundError,
    ForbiddenError,
    PagingError,
    TransientError,
)
from esputnik_assets.source.paging import ActivityWindowing, ReadStats, concurrently, read_activity, read_v1
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.specs import ACTIVITY, CONTACTS
from esputnik_assets_tests.scripted_server import Reply, ScriptedServer, sequence

KEY = "sekret-KEY-0123456789"


@pytest.fixture
def sleeps(monkeypatch):
    """Record the client's back-off sleeps instead of waiting them out."""
    recorded: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", recorded.append)
    return recorded


def make_client(server: ScriptedServer, **kwargs) -> EsputnikClient:
    kwargs.setdefault("requests_per_second", 0)
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05))
    return EsputnikClient(server.url, KEY, **kwargs)


def rows(n: int, start: int = 0) -> list[dict]:
    return [{"id": i, "firstName": f"c{i}"} for i in range(start, start + n)]


def v1_pages(total: int):
    def script(seen):
        first = int(seen.query["startindex"]) - 1
        return Reply(body=rows(max(0, min(int(seen.query["maxrows"]), total - first)), first))

    return script


def read_contacts(client, page_rows=500) -> tuple[pl.DataFrame, ReadStats]:
    stats = ReadStats()
    pages = list(read_v1(client, "contacts", "/v1/contacts", CONTACTS.answer_schema, page_rows=page_rows, key=CONTACTS.answer_key, stats=stats))
    return (pl.concat(pages) if pages else pl.DataFrame()), stats


@pytest.mark.parametrize(("total", "requests"), [(0, 1), (499, 1), (500, 2), (1001, 3), (1500, 4)])
def test_v1_paging_stops_at_short_or_empty_page(total, requests):
    with ScriptedServer(v1_pages(total)) as server:
        frame, stats = read_contacts(make_client(server))
    assert frame.height == total and len(server.seen) == requests == stats.pages
    if total:
        assert frame["id"].cast(int).to_list() == list(range(total))
    assert [s.query["startindex"] for s in server.seen] == [str(1 + 500 * i) for i in range(requests)]
    assert all(s.password == KEY and s.query["maxrows"] == "500" for s in server.seen)


def test_a_server_that_ignores_startindex_is_caught_not_looped():
    with ScriptedServer(sequence(Reply(body=rows(500)))) as server, pytest.raises(PagingError, match="startindex"):
        read_contacts(make_client(server))
    assert len(server.seen) == 2


def test_429_then_success_honours_retry_after(sleeps):
    script = sequence(Reply(429, "slow down", {"Retry-After": "7"}), Reply(body=rows(3)))
    with ScriptedServer(script) as server:
        client = make_client(server)
        frame, _ = read_contacts(client)
    assert frame.height == 3 and sleeps == [7.0]
    assert client.stats.retries == 1 and client.stats.by_status == {429: 1, 200: 1}


def test_5xx_then_success_backs_off(sleeps):
    script = sequence(Reply(503, "busy"), Reply(502), Reply(500), Reply(body=rows(2)))
    with ScriptedServer(script) as server:
        frame, _ = read_contacts(make_client(server))
    assert frame.height == 2 and len(sleeps) == 3 and all(0 <= s <= 0.05 for s in sleeps)


def test_read_timeout_is_retried():
    script = sequence(Reply(body=rows(1), delay=1.0), Reply(body=rows(1)))
    with ScriptedServer(script) as server:
        frame, _ = read_contacts(make_client(server, read_timeout=0.2))
    assert frame.height == 1 and len(server.seen) == 2


def test_connection_refused_exhausts_retries(sleeps):
    client = EsputnikClient("http://127.0.0.1:9/api", KEY, requests_per_second=0, retry=RetryPolicy(max_attempts=3, base_delay=0.01))
    with pytest.raises(TransientError, match="after 3 attempt"):
        client.get("/v1/contacts", {})
    assert len(sleeps) == 2


def test_retry_budget_is_bounded(sleeps):
    with ScriptedServer(sequence(Reply(429, headers={"Retry-After": "100"}))) as server:
        client = make_client(server, retry=RetryPolicy(max_attempts=10, max_total_wait=250))
        with pytest.raises(TransientError, match="HTTP 429"):
            client.get("/v1/contacts", {})
    assert sleeps == [100.0, 100.0]


def test_retry_after_accepts_http_dates():
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("soon") is None


@pytest.mark.parametrize(
    ("reply", "error", "text"),
    [
        (Reply(401, "Unauthorized"), AuthenticationError, "Check ESPUTNIK_API_KEY"),
        (Reply(400, "Contact support to enable ContactActivity."), ActivityNotEnabledError,
         "Contact support to enable ContactActivity."),
        (Reply(400, "maxrows must be <= 500"), BadRequestError, "maxrows must be <= 500"),
        (Reply(404, "Not Found"), EndpointNotFoundError, "switch the dataset off via ESPUTNIK_DATASETS"),
        (Reply(403, "Forbidden"), ForbiddenError, "the key lacks permission for it. Use an API key with read access"),
        (Reply(403, "Forbidden"), ForbiddenError, "or switch the dataset off via ESPUTNIK_DATASETS"),
    ],
)  # fmt: skip
def test_client_errors_are_not_retried_and_say_what_to_do(reply, error, text, sleeps):
    with ScriptedServer(sequence(reply)) as server, pytest.raises(error) as caught:
        make_client(server).get("/v1/contacts", {})
    assert text in str(caught.value) and len(server.seen) == 1 and sleeps == []


def test_the_key_never_shows_in_errors_logs_or_reprs(caplog, sleeps):
    caplog.set_level(logging.DEBUG)
    echo = sequence(Reply(503, f"upstream said key={KEY}"), Reply(400, f"bad key {KEY} for this call"))
    with ScriptedServer(echo) as server:
        client = make_client(server)
        with pytest.raises(BadRequestError) as caught:
            client.get("/v1/contacts", {})
    assert KEY not in str(caught.value) and "***" in str(caught.value)
    assert KEY not in repr(client) and KEY not in caplog.text


def test_pacing_spaces_requests(monkeypatch, tmp_path):
    """The pacer computes each start from the previous one; checked on its own clock, not by timing the machine."""
    from esputnik_assets.source import pacing

    clock = [100.0]
    waits: list[float] = []
    monkeypatch.setattr(pacing.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(pacing.time, "sleep", waits.append)
    pacer = pacing.RatePacer(2.0, "https://esputnik.example/api", folder=str(tmp_path))
    for _ in range(3):
        pacer.wait()
    assert waits == [0.5, 1.0]
    pacer.hold_off(10, "a 429 asked for 10s")
    pacer.wait()
    assert waits[-1] == 10.0


# --- the activity endpoint, against the demo account's real server and its quirks ------------------------------


def activity_day(server: DemoServer, windowing: ActivityWindowing, day=datetime(2026, 11, 20)):
    client = EsputnikClient(server.url, server.api_key, requests_per_second=0)
    stats = ReadStats()
    window = LocalWindow(day, day + timedelta(days=1))
    pages = list(read_activity(client, "contactActivities", ACTIVITY.path, ACTIVITY.answer_schema, window, windowing, stats))
    return pl.concat(pages), stats, client


def test_activity_cursor_pages_a_day_in_one_window():
    account = DemoAccount(activities_per_day=4_500)
    with DemoServer(account) as server:
        frame, stats, client = activity_day(server, ActivityWindowing())
    assert frame["iid"].n_unique() == frame.height == account.expected_count("contactActivities", datetime(2026, 11, 20).date())
    assert client.stats.requests == 5 and stats.windows == 1 and stats.windows_split == 0


def test_a_full_window_reads_on_from_its_last_second_and_nothing_is_lost():
    account = DemoAccount(activities_per_day=6_000)
    with DemoServer(account, faults=FaultPlan(activity_cursor_depth=2_000)) as server:
        frame, stats, client = activity_day(server, ActivityWindowing(window_row_limit=2_000))
    assert frame["iid"].n_unique() == 6_000
    assert stats.windows_split == 3 and stats.windows == 1
    assert client.stats.requests == 7  # 6 full pages and a closing one: the minimum the paging allows
    assert frame.height - 6_000 < 20  # only the rows of the seconds where a window was resumed come back


def test_concurrent_windows_read_the_same_rows():
    account = DemoAccount(activities_per_day=5_000)
    with DemoServer(account) as server:
        frame, stats, _ = activity_day(server, ActivityWindowing(concurrency=4))
    assert frame["iid"].n_unique() == frame.height == 5_000 and stats.windows == 4


def out_of_order_activity_server(total: int, depth: int):
    """Offsets do not follow time here, and the cursor returns nothing past `depth` rows of a window."""
    import random

    rng = random.Random(3)
    day = datetime(2026, 11, 20)
    rows = sorted(
        ({"iid": f"i{n}", "offset": n, "activityDateTime": (day + timedelta(seconds=rng.randrange(86_400))).isoformat()}
         for n in range(total)),
        key=lambda r: r["offset"],
    )  # fmt: skip

    def script(seen):
        start, end = seen.query["dateFrom"], seen.query["dateTo"]
        inside = [r for r in rows if start <= r["activityDateTime"] < end]
        after = int(seen.query.get("offset", -1))
        served_before = sum(1 for r in inside if r["offset"] <= after)
        page = [r for r in inside if r["offset"] > after][: int(seen.query["maxrows"])]
        return Reply(body=page[: max(0, depth - served_before)])

    return ScriptedServer(script)


def test_a_full_window_out_of_time_order_is_read_again_in_halves():
    with out_of_order_activity_server(total=60, depth=10) as server:
        client = EsputnikClient(server.url, KEY, requests_per_second=0)
        stats = ReadStats()
        window = LocalWindow(datetime(2026, 11, 20), datetime(2026, 11, 21))
        windowing = ActivityWindowing(window_row_limit=10, page_rows=5)
        pages = list(read_activity(client, "contactActivities", ACTIVITY.path, ACTIVITY.answer_schema, window, windowing, stats))
    frame = pl.concat(pages)
    assert frame["iid"].n_unique() == 60
    assert stats.windows_split >= 3


def test_duplicate_activities_come_back_and_are_left_for_the_key():
    account = DemoAccount(activities_per_day=3_000)
    with DemoServer(account, faults=FaultPlan(activity_duplicate_rate=1.0)) as server:
        frame, _, _ = activity_day(server, ActivityWindowing())
    assert frame.height > 3_000 and frame["iid"].n_unique() == 3_000


def test_window_lists_are_exact_local_windows():
    day = LocalWindow.for_days(datetime(2026, 11, 20).date(), datetime(2026, 11, 22).date())
    assert [w.query() for w in day.chunks(timedelta(days=1))] == [
        {"dateFrom": "2026-11-20T00:00:00", "dateTo": "2026-11-21T00:00:00"},
        {"dateFrom": "2026-11-21T00:00:00", "dateTo": "2026-11-22T00:00:00"},
    ]
    halves = LocalWindow(datetime(2026, 1, 1), datetime(2026, 1, 1, 0, 0, 3)).split()
    assert [(w.start.second, w.end.second) for w in halves] == [(0, 1), (1, 3)]


def test_concurrent_reads_hand_on_errors_and_stop_cleanly():
    def read(item):
        yield pl.DataFrame({"x": [item]})
        if item == 3:
            raise RuntimeError("window 3 failed")
        yield pl.DataFrame({"x": [item]})

    with pytest.raises(RuntimeError, match="window 3 failed"):
        list(concurrently(list(range(8)), read, 3))
    first = next(concurrently(list(range(50)), read, 3))  # a consumer that stops early does not hang the pool
    assert first.height == 1


PACED_READER = """
import sys, time
from esputnik_assets.source.client import EsputnikClient
from esputnik_assets.source.pacing import RatePacer

reserved, update = [], RatePacer._update

def recording_update(self, earliest, spacing, hold=None):
    start, state = update(self, earliest, spacing, hold)
    reserved.append(start)
    return start, state

RatePacer._update = recording_update
client = EsputnikClient(sys.argv[1], "k", requests_per_second=float(sys.argv[2]))
print("ready", flush=True)
sys.stdin.readline()
for _ in range(6):
    client.get("/v1/contacts", {})
    assert time.monotonic() >= reserved[-1], "a request went before the start its pacer reserved"
print(*reserved, flush=True)
"""


@pytest.mark.slow
def test_two_processes_reading_one_account_share_its_rate(tmp_path):
    """Two runs (processes) against one account at once: together they keep to its rate, not twice it. Asserted on
    the start times the shared pacer handed out (CLOCK_MONOTONIC, one clock for both), not on arrival times."""
    import os
    import subprocess
    import sys

    rate = 10.0
    with ScriptedServer(lambda seen: Reply(body=[])) as server:
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", PACED_READER, server.url, str(rate)], env=os.environ | {"TMPDIR": str(tmp_path)},
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            for _ in range(2)
        ]
        assert [run.stdout.readline() for run in runs] == ["ready\n", "ready\n"]
        for run in runs:  # both start reading together, whatever their start-up took
            run.stdin.write("go\n")
            run.stdin.flush()
        outputs = [run.communicate(timeout=60)[0] for run in runs]
        assert [run.returncode for run in runs] == [0, 0]
    starts = sorted(float(t) for output in outputs for t in output.split())
    assert len(starts) == 12 and len(server.seen) == 12
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 1 / rate - 1e-9  # 10 requests a second between both processes, never two in one slot


@pytest.fixture
def own_pacing_folder(monkeypatch, tmp_path):
    """Pacing files of this test only (they live in the system temp folder, shared by every process)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def test_a_retry_after_beyond_the_budget_is_not_stored_for_everyone(sleeps, own_pacing_folder):
    """Item 5: a 429 asking for 1800 s fails the run at once (over the 600 s budget) and leaves no hold-off in the
    account's shared pacing file: a later client (the doctor, the next run) neither waits nor is told to."""
    with ScriptedServer(sequence(Reply(429, "slow down", {"Retry-After": "1800"}), Reply(body=rows(1)))) as server:
        client = make_client(server, requests_per_second=5, retry=RetryPolicy(max_total_wait=600))
        with pytest.raises(TransientError, match=r"next wait \(1800s\) would pass the retry budget of 600s"):
            client.get("/v1/contacts", {})
        later = make_client(server, requests_per_second=5)
        assert later.pending_hold_off() is None
        later.get("/v1/contacts", {})
    assert len(server.seen) == 2 and all(wait < 1 for wait in sleeps)


def test_a_long_wait_is_logged_with_its_reason_and_end_time_and_shared(sleeps, own_pacing_folder, caplog):
    """A wait within the budget is taken, logged (reason, end as UTC ISO) and held off for every process."""
    caplog.set_level(logging.WARNING)
    with ScriptedServer(sequence(Reply(429, "slow down", {"Retry-After": "30"}), Reply(body=rows(1)))) as server:
        make_client(server, requests_per_second=5).get("/v1/contacts", {}, dataset="contacts")
        pending = make_client(server, requests_per_second=5).pending_hold_off()
    assert sleeps[0] == 30.0
    assert re.search(r"contacts: GET /v1/contacts: HTTP 429: slow down; retry 1 in 30\.00s, until 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", caplog.text)
    assert pending is not None and 25 < pending.seconds <= 30  # the test's sleeps take no time
    assert pending.reason == "contacts: GET /v1/contacts answered 429 asking for 30s"
