"""What every warehouse does with a spooled read, independent of the engine: the semantics live here, SQL elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import duckdb
import polars as pl

from esputnik_assets.contracts import Column, DatasetContract
from esputnik_assets.spool import SEQ_COLUMN, SpooledDataset
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.specs import DATASETS, DatasetSpec, WriteMode
from esputnik_assets.warehouse.sql import RAW, Params, latest_per_key, quote


class WarehouseError(RuntimeError):
    """A write the warehouse refused; the table is left as it was."""


class MixedSourceError(WarehouseError):
    """Rows of the demo account and of a live account would end up in one table."""


class SchemaConflictError(WarehouseError):
    """An existing column's type differs from the contract; rewriting it could lose data."""


@dataclass(frozen=True)
class DayBounds:
    """One local day of the account and the UTC instants it spans."""

    day: date
    start: datetime
    end: datetime


def day_bounds(window: LocalWindow, timezone: str) -> list[DayBounds]:
    out = []
    for day in window.days():
        start, end = LocalWindow.for_days(day, day + timedelta(days=1)).utc_bounds(timezone)
        out.append(DayBounds(day, start, end))
    return out


@dataclass(frozen=True)
class WriteResult:
    """What a write did, as run metadata."""

    rows_staged: int
    rows_written: int
    rows_replaced: int = 0  # rows of the replaced days before the write (facts)
    rows_updated: int = 0  # existing keys whose row was replaced (entities)
    # (day, rows read for it, rows it holds after the write): facts only, one entry per replaced day
    per_day: tuple[tuple[date, int, int], ...] = ()
    table_rows: int = 0  # rows the table holds after the write, counted by the write itself

    @property
    def duplicates_dropped(self) -> int:
        return self.rows_staged - self.rows_written

    def as_metadata(self, write_mode: WriteMode) -> dict[str, object]:
        """The run's figures, `run_`-prefixed: in a range run every partition carries them, so they are never summed."""
        meta: dict[str, object] = {
            "run_rows_staged": self.rows_staged,
            "run_rows_written": self.rows_written,
            "run_duplicates_dropped": self.duplicates_dropped,
        }
        if write_mode is WriteMode.REPLACE_DAYS:
            return meta | {"run_rows_replaced": self.rows_replaced}
        return meta | {"run_rows_updated": self.rows_updated, "run_rows_inserted": self.rows_written - self.rows_updated}


def per_day(days: Sequence[DayBounds], staged: dict[int, int], written: dict[int, int]) -> tuple[tuple[date, int, int], ...]:
    """Figures of each replaced day, from the day counts the write already takes (staged, then in the table)."""
    return tuple((d.day, staged.get(i, 0), written.get(i, 0)) for i, d in enumerate(days))


HISTORY_DAYS = 7  # the stored days before a re-read day it is also judged against


@dataclass(frozen=True)
class DayGuard:
    """How a re-read day is judged before it replaces the stored one, and what the run confirmed."""

    history: tuple[DayBounds, ...] = ()  # the HISTORY_DAYS before the first replaced day
    max_day_drop: float = 0.5  # a day read this much (relative) below both its stored rows and their trailing mean
    allow_empty_days: bool = False  # the run confirms that days which held rows are empty now
    allow_smaller_days: bool = False  # the run confirms that days which held rows really shrank


@dataclass(frozen=True)
class DayVerdict:
    """One replaced day: rows stored, rows read, the stored trailing mean, and the fewest rows the read may bring."""

    day: date
    stored: int
    read: int
    trailing_mean: float | None
    floor: float  # a read under this many rows (and not empty) is refused unless confirmed

    @property
    def empty(self) -> bool:
        return self.stored > 0 and self.read == 0

    @property
    def smaller(self) -> bool:
        return self.stored > 0 and 0 < self.read < self.floor

    def as_metadata(self) -> dict[str, object]:
        mean = None if self.trailing_mean is None else round(self.trailing_mean, 1)
        return {"day": self.day.isoformat(), "stored": self.stored, "read": self.read, "trailing_mean": mean,
                "refused_below": round(self.floor, 1)}  # fmt: skip


def day_verdicts(
    days: Sequence[DayBounds], guard: DayGuard, stored: dict[date, int], read: dict[date, int]
) -> list[DayVerdict]:
    """Each replaced day against the stored one and the stored trailing mean: the ratio (1 - max_day_drop) of the
    larger of the two is its floor, so a day stored as an outlier may come back to normal."""
    ratio, verdicts = 1 - guard.max_day_drop, []
    for bounds in days:
        earlier = [stored.get(bounds.day - timedelta(days=i), 0) for i in range(1, HISTORY_DAYS + 1)]
        loaded = [n for n in earlier if n]  # days never loaded are unknown, not zero
        mean = sum(loaded) / len(loaded) if loaded else None
        held = stored.get(bounds.day, 0)
        floor = ratio * (held if mean is None else min(held, mean))
        verdicts.append(DayVerdict(bounds.day, held, read.get(bounds.day, 0), mean, floor))
    return verdicts


class RefusedDaysError(WarehouseError):
    """A read that would replace stored days with none or far fewer rows; the days were kept as they were."""

    option = ""  # the run config option that confirms this refusal
    confirms = ""  # what the run states by setting it

    def __init__(self, dataset: str, finding: str, verdicts: Sequence[DayVerdict], kept_at: str | None = None) -> None:
        self.dataset, self.finding, self.verdicts, self.kept_at = dataset, finding, tuple(verdicts), kept_at
        kept = f" The rows read are kept for inspection in {kept_at}." if kept_at else ""
        super().__init__(
            f"{dataset}: {finding} The days were kept as they were.{kept} If {self.confirms}, rerun with this run "
            f"config:\n{confirm_config(dataset, self.option)}"
        )

    def kept_in(self, where: str | None) -> RefusedDaysError:
        """The same refusal, saying where the refused rows can be inspected."""
        return type(self)(self.dataset, self.finding, self.verdicts, where)


class SuspiciousEmptyDayError(RefusedDaysError):
    """A read returned no rows for a day that holds rows: replacing it would wipe data, so the run stops."""

    option, confirms = "allow_empty_days", "the days really are empty now"


class SmallerDayError(RefusedDaysError):
    """A read returned far fewer rows for a day than it holds (a partial answer): replacing it would lose rows."""

    option, confirms = "allow_smaller_days", "the days really shrank"


def confirm_config(dataset: str, option: str) -> str:
    """The run config that confirms a refused write, as it is pasted into the launchpad (the op is the source's)."""
    return f"ops:\n  esputnik_{DATASETS[dataset].source.name}:\n    config:\n      {option}: true"


def refuse_days(dataset: str, verdicts: Sequence[DayVerdict], guard: DayGuard) -> None:
    """Refuse to replace a day that holds rows with none (an outage or a key switch, not a quiet day) or with a
    partial answer, unless the run confirms it."""
    empty = [v for v in verdicts if v.empty] if not guard.allow_empty_days else []
    if empty:
        listed = ", ".join(f"{v.day} ({v.stored} rows)" for v in empty)
        finding = f"eSputnik returned no rows for {listed}, which the table already holds."
        raise SuspiciousEmptyDayError(dataset, finding, empty)
    smaller = [v for v in verdicts if v.smaller] if not guard.allow_smaller_days else []
    if smaller:
        listed = "; ".join(
            f"{v.day}: {v.read} rows read, {v.stored} stored"
            + (f", trailing {HISTORY_DAYS}-day mean {v.trailing_mean:.0f}" if v.trailing_mean is not None else "")
            + f" (refused below {v.floor:.0f})"
            for v in smaller
        )
        raise SmallerDayError(
            dataset,
            f"eSputnik answered far fewer rows than the table holds, more than {guard.max_day_drop:.0%} below the "
            f"stored day and its trailing mean (ESPUTNIK_CHECK_MAX_DAY_DROP): {listed}.",
            smaller,
        )


def by_day(bounds: Sequence[DayBounds], counts: dict[int, int]) -> dict[date, int]:
    """Day counts keyed by position in `bounds` (as the warehouses query them), keyed by day."""
    return {bounds[i].day: n for i, n in counts.items()}


SPOOL_MEMORY_LIMIT = "64MB"  # what a query over a spooled read may hold; DuckDB spills beyond it


def _spool_row(sql: str, spooled: SpooledDataset, params: dict[str, object]) -> tuple:
    """The one row a query over a spooled read's Parquet files (`spool`) answers, by an in-memory DuckDB under a
    small memory limit: it streams the files and hands its memory back when it closes (polars' allocator keeps what
    a scan of a large day used for the rest of the step)."""
    with duckdb.connect(config={"memory_limit": SPOOL_MEMORY_LIMIT, "threads": 1}) as con:
        return con.execute(sql.format(spool="read_parquet($files)"), {"files": [str(p) for p in spooled.parts]}
                           | params).fetchone()  # fmt: skip


def spooled_day_counts(spooled: SpooledDataset, column: str, days: Sequence[DayBounds]) -> dict[date, int]:
    """Rows of a spooled read per day, counted from its Parquet files (one column scanned)."""
    if not spooled.rows:
        return {}
    counts = ", ".join(f"count(*) FILTER (WHERE {quote(column)} >= $s{i} AND {quote(column)} < $e{i})"
                       for i in range(len(days)))  # fmt: skip
    params = {f"{edge}{i}": bound for i, d in enumerate(days) for edge, bound in (("s", d.start), ("e", d.end))}
    row = _spool_row(f"SELECT {counts} FROM {{spool}}", spooled, params)
    return {d.day: int(n) for d, n in zip(days, row)}


def spooled_repeats(spooled: SpooledDataset, key: Sequence[str]) -> int:
    """Rows of a spooled read that the write will drop as repeats: those whose arrival number is not the latest of
    any key (the write's own rule, `sql.latest_per_key`), counted from its Parquet files."""
    if not spooled.rows:
        return 0
    kept = _spool_row(f"SELECT count(*) FROM {{spool}} {latest_per_key('{spool}', key, SEQ_COLUMN)}", spooled, {})
    return spooled.rows - int(kept[0])


def judge_before_write(
    warehouse: Warehouse, spec: DatasetSpec, contract: DatasetContract, spooled: SpooledDataset,
    days: Sequence[DayBounds], guard: DayGuard,
) -> list[DayVerdict]:
    """The verdicts the write itself will reach (it judges again inside its transaction), so a run can refuse
    before it writes anything; a refused read is kept for inspection."""
    bounds = [*guard.history, *days]
    stored = by_day(bounds, warehouse.day_counts(spec, bounds))
    verdicts = day_verdicts(days, guard, stored, spooled_day_counts(spooled, spec.partition_column, days))
    try:
        refuse_days(contract.name, verdicts, guard)
    except RefusedDaysError as refusal:
        raise refusal.kept_in(warehouse.keep_refused(contract, spooled)) from None
    return verdicts


@dataclass(frozen=True)
class TableRead:
    """Rows of one table to read: a raw table (typed by its contract) or a metric table, within bounds on a column
    (UTC instants of an event time, or the days of a metric table's `date`); all rows without bounds."""

    name: str
    within: str = RAW  # RAW or METRICS (see warehouse.sql)
    contract: DatasetContract | None = None
    column: str | None = None
    bounds: tuple[date | datetime, date | datetime] | None = None


SOURCES = ("demo", "live")  # what a table's rows came from, recorded on the table when it is first written


def guard_source(warehouse: Warehouse, dataset: str, incoming: str) -> None:
    """Refuse to mix demo and live rows in one table; record the source of a table on its first write.

    A table written before sources were recorded is taken as live when it holds rows: demo rows never go into it.
    """
    if incoming not in SOURCES:
        raise ValueError(f"unknown source {incoming!r}")
    recorded = warehouse.source_of(dataset)
    held = f"{recorded}-account rows"
    if recorded is None and incoming == "demo" and warehouse.row_count(dataset):
        recorded, held = "live", "rows of unknown origin (written before sources were recorded)"
    if recorded is None:
        warehouse.record_source(dataset, incoming)
    elif recorded != incoming:
        raise MixedSourceError(
            f"{dataset}: {warehouse.table(dataset)} holds {held}, and this run read the {incoming} account; the table was not changed. Use another DuckDB file or "
            "dataset for the demo account (ESPUTNIK_DUCKDB_PATH / ESPUTNIK_DATASET), or drop the table if its rows "
            "should go."
        )


class Warehouse(Protocol):
    """The operations the IO manager needs; DuckDB and BigQuery implement them with the same semantics."""

    def ensure_table(self, spec: DatasetSpec, contract: DatasetContract) -> None: ...

    def replace_days(
        self, spec: DatasetSpec, contract: DatasetContract, spooled: SpooledDataset, days: Sequence[DayBounds],
        guard: DayGuard,
    ) -> WriteResult: ...

    def day_counts(self, spec: DatasetSpec, bounds: Sequence[DayBounds]) -> dict[int, int]: ...

    def keep_refused(self, contract: DatasetContract, spooled: SpooledDataset) -> str | None: ...

    def upsert(self, spec: DatasetSpec, contract: DatasetContract, spooled: SpooledDataset) -> WriteResult: ...

    def read(self, rows: TableRead) -> pl.DataFrame: ...

    def spill(self, rows: TableRead, path: Path) -> None: ...

    def row_count(self, name: str) -> int: ...

    def preview(self, name: str, rows: int) -> list[dict[str, object]]: ...

    def query(self, sql: str, params: Params | None = None) -> list[dict[str, object]]: ...

    def frame(self, sql: str, params: Params | None = None) -> pl.DataFrame: ...

    def stored_columns(self, name: str) -> list[tuple[str, str]]: ...

    def column_type(self, column: Column) -> str: ...

    def source_of(self, name: str) -> str | None: ...

    def record_source(self, name: str, source: str) -> None: ...

    def table(self, name: str) -> str: ...
