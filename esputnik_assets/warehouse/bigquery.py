"""The production warehouse: BigQuery tables named after the datasets, fact tables partitioned by day.

A write loads the spooled Parquet file into a staging table (a load job, no pandas), then changes the target in
one statement or one transaction:

- facts: `BEGIN TRANSACTION; DELETE the days; INSERT the staged rows; COMMIT TRANSACTION` (see `_swap_days`),
  so readers see the old days or the new ones, never an empty or half day;
- entities: one `MERGE` by key (see `_merge`).

The staging table is dropped afterwards, also after a failure, and expires by itself after a day in case the
process dies before it can drop it. A refused read (a day replaced by none or far fewer rows) keeps its staging
table until it expires, for inspection.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from google.api_core.exceptions import NotFound
from google.cloud import bigquery

from esputnik_assets.contracts import Column, DatasetContract
from esputnik_assets.spool import SEQ_COLUMN, SpooledDataset
from esputnik_assets.specs import DatasetSpec, WriteMode
from esputnik_assets.warehouse.base import (
    DayBounds,
    DayGuard,
    RefusedDaysError,
    SchemaConflictError,
    TableRead,
    WriteResult,
    by_day,
    day_verdicts,
    per_day,
    refuse_days,
)
from esputnik_assets.warehouse.sql import (
    METRICS,
    METRICS_SCHEMA,
    RAW,
    Params,
    bigquery_type,
    bind,
    bq_quote,
    column_list,
    compile_sql,
    latest_per_key,
    same_key,
)

_PRIVATE_KINDS = {pl.Int64: "int", pl.String: "string"}  # the spool's own columns (arrival number, place)
_LEGACY_NAMES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}  # what get_table() reports
STAGING_TTL = timedelta(days=1)
SOURCE_LABEL = "esputnik_source"  # table label: which account (demo or live) the rows came from


def schema_field(column: Column) -> bigquery.SchemaField:
    return bigquery.SchemaField(
        column.name,
        bigquery_type(column.type),
        mode="REPEATED" if column.repeated else "NULLABLE",
        description=column.description[:1024],
    )


def _one_file(parts: Sequence[Path], target: Path) -> Path:
    """One load job per read: the spool's parts, streamed batch by batch into a single Parquet file."""
    if len(parts) == 1:
        return parts[0]
    writer: pq.ParquetWriter | None = None
    try:
        for part in parts:
            for batch in pq.ParquetFile(part).iter_batches():
                writer = writer or pq.ParquetWriter(target, batch.schema, compression="snappy")
                writer.write_batch(batch)
    finally:
        if writer is not None:
            writer.close()
    return target


# Python type -> BigQuery parameter type; bool before int: a bool is an int in Python, BOOL in BigQuery.
_PARAMETER_TYPES = ((bool, "BOOL"), (int, "INT64"), (float, "FLOAT64"), (datetime, "TIMESTAMP"), (date, "DATE"),
                    (str, "STRING"))  # fmt: skip


def query_parameters(params: Params) -> list[bigquery.ScalarQueryParameter]:
    """THE parameter binder: named query parameters typed from their Python values."""
    out = []
    for name, value in params.items():
        kind = next((k for t, k in _PARAMETER_TYPES if isinstance(value, t)), None)
        if kind is None:
            raise TypeError(f"query parameter {name!r}: unsupported type {type(value).__name__}")
        out.append(bigquery.ScalarQueryParameter(name, kind, value))
    return out


def _staged_expression(column: Column) -> str:
    """JSON is staged as text (Parquet has no JSON type) and parsed on the way into the table."""
    name = bq_quote(column.name)
    return f"PARSE_JSON({name})" if column.type == "json" else name


class BigQueryWarehouse:
    """Writes spooled reads into one BigQuery dataset with the same semantics as the DuckDB warehouse."""

    def __init__(
        self, client: bigquery.Client, dataset: str, location: str | None = None, metrics_dataset: str = METRICS_SCHEMA,
        deadline: float | None = None,
    ) -> None:  # fmt: skip
        self.client, self.dataset, self.location = client, dataset, location
        # a deadline (seconds) bounds each API call with its retries, and each job's wait: the doctor's, not a write's
        self.limits: dict[str, object] = {}
        if deadline is not None:
            self.limits = {"retry": bigquery.DEFAULT_RETRY.with_timeout(deadline), "timeout": deadline}
        self.project = client.project
        self.schemas = {RAW: dataset, METRICS: metrics_dataset}
        self._tables: dict[str, bigquery.Table] = {}  # raw tables ensured by this engine, as `tables.get` answered

    def table_id(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{name}"

    def table(self, name: str, within: str = RAW) -> str:
        return ".".join(bq_quote(part) for part in (self.project, self.schemas[within], name))

    def _query(self, sql: str, params: Params | None = None) -> bigquery.QueryJob:
        config = bigquery.QueryJobConfig(query_parameters=query_parameters(params or {}))
        return self.client.query(sql, job_config=config, location=self.location, **self.limits)

    def job(self, sql: str, params: Params | None = None) -> bigquery.QueryJob:
        """A native statement run to its end; the finished job (its rows, bytes and affected rows)."""
        job = self._query(sql, params)
        job.result(**self.limits)
        return job

    def compile(self, sql: str, params: Params) -> str:
        return compile_sql(sql, "bigquery", self.schemas, self.project, params)

    def _run(self, sql: str, params: Params | None = None) -> bigquery.table.RowIterator:
        return self._query(sql, params).result()

    def _count(self, sql: str, params: Params | None = None) -> int:
        """The value of a query that answers one row with one count."""
        return int(next(iter(self._run(sql, params)))[0] or 0)

    # -- schema -------------------------------------------------------------------------------------------------

    def ensure_dataset(self, name: str | None = None) -> None:
        """The raw tables' dataset (or another one of the project), created on first use."""
        dataset = bigquery.Dataset(f"{self.project}.{name or self.dataset}")
        if self.location:
            dataset.location = self.location
        self.client.create_dataset(dataset, exists_ok=True, **self.limits)

    def ensure_table(self, spec: DatasetSpec, contract: DatasetContract) -> None:
        """Create the table with the contract schema on first use; add new contract columns; refuse changed types.

        Once per engine: an existing table costs one `tables.get`, whose answer (schema, labels) the write reuses.
        """
        if contract.name in self._tables:
            return
        try:
            existing = self.client.get_table(self.table_id(contract.name))
        except NotFound:
            existing = self._create_table(spec, contract)
        fields = {f.name: f for f in existing.schema}
        added = False
        for column in contract.columns:
            wanted = schema_field(column)
            found = fields.get(column.name)
            if found is None:
                self._run(f"ALTER TABLE {self.table(contract.name)} ADD COLUMN {bq_quote(column.name)} "
                          f"{bigquery_type(column.type, column.repeated)}")  # fmt: skip
                added = True
            elif (_LEGACY_NAMES.get(found.field_type, found.field_type), found.mode) != (wanted.field_type, wanted.mode):
                raise SchemaConflictError(
                    f"{contract.name}.{column.name} is {found.mode} {found.field_type} in {self.table_id(contract.name)} "
                    f"but the contract says {wanted.mode} {wanted.field_type}; the table was not changed"
                )
        self._tables[contract.name] = self.client.get_table(existing.reference) if added else existing

    def _create_table(self, spec: DatasetSpec, contract: DatasetContract) -> bigquery.Table:
        self.ensure_dataset()
        table = bigquery.Table(self.table_id(contract.name), schema=[schema_field(c) for c in contract.columns])
        table.description = spec.description
        if spec.write_mode is WriteMode.REPLACE_DAYS:
            table.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field=spec.partition_column
            )
            table.clustering_fields = list(spec.cluster_by) or None
        return self.client.create_table(table, exists_ok=True)

    # -- staging ------------------------------------------------------------------------------------------------

    def stage(self, contract: DatasetContract, spooled: SpooledDataset) -> str:
        """Load the spooled Parquet file into a fresh staging table (expiring by itself); returns its id."""
        staging_id = self.table_id(f"_staging_{contract.name}_{uuid.uuid4().hex[:12]}")
        private = pl.read_parquet_schema(spooled.parts[0])
        schema = [
            bigquery.SchemaField(c.name, "STRING", mode="NULLABLE") if c.type == "json" else schema_field(c)
            for c in contract.columns
        ] + [
            bigquery.SchemaField(name, bigquery_type(_PRIVATE_KINDS[type(dtype)]), mode="NULLABLE")
            for name, dtype in private.items()
            if name.startswith("_")
        ]
        table = bigquery.Table(staging_id, schema=schema)
        table.expires = datetime.now(timezone.utc) + STAGING_TTL
        self.client.create_table(table, **self.limits)
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=schema,
        )
        config.parquet_options = bigquery.ParquetOptions()
        config.parquet_options.enable_list_inference = True
        with tempfile.TemporaryDirectory(prefix="esputnik-load-") as scratch:
            upload = _one_file(spooled.parts, Path(scratch) / "load.parquet")
            with open(upload, "rb") as handle:
                load = self.client.load_table_from_file(handle, staging_id, job_config=config, location=self.location,
                                                        timeout=self.limits.get("timeout"))  # fmt: skip
                load.result(**self.limits)
        return staging_id

    def drop(self, table_id: str) -> None:
        self.client.delete_table(table_id, not_found_ok=True, **self.limits)

    def _latest_staged(self, spec: DatasetSpec, contract: DatasetContract, staging_id: str) -> str:
        staged, relation = ", ".join(_staged_expression(c) for c in contract.columns), self._quote_id(staging_id)
        return f"SELECT {staged} FROM {relation} {latest_per_key(relation, spec.dedupe_key, SEQ_COLUMN, bq_quote)}"

    @staticmethod
    def _quote_id(table_id: str) -> str:
        return ".".join(bq_quote(part) for part in table_id.split("."))

    # -- writes -------------------------------------------------------------------------------------------------

    def _day_counts(self, *scans: tuple[str, str, Sequence[DayBounds]]) -> list[tuple[dict[int, int], int]]:
        """Rows per day and in all of each (relation, column, days), in one query: one COUNTIF per day and a COUNT
        per relation, bounds bound as parameters."""
        selects, params = [], {}
        for k, (relation, column, days) in enumerate(scans):
            counts = [f"COUNT(*) AS q{k}_total"] + [
                f"COUNTIF({bq_quote(column)} >= @q{k}_s{i} AND {bq_quote(column)} < @q{k}_e{i}) AS q{k}_d{i}"
                for i in range(len(days))
            ]
            selects.append(f"(SELECT {', '.join(counts)} FROM {relation})")
            for i, d in enumerate(days):
                params |= {f"q{k}_s{i}": d.start, f"q{k}_e{i}": d.end}
        row = next(iter(self._run(f"SELECT * FROM {', '.join(selects)}", params)))
        return [
            ({i: int(row[f"q{k}_d{i}"] or 0) for i in range(len(days))}, int(row[f"q{k}_total"] or 0))
            for k, (_, _, days) in enumerate(scans)
        ]

    def replace_days(
        self,
        spec: DatasetSpec,
        contract: DatasetContract,
        spooled: SpooledDataset,
        days: Sequence[DayBounds],
        guard: DayGuard,
    ) -> WriteResult:
        """Judge the staged days against the stored ones, then swap them; a refused read's staging table is kept
        (it expires by itself) for inspection."""
        self.ensure_table(spec, contract)
        staging_id = self.stage(contract, spooled) if spooled.rows else None
        kept = False
        try:
            column, bounds, target = spec.partition_column, [*guard.history, *days], self.table(contract.name)
            staged = [(self._quote_id(staging_id), column, days)] if staging_id else []
            (stored, before), *read = self._day_counts((target, column, bounds), *staged)
            new = read[0][0] if read else {}
            try:
                refuse_days(contract.name, day_verdicts(days, guard, by_day(bounds, stored), by_day(days, new)), guard)
            except RefusedDaysError as refusal:
                kept = staging_id is not None
                raise refusal.kept_in(self._kept_at(staging_id)) from None
            self._swap_days(spec, contract, staging_id, days[0].start, days[-1].end)
            [(held, table_rows)] = self._day_counts((target, column, days))
        finally:
            if staging_id and not kept:
                self.drop(staging_id)
        result = per_day(days, new, held)
        replaced = sum(stored.get(i, 0) for i in range(len(guard.history), len(bounds)))
        return WriteResult(spooled.rows, sum(h for _, _, h in result), rows_replaced=replaced, per_day=result,
                           table_rows=table_rows)  # fmt: skip

    def day_counts(self, spec: DatasetSpec, bounds: Sequence[DayBounds]) -> dict[int, int]:
        """Stored rows per day (by position in `bounds`), in one scan."""
        return self._day_counts((self.table(spec.name), spec.partition_column, bounds))[0][0]

    def keep_refused(self, contract: DatasetContract, spooled: SpooledDataset) -> str | None:
        """Load a refused read into a staging table that is kept until it expires; says where."""
        return self._kept_at(self.stage(contract, spooled)) if spooled.rows else None

    @staticmethod
    def _kept_at(staging_id: str | None) -> str | None:
        if staging_id is None:
            return None
        return f"the BigQuery table {staging_id} (it expires by itself {STAGING_TTL.days} day after the run)"

    def _swap_days(
        self, spec: DatasetSpec, contract: DatasetContract, staging_id: str | None, start: datetime, end: datetime
    ) -> None:
        """THE atomic swap: the days' old rows go and the staged rows come in one transaction."""
        target, column = self.table(contract.name), bq_quote(spec.partition_column)
        statements = [f"DELETE FROM {target} WHERE {column} >= @start AND {column} < @end;"]
        if staging_id:
            statements.append(
                f"INSERT INTO {target} ({column_list(contract.column_names, bq_quote)}) "
                f"{self._latest_staged(spec, contract, staging_id)};"
            )
        script = "BEGIN TRANSACTION;\n" + "\n".join(statements) + "\nCOMMIT TRANSACTION;"
        self._run(script, {"start": start, "end": end})

    def upsert(self, spec: DatasetSpec, contract: DatasetContract, spooled: SpooledDataset) -> WriteResult:
        self.ensure_table(spec, contract)
        if spooled.rows == 0:
            return WriteResult(0, 0, table_rows=self.row_count(contract.name))
        staging_id = self.stage(contract, spooled)
        try:
            fresh, target = self._latest_staged(spec, contract, staging_id), self.table(contract.name)
            row = next(iter(self._run(
                f"SELECT (SELECT COUNT(*) FROM ({fresh})) AS fresh, (SELECT COUNT(*) FROM {target}) AS held, "
                f"(SELECT COUNT(*) FROM {target} AS t JOIN ({fresh}) AS s ON {same_key('s', 't', spec.key, bq_quote)}) "
                "AS matched"
            )))  # fmt: skip
            self._merge(spec, contract, fresh)
        finally:
            self.drop(staging_id)
        distinct, matched = int(row["fresh"]), int(row["matched"])
        after = int(row["held"]) + distinct - matched
        return WriteResult(spooled.rows, distinct, rows_updated=matched, table_rows=after)

    def _merge(self, spec: DatasetSpec, contract: DatasetContract, fresh: str) -> None:
        """THE atomic upsert: one MERGE statement by key."""
        names = contract.column_names
        updates = ", ".join(f"{bq_quote(n)} = s.{bq_quote(n)}" for n in names if n not in spec.key)
        self._run(
            f"MERGE {self.table(contract.name)} AS t USING ({fresh}) AS s ON {same_key('s', 't', spec.key, bq_quote)} "
            f"WHEN MATCHED THEN UPDATE SET {updates} "
            f"WHEN NOT MATCHED THEN INSERT ({column_list(names, bq_quote)}) "
            f"VALUES ({', '.join('s.' + bq_quote(n) for n in names)})"
        )

    def query(self, sql: str, params: Params | None = None) -> list[dict[str, object]]:
        """Project SQL (see `sql.compile_sql`) run here; for bounded results such as check figures."""
        params = params or {}
        return [dict(row.items()) for row in self.job(self.compile(sql, params), bind(sql, params)).result()]

    def frame(self, sql: str, params: Params | None = None) -> pl.DataFrame:
        """Project SQL run here, its answer as a polars frame (Arrow, no pandas)."""
        return self.frame_and_job(sql, params or {})[0]

    def frame_and_job(self, sql: str, params: Params) -> tuple[pl.DataFrame, bigquery.QueryJob]:
        """Project SQL's answer and its job (for the bytes it processed)."""
        job = self.job(self.compile(sql, params), bind(sql, params))
        frame = pl.from_arrow(job.to_arrow(create_bqstorage_client=False))
        assert isinstance(frame, pl.DataFrame)
        return frame, job

    def column_type(self, column: Column) -> str:
        """A contract column's type as `stored_columns` reports it."""
        return bigquery_type(column.type, column.repeated)

    def stored_columns(self, name: str) -> list[tuple[str, str]]:
        """The table's columns in order with their engine types; empty when the table does not exist."""
        try:
            table = self.client.get_table(self.table_id(name))
        except NotFound:
            return []
        return [
            (f.name, ("ARRAY<" if f.mode == "REPEATED" else "") + _LEGACY_NAMES.get(f.field_type, f.field_type)
             + (">" if f.mode == "REPEATED" else ""))
            for f in table.schema
        ]  # fmt: skip

    # -- provenance -------------------------------------------------------------------------------------------

    def source_of(self, name: str) -> str | None:
        """The source recorded in the table's `esputnik_source` label, None if none was recorded."""
        table = self._tables.get(name) or self.client.get_table(self.table_id(name))
        return table.labels.get(SOURCE_LABEL)

    def record_source(self, name: str, source: str) -> None:
        table = self._tables.get(name) or self.client.get_table(self.table_id(name))
        table.labels = {**table.labels, SOURCE_LABEL: source}
        updated = self.client.update_table(table, ["labels"])
        if name in self._tables:
            self._tables[name] = updated

    # -- reads --------------------------------------------------------------------------------------------------

    def row_count(self, name: str) -> int:
        return self._count(f"SELECT COUNT(*) FROM {self.table(name)}")

    def preview(self, name: str, rows: int) -> list[dict[str, object]]:
        """The table's first rows by `tabledata.list`, which is free (a `SELECT ... LIMIT` scans the whole table)."""
        table = self._tables.get(name) or self.table_id(name)  # a known schema saves the `tables.get`
        return [dict(row.items()) for row in self.client.list_rows(table, max_results=rows)]

    def read(self, rows: TableRead) -> pl.DataFrame:
        """Rows of a table as BigQuery types them over Arrow (JSON as its text)."""
        frame = pl.from_arrow(self._query(*self._select(rows)).to_arrow(create_bqstorage_client=False))
        assert isinstance(frame, pl.DataFrame)
        return frame

    def spill(self, rows: TableRead, path: Path) -> None:
        """Rows of a table written to a Parquet file page by page: never held whole in memory."""
        writer: pq.ParquetWriter | None = None
        try:
            for batch in self._query(*self._select(rows)).result().to_arrow_iterable(bqstorage_client=None):
                writer = writer or pq.ParquetWriter(path, batch.schema)
                writer.write_batch(batch)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:  # no rows: an empty file of the table's columns
            pq.write_table(self.read(rows).to_arrow(), path)

    def _select(self, rows: TableRead) -> tuple[str, dict[str, object]]:
        columns = rows.contract.columns if rows.contract is not None else ()
        names = ", ".join(
            f"TO_JSON_STRING({bq_quote(c.name)}) AS {bq_quote(c.name)}" if c.type == "json" else bq_quote(c.name)
            for c in columns
        ) or "*"
        sql = f"SELECT {names} FROM {self.table(rows.name, rows.within)}"
        if rows.column is None or rows.bounds is None:
            return sql, {}
        return sql + f" WHERE {bq_quote(rows.column)} >= @start AND {bq_quote(rows.column)} < @end", dict(
            zip(("start", "end"), rows.bounds)
        )
