"""Readers for eSputnik's two paging styles; each yields parsed pages (polars frames) and never a whole day."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import polars as pl

from esputnik_assets.shaping.errors import AnswerFormatError
from esputnik_assets.shaping.parse import ANSWER_DATETIME_FORMAT, read_page, string_values
from esputnik_assets.source.client import EsputnikClient
from esputnik_assets.source.errors import EchoedCredentialsError, PagingError
from esputnik_assets.source.windows import LocalWindow

T = TypeVar("T")
SHOWN_VALUE_CHARS = 80


@dataclass
class ReadStats:
    """What a read cost and found, for run metadata; safe to update from reader threads."""

    pages: int = 0
    rows: int = 0
    windows: int = 0
    windows_split: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_metadata(self) -> dict[str, int]:
        return {"pages": self.pages, "rows": self.rows, "windows": self.windows, "windows_split": self.windows_split}


@dataclass(frozen=True)
class ReadLimits:
    """Ceilings of one read, far above any real account's day: a server whose paging never ends fails the run."""

    max_pages: int = 200_000
    max_rows: int = 50_000_000


class _Budget:
    """Pages and rows one read has taken, held to its ceilings; shared by the read's threads."""

    def __init__(self, dataset: str, path: str, limits: ReadLimits) -> None:
        self.dataset, self.path, self.limits = dataset, path, limits
        self.pages = self.rows = 0
        self._lock = threading.Lock()

    def next_page(self) -> None:
        with self._lock:
            if self.pages >= self.limits.max_pages:
                raise PagingError(
                    f"{self.dataset}: GET {self.path} took {self.pages:,} pages in one read, the ceiling "
                    "(max_pages_per_read): the server's paging does not end. If the account really holds that "
                    "much, raise the ceiling"
                )
            self.pages += 1

    def add_rows(self, rows: int) -> None:
        with self._lock:
            self.rows += rows
            if self.rows > self.limits.max_rows:
                raise PagingError(
                    f"{self.dataset}: GET {self.path} answered {self.rows:,} rows in one read, over the ceiling of "
                    f"{self.limits.max_rows:,} (max_rows_per_read): the server's paging does not end. If the "
                    "account really holds that much, raise the ceiling"
                )


def _parse(
    client: EsputnikClient, body: bytes, dataset: str, path: str, schema: Mapping[str, pl.DataType]
) -> pl.DataFrame:
    """One answer page as a frame; a non-JSON answer is quoted in the error with the key redacted from it."""
    try:
        page = read_page(body, dataset, schema)
    except AnswerFormatError as exc:
        failure = exc
    else:
        _refuse_echoed_key(client, page, dataset, path)
        return page
    raise AnswerFormatError(dataset, client.redact(failure.detail))  # outside `except`: the raw one is not chained


def _refuse_echoed_key(client: EsputnikClient, page: pl.DataFrame, dataset: str, path: str) -> None:
    """A server that copies the request's credentials into a field would carry the key into tables, checks, run
    storage and alerts: the page is refused before any of its values go further (one vectorised scan per field)."""
    forms = client.echoable_key_forms
    if not forms:
        return
    for field, values in string_values(page):
        echoes = values.str.contains_any(forms).fill_null(False)
        bad = int(echoes.sum())
        if bad:
            shown = client.redact(values.filter(echoes)[0])[:SHOWN_VALUE_CHARS]
            raise EchoedCredentialsError(
                f"{dataset}: field {field!r} in the answer to GET {path} holds the API key ({bad} row(s), e.g. "
                f"{shown!r}): the server echoes request credentials into its answers. The read was stopped and "
                "nothing of it was written; the key should be treated as exposed by that server"
            )


class _SeenKeys:
    """The keys of every page a read answered, in a Bloom filter of fixed size: a server that ignores `startindex`
    answers keys already answered, however it alters the other fields of each page.

    Why a Bloom filter: an exact set of 64-bit key hashes grows with the read (50M rows: 400 MB as packed integers,
    several GB as a Python set); the filter holds 2**26 bits (8 MiB) whatever the read's size. Its one error is a
    false "seen": with 3 probes a key is wrongly judged seen with probability p, under 1e-6 up to 100,000 keys and
    about 0.7 at 50M (`max_rows_per_read`). A page is judged "all seen" only when every key of it is, so a fresh
    full v1 page of 500 keys is misjudged with probability p**500 (below 1e-77): the guard is sound for full pages.
    A key is the page's key fields hashed together; rows whose key fields are all null or blank are left out (they
    are refused as missing keys when the batch is shaped, and would look alike here).
    """

    BITS = 1 << 26
    PROBES = 3

    def __init__(self, key: Sequence[str]) -> None:
        self.key = tuple(key)
        self._bits = bytearray(self.BITS // 8)

    def add_page(self, page: pl.DataFrame) -> bool:
        """Remember the page's keys; True when the page has keys and every one of them was on an earlier page."""
        present = pl.any_horizontal(pl.col(name).str.strip_chars().str.len_bytes() > 0 for name in self.key)
        keys = page.select(self.key).filter(present)
        if keys.height == 0:
            return False
        first, second = (keys.hash_rows(seed=seed) % self.BITS for seed in (0, 1))
        positions = pl.concat([(first + probe * second) % self.BITS for probe in range(self.PROBES)]).to_list()
        bits = self._bits
        all_seen = all(bits[position >> 3] >> (position & 7) & 1 for position in positions)
        for position in positions:
            bits[position >> 3] |= 1 << (position & 7)
        return all_seen


def read_v1(
    client: EsputnikClient,
    dataset: str,
    path: str,
    schema: Mapping[str, pl.DataType],
    *,
    page_rows: int,
    key: Sequence[str],
    params: Mapping[str, str] | None = None,
    stats: ReadStats | None = None,
    limits: ReadLimits = ReadLimits(),
) -> Iterator[pl.DataFrame]:
    """`startindex`/`maxrows` paging until a short (or empty) page, guarded against paging that never ends.

    A page longer than asked, or a full page whose `key` fields (the answer's own, parsed, so another legal JSON
    form of a key is the same key) were all answered by earlier pages of the read, means the server ignores
    `startindex`/`maxrows`; the read also stops at `limits`. TotalCount is never trusted.
    """
    stats = stats if stats is not None else ReadStats()
    stats.add(windows=1)
    budget = _Budget(dataset, path, limits)
    seen = _SeenKeys(key)
    start = 1
    while True:
        budget.next_page()
        body = client.get(path, {**(params or {}), "startindex": start, "maxrows": page_rows}, dataset=dataset)
        page = _parse(client, body, dataset, path, schema)
        if page.height > page_rows:
            raise PagingError(
                f"{dataset}: GET {path} answered {page.height} rows for maxrows {page_rows} at startindex {start}; "
                "the server is not honouring maxrows, so the pages cannot be trusted to follow each other"
            )
        if seen.add_page(page) and page.height == page_rows:
            raise PagingError(
                f"{dataset}: GET {path} answered a full page at startindex {start} whose keys "
                f"({', '.join(seen.key)}) all came on earlier pages of this read; the server is not honouring "
                "startindex, so reading on would loop or duplicate rows"
            )
        budget.add_rows(page.height)
        stats.add(pages=1, rows=page.height)
        if page.height:
            yield page
        if page.height < page_rows:
            return
        start += page_rows


@dataclass(frozen=True)
class ActivityWindowing:
    """How the activity endpoint is read: windows of at most a day, cursor pages, a depth that ends a window.

    The live cursor is reported unreliable deep into a window and on windows over a day. A window whose rows reach
    `window_row_limit` "came back full". When its rows arrived in time order (eSputnik's offsets follow the
    activity time), reading goes on with a new window from the second the last row was in, so nothing is read
    twice but that second; otherwise the window is split in halves and both are read again. Duplicates either way
    are dropped by `iid` when the day is written. `concurrency` windows are read at once, under the client's pacer.
    `limits` bound every read of a run (`extract` holds the v1 reads to them too).
    """

    max_window: timedelta = timedelta(days=1)
    window_row_limit: int = 50_000
    page_rows: int = 1000  # the endpoint's maximum (more is a 400)
    concurrency: int = 1
    limits: ReadLimits = ReadLimits()


def read_activity(
    client: EsputnikClient,
    dataset: str,
    path: str,
    schema: Mapping[str, pl.DataType],
    window: LocalWindow,
    windowing: ActivityWindowing,
    stats: ReadStats | None = None,
) -> Iterator[pl.DataFrame]:
    """Every activity row in `window` (with repeats, left to the key), a day or less at a time.

    A page longer than asked fails the read, and so does a cursor that does not advance (which also catches a
    server that answers earlier pages again); all windows of the read share the ceilings of `windowing.limits`.
    """
    stats = stats if stats is not None else ReadStats()
    budget = _Budget(dataset, path, windowing.limits)
    windows = window.chunks(windowing.max_window)
    if windowing.concurrency > 1:
        windows = [part for day in windows for part in day.split(windowing.concurrency)]

    def read(part: LocalWindow) -> Iterator[pl.DataFrame]:
        return _read_window(client, dataset, path, schema, part, windowing, stats, budget)

    if windowing.concurrency <= 1:
        for part in windows:
            yield from read(part)
    else:
        yield from concurrently(windows, read, windowing.concurrency)


def _read_window(
    client: EsputnikClient,
    dataset: str,
    path: str,
    schema: Mapping[str, pl.DataType],
    window: LocalWindow,
    windowing: ActivityWindowing,
    stats: ReadStats,
    budget: _Budget,
) -> Iterator[pl.DataFrame]:
    start = window.start
    while True:
        current = LocalWindow(start, window.end)
        rows, cursor, latest, ordered = 0, None, None, True
        while True:
            params: dict[str, object] = {**current.query(), "maxrows": windowing.page_rows}
            if cursor is not None:
                params["offset"] = cursor
            budget.next_page()
            page = _parse(client, client.get(path, params, dataset=dataset), dataset, path, schema)
            if page.height > windowing.page_rows:
                raise PagingError(
                    f"{dataset}: GET {path} answered {page.height} rows for maxrows {windowing.page_rows} in "
                    f"{current}; the server is not honouring maxrows, so the cursor cannot be trusted"
                )
            budget.add_rows(page.height)
            stats.add(pages=1, rows=page.height)
            if page.height:
                times = _instants(page.get_column("activityDateTime"))
                follows = latest is None or times[0] >= latest
                ordered = ordered and not times.has_nulls() and times.is_sorted() and follows
                page_latest = times.max()
                if page_latest is not None and (latest is None or page_latest > latest):
                    latest = page_latest
                yield page
            if page.height < windowing.page_rows:
                stats.add(windows=1)
                return
            rows += page.height
            if rows >= windowing.window_row_limit:
                break
            answered = page.get_column("offset")[-1]
            last = int(answered) if answered is not None and answered.lstrip("-").isdigit() else None
            if last is None or (cursor is not None and last <= cursor):
                raise PagingError(
                    f"{dataset}: the activity cursor did not advance past offset {cursor} in {current}: the last "
                    f"row's offset is {answered!r}"
                )
            cursor = last
        stats.add(windows_split=1)
        resume = None if latest is None else latest.replace(microsecond=0)
        if ordered and resume is not None and current.start < resume < current.end:
            client.log.info("%s: window %s came back full; reading on from %s", dataset, current, resume)
            start = resume
            continue
        if current.length <= timedelta(seconds=1):
            raise PagingError(
                f"{dataset}: {windowing.window_row_limit} or more activities in the second {current.start}; "
                "raise activity_window_row_limit up to the server's cursor depth to read it"
            )
        client.log.info(
            "%s: window %s came back full and out of time order; reading it again in halves", dataset, current
        )
        for half in current.split(2):
            yield from _read_window(client, dataset, path, schema, half, windowing, stats, budget)
        return


def _instants(answer_times: pl.Series) -> pl.Series:
    """Answer times as instants: `...:33` and `...:33.000` are one instant, which their text does not sort as."""
    return answer_times.str.strptime(pl.Datetime("us"), ANSWER_DATETIME_FORMAT, strict=False)


def concurrently(
    items: Sequence[T], read: Callable[[T], Iterator[pl.DataFrame]], workers: int
) -> Iterator[pl.DataFrame]:
    """Run `read` over items in a few threads and yield their pages as they come; at most a few pages wait."""
    handoff: queue.Queue = queue.Queue(maxsize=workers * 2)
    stop = threading.Event()
    done = object()

    def hand_over(thing: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(thing, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work(item: T) -> None:
        try:
            for page in read(item):
                if not hand_over(page):
                    return
        except BaseException as exc:  # the consumer re-raises it
            hand_over(exc)
        finally:
            hand_over(done)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="esputnik-read") as pool:
        for item in items:
            pool.submit(work, item)
        remaining = len(items)
        try:
            while remaining:
                got = handoff.get()
                if got is done:
                    remaining -= 1
                elif isinstance(got, BaseException):
                    raise got
                else:
                    yield got
        finally:
            stop.set()
