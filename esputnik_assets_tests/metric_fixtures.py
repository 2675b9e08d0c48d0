"""Hand-built raw tables in either warehouse and a metric resource over them, for the metric tests on both engines."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from google.cloud import bigquery

from esputnik_assets.contracts import load_contracts
from esputnik_assets.metrics.assets import compute_days
from esputnik_assets.metrics.catalog import Metric
from esputnik_assets.metrics.resource import BigQueryMetricsWarehouse, DuckDBMetricsWarehouse, MetricsWarehouse
from esputnik_assets.specs import DATASETS
from esputnik_assets.warehouse.bigquery import BigQueryWarehouse, schema_field
from esputnik_assets.warehouse.bigquery_resource import EsputnikBigQueryResource
from esputnik_assets.warehouse.duckdb import DuckDBWarehouse
from esputnik_assets.warehouse.sql import column_list

TZ = "Europe/Kyiv"  # UTC+2 in winter: local days differ from UTC days
_names = itertools.count()


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """The UTC instant of a local time of the account."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(TZ)).astimezone(timezone.utc)


def raw_frame(dataset: str, rows: Sequence[dict]) -> pl.DataFrame:
    """Rows of a raw table: the given fields, every other contract column null, typed by the contract."""
    contract = load_contracts()[dataset]
    schema = contract.polars_schema
    data = {name: [row.get(name) for row in rows] for name in contract.column_names}
    if "groupId" in data:
        data["groupId"] = [value or [] for value in data["groupId"]]
    return pl.DataFrame(data, schema=schema)


@dataclass
class MetricBench:
    """Raw tables and a metric resource on one engine; `run` computes a metric for a day, `table` reads it back."""

    engine: str
    warehouse: MetricsWarehouse
    client: bigquery.Client | None = None

    def load(self, dataset: str, rows: Sequence[dict]) -> None:
        frame = raw_frame(dataset, rows)
        spec, contract = DATASETS[dataset], load_contracts()[dataset]
        if isinstance(self.warehouse, DuckDBMetricsWarehouse):
            raw = DuckDBWarehouse(self.warehouse.path, self.warehouse.raw_dataset)
            raw.ensure_table(spec, contract)
            with raw.connect() as con:
                con.register("rows", frame.to_arrow())
                names = column_list(contract.column_names)
                con.execute(f"INSERT INTO {raw.table(dataset)} ({names}) SELECT {names} FROM rows")
            return
        assert self.client is not None
        raw_bq = BigQueryWarehouse(self.client, self.warehouse.raw_dataset)
        raw_bq.ensure_table(spec, contract)
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            schema=[schema_field(c) for c in contract.columns],
        )
        config.parquet_options = bigquery.ParquetOptions()
        config.parquet_options.enable_list_inference = True
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "rows.parquet"
            frame.write_parquet(path)
            with open(path, "rb") as handle:
                self.client.load_table_from_file(handle, raw_bq.table_id(dataset), job_config=config).result()

    def run(self, metric: Metric, *days: date) -> dict:
        """Compute the metric for the days, in order, as one asset run does; the last day's extra metadata."""
        with self.warehouse.open() as engine:
            _, extra = compute_days(metric, engine, self.warehouse, days, lambda message: None)
        return extra[days[-1]]

    def table(self, metric: Metric) -> pl.DataFrame:
        """The metric table, typed by its declaration and sorted, so both engines' copies compare equal."""
        with self.warehouse.open() as engine:
            frame, _ = engine.fetch(f"SELECT * FROM metrics.{metric.name}", {})
        frame = frame.select(metric.table.column_names).cast(metric.table.polars_schema)
        return frame.sort(frame.columns, nulls_last=True)

    def rows(self, metric: Metric, day: date | None = None) -> list[dict]:
        frame = self.table(metric)
        if day is not None:
            frame = frame.filter(pl.col("date") == day)
        return frame.to_dicts()


def make_bench(engine: str, request: pytest.FixtureRequest, tmp_path: Path, **settings: object) -> MetricBench:
    n = next(_names)
    if engine == "bigquery":
        emulator = request.getfixturevalue("bq_emulator")
        resource = EsputnikBigQueryResource(project=emulator.project, emulator_host=emulator.host)
        warehouse: MetricsWarehouse = BigQueryMetricsWarehouse(
            bigquery=resource, timezone=TZ, raw_dataset=f"raw_{n}", metrics_dataset=f"metrics_{n}", **settings
        )
        return MetricBench(engine, warehouse, emulator.client())
    warehouse = DuckDBMetricsWarehouse(path=str(tmp_path / f"metrics{n}.duckdb"), timezone=TZ, **settings)
    return MetricBench(engine, warehouse)


@pytest.fixture(params=("duckdb", pytest.param("bigquery", marks=pytest.mark.slow)))
def engine_name(request) -> Iterator[str]:
    yield request.param
