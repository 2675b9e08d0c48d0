"""Readers for eSputnik's two paging styles; each yields parsed pages (polars frames) and never a whole day."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from esputnik_assets.shaping.parse import read_page
from esputnik_assets.source.client import EsputnikClient
from esputnik_assets.source.errors import PagingError
from esputnik_assets.source.windows import QUERY_FORMAT, LocalWindow

log = logging.getLogger(__name__)


@dataclass
class ReadStats:
    """What a read cost and found, for run metadata."""

    pages: int = 0
    rows: int = 0
    windows: int = 0
    windows_split: int = 0
    discarded_rows: int = 0  # rows of full windows that were re-read after a split

    def as_metadata(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items()}


def read_v1(
    client: EsputnikClient,
    dataset: str,
    path: str,
    schema: Mapping[str, pl.DataType],
    *,
    page_rows: int,
    params: Mapping[str, str] | None = None,
    stats: ReadStats | None = None,
) -> Iterator[pl.DataFrame]:
    """`startindex`/`maxrows` paging until a short (or empty) page; a repeated full page means the server ignores paging."""
    stats = stats if stats is not None else ReadStats()
    stats.windows += 1
    start, previous_digest = 1, b""
    while True:
        body = client.get(path, {**(params or {}), "startindex": start, "maxrows": page_rows})
        digest = hashlib.blake2b(body, digest_size=16).digest()
        page = read_page(body, dataset, schema)
        if page.height == page_rows and digest == previous_digest:
            raise PagingError(
                f"{dataset}: GET {path} returned the same full page for startindex {start - page_rows} and {start}; "
                "the server is not honouring startindex, so reading on would loop or duplicate rows"
            )
        stats.pages += 1
        stats.rows += page.height
        if page.height:
            yield page
        if page.height < page_rows:
            return
        start += page_rows
        previous_digest = digest


@dataclass
class ActivityWindowing:
    """How the activity endpoint is read: windows of at most a day, cursor pages, and a depth that splits a window.

    The live cursor is reported unreliable deep into a window and on windows over a day. A window whose rows reach
    `window_row_limit` "came back full": it is re-read in smaller windows sized from the density just seen
    (aiming at `target_fill` of the limit), so that a busy account pays for one full window per run, not per day.
    Sparse windows let the size grow back towards `max_window`.
    """

    max_window: timedelta = timedelta(days=1)
    window_row_limit: int = 50_000
    page_rows: int = 1000
    min_window: timedelta = timedelta(seconds=1)
    target_fill: float = 0.5


def read_activity(
    client: EsputnikClient,
    dataset: str,
    path: str,
    schema: Mapping[str, pl.DataType],
    window: LocalWindow,
    windowing: ActivityWindowing,
    stats: ReadStats | None = None,
) -> Iterator[pl.DataFrame]:
    """Every activity row in `window`, window by window with the `offset` cursor (duplicates are left to the key)."""
    stats = stats if stats is not None else ReadStats()
    pending = list(reversed(window.chunks(windowing.max_window)))
    size = windowing.max_window
    while pending:
        current = pending.pop()
        if current.length > size:
            parts = current.chunks(size)
            pending.extend(reversed(parts[1:]))
            current = parts[0]
        pages, full = _read_activity_window(client, dataset, path, schema, current, windowing, stats)
        rows = sum(p.height for p in pages)
        if not full:
            stats.windows += 1
            yield from pages
            if rows < windowing.window_row_limit * windowing.target_fill / 2:
                size = min(windowing.max_window, size * 2)
            continue
        if current.length <= windowing.min_window:
            raise PagingError(
                f"{dataset}: {windowing.window_row_limit} or more activities in the window {current.start}; "
                "raise window_row_limit (the server's cursor depth) to read it"
            )
        stats.windows_split += 1
        stats.discarded_rows += rows
        size = _size_after_full_window(pages, current, windowing)
        log.info("%s: window %s..%s came back full (%d rows); re-reading it in windows of %s",
                 dataset, current.start, current.end, rows, size)
        pending.extend(reversed(current.chunks(size)))


def _size_after_full_window(pages: list[pl.DataFrame], window: LocalWindow, windowing: ActivityWindowing) -> timedelta:
    """The window length that should hold `target_fill` of the limit, judged by the time the full window's rows span."""
    latest = pl.concat([p.select("activityDateTime") for p in pages]).get_column("activityDateTime").max()
    covered = window.length
    if isinstance(latest, str):
        try:
            seen_until = datetime.strptime(latest[:19], QUERY_FORMAT)
            if window.start < seen_until <= window.end:
                covered = seen_until - window.start
        except ValueError:
            pass
    seconds = min(covered.total_seconds() * windowing.target_fill, window.length.total_seconds() / 2)
    return max(windowing.min_window, timedelta(seconds=max(1, int(seconds))))


def _read_activity_window(
    client: EsputnikClient,
    dataset: str,
    path: str,
    schema: Mapping[str, pl.DataType],
    window: LocalWindow,
    windowing: ActivityWindowing,
    stats: ReadStats,
) -> tuple[list[pl.DataFrame], bool]:
    """One window's pages, or (pages so far, True) once it reaches the row limit and must be split."""
    pages: list[pl.DataFrame] = []
    rows, cursor = 0, None
    while True:
        params: dict[str, object] = {**window.query(), "maxrows": windowing.page_rows}
        if cursor is not None:
            params["offset"] = cursor
        page = read_page(client.get(path, params), dataset, schema)
        stats.pages += 1
        stats.rows += page.height
        if page.height:
            pages.append(page)
            rows += page.height
        if rows >= windowing.window_row_limit:
            return pages, True
        if page.height < windowing.page_rows:
            return pages, False
        last = page.get_column("offset")[-1]
        if last is None or (cursor is not None and int(last) <= cursor):
            raise PagingError(f"{dataset}: the activity cursor did not advance past offset {cursor} in {window}")
        cursor = int(last)
