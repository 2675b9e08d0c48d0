"""One metric definition, two engines: SQL written once in BigQuery's dialect, run by the warehouse's own engine.

Why sqlglot rather than ibis-framework: a metric's formula is clearest as the SQL a user would write against the
tables, so the definition *is* that SQL and doubles as the asset's documentation. sqlglot is a single pure-Python
package with no dependencies (ibis-framework pulls sqlglot plus its own expression layer, and for BigQuery a
backend stack we already have through dagster-gcp), it parses BigQuery's dialect natively, and it is what the
BigQuery emulator itself uses to run BigQuery SQL on DuckDB, so whatever compiles here also runs in the tests'
emulated BigQuery. The definitions are project SQL (see `warehouse.sql`): BigQuery's dialect, named parameters
(``@day``, ``@start``, ...) bound by the driver, tables written ``raw.<dataset>`` / ``metrics.<metric>``; the
warehouse's engine (the same one that writes the raw tables) compiles, binds and runs them.

Each engine runs the compiled SELECT inside the warehouse and replaces one day of the metric table atomically:
DuckDB in one transaction (DELETE + INSERT), BigQuery in one multi-statement transaction, as the raw fact tables
are written. Only bounded results (one row per contact at most) ever reach Python. A metric table is ensured once
per engine (one step), not once per day.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import polars as pl

from esputnik_assets.column_types import COLUMN_TYPES
from esputnik_assets.contracts import load_contracts
from esputnik_assets.specs import DATASETS
from esputnik_assets.warehouse.duckdb import DuckDBWarehouse
from esputnik_assets.warehouse.sql import METRICS, Params, bigquery_type, bind, bq_quote, duckdb_type, quote

if TYPE_CHECKING:  # BigQuery's client is imported only where BigQuery is configured
    import duckdb

    from esputnik_assets.warehouse.bigquery import BigQueryWarehouse


@dataclass(frozen=True)
class MetricColumn:
    """A column of a metric table: its type, meaning, and the raw columns (dataset, column) that feed it."""

    name: str
    type: str
    description: str
    lineage: tuple[tuple[str, str], ...] = ()
    # A share in [0, 1] by its definition (its numerator counts a subset of its denominator's), null on a zero
    # denominator: the `rates_in_range` check holds it there. A ratio that may exceed 1 is not a rate.
    rate: bool = False


@dataclass(frozen=True)
class MetricTable:
    """The shape of one metric table; every metric table has a `date` column holding the day D it describes."""

    name: str
    columns: tuple[MetricColumn, ...]
    cluster_by: tuple[str, ...] = ()
    grain: tuple[str, ...] = ("date",)  # the columns one row is unique on (its key): checked on every table
    # Grain columns where null is a value of the key (contact_daily's orders row has no mediaType): unique, not checked
    # for nulls.
    nullable_grain: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: COLUMN_TYPES[c.type].polars for c in self.columns}


@dataclass
class QueryStats:
    """What the warehouse reported for the queries of one materialization (metadata)."""

    rows_written: int = 0
    bytes_processed: list[int] = field(default_factory=list)

    def add(self, other: QueryStats) -> None:
        self.rows_written += other.rows_written
        self.bytes_processed.extend(other.bytes_processed)


class MetricEngine(Protocol):
    """What a metric needs from a warehouse; DuckDB and BigQuery implement it with the same semantics."""

    def replace_day(self, table: MetricTable, sql: str, params: Params, day: date) -> QueryStats: ...

    def replace_day_from_frame(self, table: MetricTable, frame: pl.DataFrame, day: date) -> QueryStats: ...

    def fetch(self, sql: str, params: Params) -> tuple[pl.DataFrame, QueryStats]: ...

    def delete_before(self, table: MetricTable, day: date) -> int: ...

    def ensure_raw(self, datasets: Sequence[str]) -> None: ...


class DuckDBMetricEngine:
    """Metric tables in a second schema of the DuckDB file, through the raw tables' engine; one transaction per
    replaced day."""

    def __init__(self, warehouse: DuckDBWarehouse) -> None:
        self.warehouse, self.schema = warehouse, warehouse.schemas[METRICS]
        self.ensured: set[str] = set()

    def table(self, name: str) -> str:
        return f"{quote(self.schema)}.{quote(name)}"

    def _ensure(self, con: duckdb.DuckDBPyConnection, table: MetricTable) -> None:
        if table.name in self.ensured:
            return
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}")
        columns = ", ".join(f"{quote(c.name)} {duckdb_type(c.type)}" for c in table.columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS {self.table(table.name)} ({columns})")
        self.ensured.add(table.name)

    @contextlib.contextmanager
    def _day_transaction(self, table: MetricTable, day: date) -> Iterator[duckdb.DuckDBPyConnection]:
        """The day's old rows are deleted and the new ones inserted in one transaction, rolled back on failure."""
        with self.warehouse.connect() as con:
            self._ensure(con, table)
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"DELETE FROM {self.table(table.name)} WHERE {quote('date')} = $day", {"day": day})
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def replace_day(self, table: MetricTable, sql: str, params: Params, day: date) -> QueryStats:
        names = ", ".join(quote(n) for n in table.column_names)
        select = self.warehouse.compile(sql, params)
        with self._day_transaction(table, day) as con:
            written = con.execute(
                f"INSERT INTO {self.table(table.name)} ({names}) SELECT {names} FROM ({select}) AS m", bind(sql, params)
            ).fetchone()[0]
        return QueryStats(rows_written=int(written))

    def replace_day_from_frame(self, table: MetricTable, frame: pl.DataFrame, day: date) -> QueryStats:
        names = ", ".join(quote(n) for n in table.column_names)
        staged = frame.select(table.column_names).cast(table.polars_schema).to_arrow()
        with self._day_transaction(table, day) as con:
            con.register("staged_metric_rows", staged)
            written = con.execute(
                f"INSERT INTO {self.table(table.name)} ({names}) SELECT {names} FROM staged_metric_rows"
            ).fetchone()[0]
            con.unregister("staged_metric_rows")
        return QueryStats(rows_written=int(written))

    def fetch(self, sql: str, params: Params) -> tuple[pl.DataFrame, QueryStats]:
        return self.warehouse.frame(sql, params), QueryStats()

    def ensure_raw(self, datasets: Sequence[str]) -> None:
        """Raw tables a metric reads exist (empty) even before their first export, as the raw IO manager does."""
        for name in datasets:
            self.warehouse.ensure_table(DATASETS[name], load_contracts()[name])

    def delete_before(self, table: MetricTable, day: date) -> int:
        with self.warehouse.connect() as con:
            self._ensure(con, table)
            sql = f"DELETE FROM {self.table(table.name)} WHERE {quote('date')} < $day"
            return int(con.execute(sql, {"day": day}).fetchone()[0])


class BigQueryMetricEngine:
    """Metric tables in a second dataset, partitioned by `date`, through the raw tables' engine; a day is replaced
    in one BigQuery transaction."""

    def __init__(self, warehouse: BigQueryWarehouse) -> None:
        self.warehouse, self.dataset = warehouse, warehouse.schemas[METRICS]
        self.ensured: set[str] = set()

    def table_id(self, name: str) -> str:
        return f"{self.warehouse.project}.{self.dataset}.{name}"

    def table(self, name: str) -> str:
        return ".".join(bq_quote(p) for p in (self.warehouse.project, self.dataset, name))

    def ensure_table(self, table: MetricTable) -> None:
        """The dataset and the day-partitioned table, created on first use; once per engine."""
        from google.cloud import bigquery

        if table.name in self.ensured:
            return
        self.warehouse.ensure_dataset(self.dataset)
        schema = [
            bigquery.SchemaField(c.name, bigquery_type(c.type), description=c.description[:1024])
            for c in table.columns
        ]
        created = bigquery.Table(self.table_id(table.name), schema=schema)
        created.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="date")
        created.clustering_fields = list(table.cluster_by) or None
        self.warehouse.client.create_table(created, exists_ok=True)
        self.ensured.add(table.name)

    def _swap(self, table: MetricTable, select: str, params: Params, day: date) -> QueryStats:
        """THE atomic swap of one day: DELETE the day's partition and INSERT the new rows in one transaction."""
        self.ensure_table(table)
        names = ", ".join(bq_quote(n) for n in table.column_names)
        target = self.table(table.name)
        script = (
            "BEGIN TRANSACTION;\n"
            f"DELETE FROM {target} WHERE {bq_quote('date')} = @metric_day;\n"
            f"INSERT INTO {target} ({names}) SELECT {names} FROM ({select}) AS m;\n"
            "COMMIT TRANSACTION;"
        )
        job = self.warehouse.job(script, {**params, "metric_day": day})
        count = self.warehouse.job(
            f"SELECT COUNT(*) FROM {target} WHERE {bq_quote('date')} = @metric_day", {"metric_day": day}
        )
        rows = next(iter(count.result()))[0]
        return QueryStats(rows_written=int(rows), bytes_processed=[int(job.total_bytes_processed or 0)])

    def replace_day(self, table: MetricTable, sql: str, params: Params, day: date) -> QueryStats:
        return self._swap(table, self.warehouse.compile(sql, params), bind(sql, params), day)

    def replace_day_from_frame(self, table: MetricTable, frame: pl.DataFrame, day: date) -> QueryStats:
        """Load the bounded frame into a staging table (a load job), then swap the day from it."""
        from google.cloud import bigquery

        from esputnik_assets.warehouse.bigquery import STAGING_TTL

        self.ensure_table(table)
        client = self.warehouse.client
        staging_id = self.table_id(f"_staging_{table.name}_{uuid.uuid4().hex[:12]}")
        staging = bigquery.Table(staging_id, schema=[
            bigquery.SchemaField(c.name, bigquery_type(c.type)) for c in table.columns
        ])  # fmt: skip
        staging.expires = datetime.now(timezone.utc) + STAGING_TTL
        client.create_table(staging)
        try:
            config = bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                schema=staging.schema,
            )
            with tempfile.TemporaryDirectory(prefix="esputnik-metric-") as scratch:
                path = Path(scratch) / "rows.parquet"
                frame.select(table.column_names).cast(table.polars_schema).write_parquet(path)
                with open(path, "rb") as handle:
                    client.load_table_from_file(
                        handle, staging_id, job_config=config, location=self.warehouse.location
                    ).result()
            relation = ".".join(bq_quote(p) for p in staging_id.split("."))
            return self._swap(table, f"SELECT * FROM {relation}", {}, day)
        finally:
            client.delete_table(staging_id, not_found_ok=True)

    def fetch(self, sql: str, params: Params) -> tuple[pl.DataFrame, QueryStats]:
        frame, job = self.warehouse.frame_and_job(sql, params)
        return frame, QueryStats(bytes_processed=[int(job.total_bytes_processed or 0)])

    def ensure_raw(self, datasets: Sequence[str]) -> None:
        """Raw tables a metric reads exist (empty) even before their first export, as the raw IO manager does."""
        for name in datasets:
            self.warehouse.ensure_table(DATASETS[name], load_contracts()[name])

    def delete_before(self, table: MetricTable, day: date) -> int:
        self.ensure_table(table)
        job = self.warehouse.job(
            f"DELETE FROM {self.table(table.name)} WHERE {bq_quote('date')} < @cutoff", {"cutoff": day}
        )
        return int(job.num_dml_affected_rows or 0)
