"""What every warehouse does with a spooled read, independent of the engine: the semantics live here, SQL elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

import polars as pl

from esputnik_assets.contracts import Column, DatasetContract
from esputnik_assets.source.extract import SpooledDataset
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.specs import DatasetSpec, WriteMode


class WarehouseError(RuntimeError):
    """A write the warehouse refused; the table is left as it was."""


class SuspiciousEmptyDayError(WarehouseError):
    """A read returned no rows for a day that holds rows: replacing it would wipe data, so the run stops."""


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


def check_empty_days(dataset: str, days: Sequence[DayBounds], old: dict[int, int], new: dict[int, int]) -> None:
    """Refuse to replace a day that holds rows with an answer of none (an outage or a key switch, not a quiet day)."""
    wiped = [(days[i].day, count) for i, count in sorted(old.items()) if count and not new.get(i)]
    if wiped:
        listed = ", ".join(f"{day} ({count} rows)" for day, count in wiped)
        raise SuspiciousEmptyDayError(
            f"{dataset}: eSputnik returned no rows for {listed}, which the table already holds. The day was kept "
            "as it was. If the day really is empty now, rerun with allow_empty_days: true in the run config."
        )


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
        allow_empty_days: bool,
    ) -> WriteResult: ...

    def upsert(self, spec: DatasetSpec, contract: DatasetContract, spooled: SpooledDataset) -> WriteResult: ...

    def read(
        self, contract: DatasetContract, column: str | None, bounds: tuple[datetime, datetime] | None
    ) -> pl.DataFrame: ...

    def row_count(self, name: str) -> int: ...

    def query(self, sql: str, params: dict[str, object] | None = None) -> list[dict[str, object]]: ...

    def stored_columns(self, name: str) -> list[tuple[str, str]]: ...

    def column_type(self, column: Column) -> str: ...

    def source_of(self, name: str) -> str | None: ...

    def record_source(self, name: str, source: str) -> None: ...

    def table(self, name: str) -> str: ...
