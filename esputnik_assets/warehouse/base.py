"""What every warehouse does with a spooled read, independent of the engine: the semantics live here, SQL elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

import polars as pl

from esputnik_assets.contracts import DatasetContract
from esputnik_assets.source.extract import SpooledDataset
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.specs import DatasetSpec, WriteMode


class WarehouseError(RuntimeError):
    """A write the warehouse refused; the table is left as it was."""


class SuspiciousEmptyDayError(WarehouseError):
    """A read returned no rows for a day that holds rows: replacing it would wipe data, so the run stops."""


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

    @property
    def duplicates_dropped(self) -> int:
        return self.rows_staged - self.rows_written

    def as_metadata(self, write_mode: WriteMode) -> dict[str, object]:
        meta: dict[str, object] = {
            "rows_staged": self.rows_staged,
            "rows_written": self.rows_written,
            "duplicates_dropped": self.duplicates_dropped,
        }
        if write_mode is WriteMode.REPLACE_DAYS:
            return meta | {"rows_replaced": self.rows_replaced}
        return meta | {"rows_updated": self.rows_updated, "rows_inserted": self.rows_written - self.rows_updated}


def check_empty_days(dataset: str, days: Sequence[DayBounds], old: dict[int, int], new: dict[int, int]) -> None:
    """Refuse to replace a day that holds rows with an answer of none (an outage or a key switch, not a quiet day)."""
    wiped = [(days[i].day, count) for i, count in sorted(old.items()) if count and not new.get(i)]
    if wiped:
        listed = ", ".join(f"{day} ({count} rows)" for day, count in wiped)
        raise SuspiciousEmptyDayError(
            f"{dataset}: eSputnik returned no rows for {listed}, which the table already holds. The day was kept "
            "as it was. If the day really is empty now, rerun with allow_empty_days: true in the run config."
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

    def table(self, name: str) -> str: ...
