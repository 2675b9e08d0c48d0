"""The warehouse IO manager: raw assets hand it spooled reads to write; downstream assets (the project's or a
user's) get a partition's rows of a raw or metric table back as polars frames."""

from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import polars as pl
from pydantic import Field

from esputnik_assets.contracts import load_contracts
from esputnik_assets.run_policy import NOT_RETRYABLE, final_failure
from esputnik_assets.spool import SpooledDataset
from esputnik_assets.source.windows import LocalWindow
from esputnik_assets.specs import DATASETS, WriteMode
from esputnik_assets.warehouse.base import (
    HISTORY_DAYS,
    DayBounds,
    DayGuard,
    TableRead,
    Warehouse,
    WriteResult,
    day_bounds,
    guard_source,
    judge_before_write,
)
from esputnik_assets.warehouse.bigquery_resource import EsputnikBigQueryResource
from esputnik_assets.warehouse.duckdb import DuckDBWarehouse
from esputnik_assets.warehouse.sql import METRICS, METRICS_SCHEMA

if TYPE_CHECKING:  # BigQuery's client is imported only where BigQuery is configured
    from esputnik_assets.warehouse.bigquery import BigQueryWarehouse


PREVIEW_ROWS = 5


def _days_table(per_day: tuple[tuple[date, int, int], ...]) -> dg.TableMetadataValue:
    """Day, rows read, rows written: the range run's figures at a glance."""
    return dg.MetadataValue.table(
        records=[dg.TableRecord({"day": d.isoformat(), "rows_read": r, "rows_written": w}) for d, r, w in per_day],
        schema=dg.TableSchema(
            columns=[dg.TableColumn("day", "string"), dg.TableColumn("rows_read", "int"), dg.TableColumn("rows_written", "int")]
        ),
    )


def _markdown(rows: list[dict[str, object]]) -> str:
    """A few rows as a Markdown table (long values cut), for the asset page."""
    if not rows:
        return "(no rows)"
    names = list(rows[0])

    def cell(value: object) -> str:
        text = "" if value is None else str(value)
        return (text[:40] + "…" if len(text) > 40 else text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(cell(row[n]) for n in names) + " |" for row in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class Written:
    """What one write did, and the table after it: the output's figures."""

    result: WriteResult
    extra: dict[str, object]  # figures of the write mode (the days replaced)
    preview: list[dict[str, object]]


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Engine-independent part: replace-by-day or upsert by the dataset's spec, metadata, partition-aware reads."""

    metrics_dataset: str = Field(
        default=METRICS_SCHEMA, description="Schema / dataset of the metric tables, read by `load_input`"
    )

    def open_warehouse(self) -> contextlib.AbstractContextManager[Warehouse]:
        raise NotImplementedError

    def location(self) -> str:
        raise NotImplementedError

    def day_guard(self, obj: SpooledDataset) -> tuple[list[DayBounds], DayGuard]:
        """The local days a fact read replaces, and how they are judged against the stored ones."""
        assert obj.window is not None, f"{obj.dataset} is replaced by day and needs its window"
        days = day_bounds(obj.window, obj.timezone)  # the zone the read was cut in: the partitions'
        first = days[0].day
        history = day_bounds(LocalWindow.for_days(first - timedelta(days=HISTORY_DAYS), first), obj.timezone)
        return days, DayGuard(tuple(history), obj.max_day_drop, obj.allow_empty_days, obj.allow_smaller_days)

    def judge(self, obj: SpooledDataset) -> None:
        """Raise what the write would refuse (a changed column type, a mix of demo and live rows, stored days
        answered with none or far fewer rows), before anything is written; the write judges again, atomically."""
        spec, contract = DATASETS[obj.dataset], load_contracts()[obj.dataset]
        with self.open_warehouse() as warehouse:
            warehouse.ensure_table(spec, contract)
            guard_source(warehouse, obj.dataset, obj.source)
            if spec.write_mode is WriteMode.REPLACE_DAYS:
                judge_before_write(warehouse, spec, contract, obj, *self.day_guard(obj))

    def write(self, obj: SpooledDataset) -> Written:
        """One spooled read into its table through one warehouse (on DuckDB one connection): the table ensured
        once, the source guarded, the days swapped or the keys upserted, then the table's figures for the page."""
        spec, contract = DATASETS[obj.dataset], load_contracts()[obj.dataset]
        try:
            with self.open_warehouse() as warehouse:
                warehouse.ensure_table(spec, contract)
                guard_source(warehouse, obj.dataset, obj.source)
                if spec.write_mode is WriteMode.REPLACE_DAYS:
                    days, guard = self.day_guard(obj)
                    result = warehouse.replace_days(spec, contract, obj, days, guard)
                    replaced = f"{days[0].day} .. {days[-1].day}" if len(days) > 1 else str(days[0].day)
                    extra = {"days_replaced": replaced, "run_out_of_window_rows": obj.out_of_window_rows}
                else:
                    result, extra = warehouse.upsert(spec, contract, obj), {}
                return Written(result, extra, warehouse.preview(obj.dataset, PREVIEW_ROWS))
        finally:
            obj.discard()

    def handle_output(self, context: dg.OutputContext, obj: SpooledDataset) -> None:
        if not isinstance(obj, SpooledDataset):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a spooled read, got {type(obj).__name__}")
        began = time.monotonic()
        try:
            written = self.write(obj)
        except NOT_RETRYABLE as refusal:  # judged before, so only a write that came between gets here
            raise final_failure(context.step_context.instance, context.run_id, str(refusal)) from refusal
        result = written.result
        for day, read, held in result.per_day:  # each partition of a range run gets its own day's figures
            context.step_context.add_asset_metadata(
                {"rows_read": read, "rows_written": held, "dagster/partition_row_count": held},
                asset_key=context.asset_key,
                partition_key=day.isoformat(),
            )
        context.add_output_metadata(
            result.as_metadata(DATASETS[obj.dataset].write_mode)
            | written.extra
            | ({"run_days": _days_table(result.per_day)} if len(result.per_day) > 1 else {})
            | {
                "table": f"{self.location()}.{obj.dataset}",
                "run_seconds_writing": round(time.monotonic() - began, 3),
                "dagster/row_count": result.table_rows,
                "preview": dg.MetadataValue.md(_markdown(written.preview)),
            }
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame | pl.LazyFrame:
        """The partition's rows of a raw or metric table (all rows of an entity table) as a polars DataFrame; as a
        LazyFrame over a Parquet copy the warehouse writes page by page when the input is annotated `pl.LazyFrame`,
        so a large day is never held whole in memory."""
        rows = self._table_read(context)
        with self.open_warehouse() as warehouse:
            if context.dagster_type.typing_type is pl.LazyFrame:
                path = _input_folder() / f"{rows.name}-{uuid.uuid4().hex[:12]}.parquet"
                warehouse.spill(rows, path)
                frame: pl.DataFrame | pl.LazyFrame = pl.scan_parquet(path)
            else:
                frame = warehouse.read(rows)
        return frame.cast(dict(rows.contract.polars_schema)) if rows.contract is not None else frame

    def _table_read(self, context: dg.InputContext) -> TableRead:
        """A raw table (by its dataset name) or a metric table, bounded to the input's partitions when it has them."""
        name = context.asset_key.path[-1]
        window = context.asset_partitions_time_window if context.has_asset_partitions else None
        if name not in DATASETS:  # a metric table: its `date` column holds the partition's local day
            bounds = (window.start.date(), window.end.date()) if window else None
            return TableRead(name, METRICS, column="date" if window else None, bounds=bounds)
        spec, contract = DATASETS[name], load_contracts()[name]
        if spec.write_mode is not WriteMode.REPLACE_DAYS or window is None:
            return TableRead(name, contract=contract)
        bounds = window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc)
        return TableRead(name, contract=contract, column=spec.partition_column, bounds=bounds)


@functools.cache
def _input_folder() -> Path:
    """Where LazyFrame inputs are spilled: one folder per process, removed when the process ends."""
    folder = Path(tempfile.mkdtemp(prefix="esputnik-input-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


class DuckDBIOManager(WarehouseIOManager):
    """The embedded default: a local DuckDB file (no credentials, no server)."""

    path: str = Field(default="data/warehouse.duckdb", description="DuckDB file (ESPUTNIK_DUCKDB_PATH)")
    dataset: str = Field(default="esputnik", description="Schema of the nine tables (ESPUTNIK_DATASET)")
    memory_limit: str = Field(
        default="48MB", description="DuckDB's memory limit; larger writes and reads spill to disk beyond it"
    )

    @contextlib.contextmanager
    def open_warehouse(self) -> Iterator[DuckDBWarehouse]:
        warehouse = DuckDBWarehouse(
            self.path, self.dataset, metrics_schema=self.metrics_dataset, memory_limit=self.memory_limit,
            log=dg.get_dagster_logger("esputnik_assets"),
        )  # fmt: skip
        with warehouse.connect():  # one connection for all it does (a write, a step's checks)
            yield warehouse

    def location(self) -> str:
        return f"{self.path}:{self.dataset}"


class BigQueryIOManager(WarehouseIOManager):
    """Production: one BigQuery dataset, credentials and client handled by dagster-gcp's BigQueryResource."""

    bigquery: EsputnikBigQueryResource
    dataset: str = Field(default="esputnik", description="BigQuery dataset of the nine tables (ESPUTNIK_DATASET)")

    @contextlib.contextmanager
    def open_warehouse(self, deadline: float | None = None) -> Iterator[BigQueryWarehouse]:
        """The engine of the writes; `deadline` bounds each of its API calls (the doctor's probe)."""
        from esputnik_assets.warehouse.bigquery import BigQueryWarehouse  # BigQuery's client only when configured

        with self.bigquery.get_client() as client:
            yield BigQueryWarehouse(client, self.dataset, self.bigquery.location, self.metrics_dataset, deadline)

    def location(self) -> str:
        return f"{self.bigquery.project}.{self.dataset}"
