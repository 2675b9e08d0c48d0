"""One metric definition, two engines: SQL written once in BigQuery's dialect, compiled by sqlglot for each warehouse.

Why sqlglot rather than ibis-framework: a metric's formula is clearest as the SQL a user would write against the
tables, so the definition *is* that SQL and doubles as the asset's documentation. sqlglot is a single pure-Python
package with no dependencies (ibis-framework pulls sqlglot plus its own expression layer, and for BigQuery a
backend stack we already have through dagster-gcp), it parses BigQuery's dialect natively, and it is what the
BigQuery emulator itself uses to run BigQuery SQL on DuckDB, so whatever compiles here also runs in the tests'
emulated BigQuery. The definitions use BigQuery's dialect (the production engine) and only its named parameters
(``@day``, ``@start``, ...): values are always bound by the driver (DuckDB ``$name``, BigQuery query parameters),
never formatted into the text. Table names are written ``raw.<dataset>`` / ``metrics.<metric>`` and rewritten in
the syntax tree to the configured, quoted schema or dataset.

Each engine runs the compiled SELECT inside the warehouse and replaces one day of the metric table atomically:
DuckDB in one transaction (DELETE + INSERT), BigQuery in one multi-statement transaction, as the raw fact tables
are written. Only bounded results (one row per contact at most) ever reach Python.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Protocol

import duckdb
import polars as pl
import sqlglot
from google.cloud import bigquery
from sqlglot import exp

from esputnik_assets.contracts import load_contracts
from esputnik_assets.specs import DATASETS
from esputnik_assets.warehouse.bigquery import STAGING_TTL, BigQueryWarehouse, bq_quote
from esputnik_assets.warehouse.duckdb import DuckDBWarehouse
from esputnik_assets.warehouse.sql import quote

SOURCE_DIALECT = "bigquery"
RAW, METRICS = "raw", "metrics"  # the schema names metric SQL is written against
INLINED = ("tz",)  # parameters compiled into the text as escaped literals (see compile_sql)
_DUCKDB_TYPES = {"date": "DATE", "int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "timestamp": "TIMESTAMPTZ"}
_BIGQUERY_TYPES = {"date": "DATE", "int": "INT64", "float": "FLOAT64", "string": "STRING", "timestamp": "TIMESTAMP"}
_POLARS_TYPES = {
    "date": pl.Date, "int": pl.Int64, "float": pl.Float64, "string": pl.String,
    "timestamp": pl.Datetime("us", "UTC"),
}  # fmt: skip
Params = Mapping[str, date | datetime | int | float | str]


@dataclass(frozen=True)
class MetricColumn:
    """A column of a metric table: its type, meaning, and the raw columns (dataset, column) that feed it."""

    name: str
    type: str
    description: str
    lineage: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class MetricTable:
    """The shape of one metric table; every metric table has a `date` column holding the day D it describes."""

    name: str
    columns: tuple[MetricColumn, ...]
    cluster_by: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: _POLARS_TYPES[c.type] for c in self.columns}


@dataclass
class QueryStats:
    """What the warehouse reported for the queries of one materialization (metadata)."""

    rows_written: int = 0
    bytes_processed: list[int] = field(default_factory=list)

    def add(self, other: QueryStats) -> None:
        self.rows_written += other.rows_written
        self.bytes_processed.extend(other.bytes_processed)


def compile_sql(
    sql: str, dialect: str, schemas: Mapping[str, str], project: str | None = None, params: Params | None = None
) -> str:
    """The definition's SQL for one engine, with `raw.` and `metrics.` tables pointed at the configured schemas.

    `@tz` alone becomes a string literal built (and escaped) by sqlglot: the BigQuery emulator misreads a time zone
    given as a parameter to DATETIME(); the value is an IANA zone name checked when the settings are read.
    """
    tree = sqlglot.parse_one(sql, read=SOURCE_DIALECT)
    inlined = {name: params[name] for name in INLINED if params and name in params}

    def qualify(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.db in schemas:
            return exp.table_(node.name, db=schemas[node.db], catalog=project, alias=node.alias or None)
        if isinstance(node, exp.Parameter) and node.name in inlined:
            return exp.Literal.string(str(inlined[node.name]))
        return node

    return tree.transform(qualify).sql(dialect=dialect, identify=True)


class MetricEngine(Protocol):
    """What a metric needs from a warehouse; DuckDB and BigQuery implement it with the same semantics."""

    def ensure_table(self, table: MetricTable) -> None: ...

    def replace_day(self, table: MetricTable, sql: str, params: Params, day: date) -> QueryStats: ...

    def replace_day_from_frame(self, table: MetricTable, frame: pl.DataFrame, day: date) -> QueryStats: ...

    def fetch(self, sql: str, params: Params) -> tuple[pl.DataFrame, QueryStats]: ...

    def delete_before(self, table: MetricTable, day: date) -> int: ...

    def ensure_raw(self, datasets: Sequence[str]) -> None: ...


class DuckDBMetricEngine:
    """Metric tables in a second schema of the DuckDB file; one transaction per replaced day."""

    def __init__(self, path: str, raw_schema: str, metrics_schema: str, memory_limit: str) -> None:
        self.warehouse = DuckDBWarehouse(path, metrics_schema, memory_limit=memory_limit)
        self.schemas = {RAW: raw_schema, METRICS: metrics_schema}

    def table(self, name: str) -> str:
        return f"{quote(self.schemas[METRICS])}.{quote(name)}"

    def compile(self, sql: str, params: Params) -> str:
        return compile_sql(sql, "duckdb", self.schemas, params=params)

    def _ensure(self, con: duckdb.DuckDBPyConnection, table: MetricTable) -> None:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schemas[METRICS])}")
        columns = ", ".join(f"{quote(c.name)} {_DUCKDB_TYPES[c.type]}" for c in table.columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS {self.table(table.name)} ({columns})")

    def ensure_table(self, table: MetricTable) -> None:
        with self.warehouse.connect() as con:
            self._ensure(con, table)

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
        with self._day_transaction(table, day) as con:
            written = con.execute(
                f"INSERT INTO {self.table(table.name)} ({names}) SELECT {names} FROM ({self.compile(sql, params)}) AS m",
                bind(sql, params),
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
        with self.warehouse.connect() as con:
            frame = pl.from_arrow(con.sql(self.compile(sql, params), params=bind(sql, params)).to_arrow_table())
        assert isinstance(frame, pl.DataFrame)
        return frame, QueryStats()

    def ensure_raw(self, datasets: Sequence[str]) -> None:
        """Raw tables a metric reads exist (empty) even before their first export, as the raw IO manager does."""
        raw = DuckDBWarehouse(self.warehouse.path, self.schemas[RAW], memory_limit=self.warehouse.memory_limit)
        for name in datasets:
            raw.ensure_table(DATASETS[name], load_contracts()[name])

    def delete_before(self, table: MetricTable, day: date) -> int:
        with self.warehouse.connect() as con:
            self._ensure(con, table)
            sql = f"DELETE FROM {self.table(table.name)} WHERE {quote('date')} < $day"
            return int(con.execute(sql, {"day": day}).fetchone()[0])


def _bq_param(name: str, value: date | datetime | int | float | str) -> bigquery.ScalarQueryParameter:
    """A typed BigQuery query parameter (bool is refused: it is an int in Python and never meant here)."""
    if isinstance(value, datetime):
        kind = "TIMESTAMP"
    elif isinstance(value, date):
        kind = "DATE"
    elif isinstance(value, int) and not isinstance(value, bool):
        kind = "INT64"
    elif isinstance(value, float):
        kind = "FLOAT64"
    elif isinstance(value, str):
        kind = "STRING"
    else:
        raise TypeError(f"query parameter {name}: unsupported value {value!r}")
    return bigquery.ScalarQueryParameter(name, kind, value)


class BigQueryMetricEngine:
    """Metric tables in a second dataset, partitioned by `date`; a day is replaced in one BigQuery transaction."""

    def __init__(self, client: bigquery.Client, raw_dataset: str, metrics_dataset: str, location: str | None) -> None:
        self.client, self.location, self.project = client, location, client.project
        self.schemas = {RAW: raw_dataset, METRICS: metrics_dataset}

    def table_id(self, name: str) -> str:
        return f"{self.project}.{self.schemas[METRICS]}.{name}"

    def table(self, name: str) -> str:
        return ".".join(bq_quote(p) for p in (self.project, self.schemas[METRICS], name))

    def compile(self, sql: str, params: Params) -> str:
        return compile_sql(sql, "bigquery", self.schemas, self.project, params)

    def _job(self, sql: str, params: Params) -> bigquery.QueryJob:
        config = bigquery.QueryJobConfig(query_parameters=[_bq_param(k, v) for k, v in params.items()])
        job = self.client.query(sql, job_config=config, location=self.location)
        job.result()
        return job

    def ensure_table(self, table: MetricTable) -> None:
        dataset = bigquery.Dataset(f"{self.project}.{self.schemas[METRICS]}")
        if self.location:
            dataset.location = self.location
        self.client.create_dataset(dataset, exists_ok=True)
        schema = [
            bigquery.SchemaField(c.name, _BIGQUERY_TYPES[c.type], description=c.description[:1024])
            for c in table.columns
        ]
        created = bigquery.Table(self.table_id(table.name), schema=schema)
        created.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="date")
        created.clustering_fields = list(table.cluster_by) or None
        self.client.create_table(created, exists_ok=True)

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
        job = self._job(script, {**params, "metric_day": day})
        count = self._job(f"SELECT COUNT(*) FROM {target} WHERE {bq_quote('date')} = @metric_day", {"metric_day": day})
        rows = next(iter(count.result()))[0]
        return QueryStats(rows_written=int(rows), bytes_processed=[int(job.total_bytes_processed or 0)])

    def replace_day(self, table: MetricTable, sql: str, params: Params, day: date) -> QueryStats:
        return self._swap(table, self.compile(sql, params), bind(sql, params), day)

    def replace_day_from_frame(self, table: MetricTable, frame: pl.DataFrame, day: date) -> QueryStats:
        """Load the bounded frame into a staging table (a load job), then swap the day from it."""
        self.ensure_table(table)
        staging_id = self.table_id(f"_staging_{table.name}_{uuid.uuid4().hex[:12]}")
        staging = bigquery.Table(staging_id, schema=[
            bigquery.SchemaField(c.name, _BIGQUERY_TYPES[c.type]) for c in table.columns
        ])  # fmt: skip
        staging.expires = datetime.now(timezone.utc) + STAGING_TTL
        self.client.create_table(staging)
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
                    self.client.load_table_from_file(
                        handle, staging_id, job_config=config, location=self.location
                    ).result()
            relation = ".".join(bq_quote(p) for p in staging_id.split("."))
            return self._swap(table, f"SELECT * FROM {relation}", {}, day)
        finally:
            self.client.delete_table(staging_id, not_found_ok=True)

    def fetch(self, sql: str, params: Params) -> tuple[pl.DataFrame, QueryStats]:
        job = self._job(self.compile(sql, params), bind(sql, params))
        frame = pl.from_arrow(job.to_arrow(create_bqstorage_client=False))
        assert isinstance(frame, pl.DataFrame)
        return frame, QueryStats(bytes_processed=[int(job.total_bytes_processed or 0)])

    def ensure_raw(self, datasets: Sequence[str]) -> None:
        """Raw tables a metric reads exist (empty) even before their first export, as the raw IO manager does."""
        raw = BigQueryWarehouse(self.client, self.schemas[RAW], self.location)
        for name in datasets:
            raw.ensure_table(DATASETS[name], load_contracts()[name])

    def delete_before(self, table: MetricTable, day: date) -> int:
        self.ensure_table(table)
        job = self._job(f"DELETE FROM {self.table(table.name)} WHERE {bq_quote('date')} < @cutoff", {"cutoff": day})
        return int(job.num_dml_affected_rows or 0)


def parameter_names(sql: str) -> set[str]:
    """The named parameters (`@name`) a definition uses: only those are bound (DuckDB refuses extra ones)."""
    return {p.name for p in sqlglot.parse_one(sql, read=SOURCE_DIALECT).find_all(exp.Parameter)}


def bind(sql: str, params: Params) -> dict[str, date | datetime | int | float | str]:
    """The subset of the available values that the definition names; a missing one is an error here, not later."""
    wanted = parameter_names(sql) - set(INLINED)
    missing = wanted - set(params)
    if missing:
        raise KeyError(f"metric SQL names parameters without values: {sorted(missing)}")
    return {name: params[name] for name in sorted(wanted)}
