"""The embedded warehouse: a DuckDB file, tables in schema `esputnik` named after the datasets.

Every write is one transaction: a replaced day is deleted and re-inserted together, an upsert deletes the keys it
brings and inserts them together, so a failure half-way leaves the table exactly as it was.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from esputnik_assets.contracts import Column, DatasetContract
from esputnik_assets.spool import SEQ_COLUMN, SpooledDataset
from esputnik_assets.specs import DatasetSpec
from esputnik_assets.warehouse.base import (
    SOURCES,
    TableRead,
    DayBounds,
    DayGuard,
    RefusedDaysError,
    SchemaConflictError,
    WarehouseError,
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
    bind,
    column_list,
    compile_sql,
    duckdb_type,
    latest_per_key,
    quote,
    same_key,
)

SOURCE_COMMENT = "esputnik_source="


def _files(spooled: SpooledDataset) -> list[str]:
    return [str(part) for part in spooled.parts]


class DuckDBWarehouse:
    """Writes spooled reads into a DuckDB file. Everything inside one `connect` (a write with its figures, a step's
    checks) shares one connection; outside it each operation opens a short one, so parallel steps share the file."""

    def __init__(
        self,
        path: str,
        schema: str = "esputnik",
        *,
        metrics_schema: str = METRICS_SCHEMA,
        lock_timeout: float = 300.0,
        memory_limit: str = "48MB",
        log: logging.Logger | None = None,
    ):
        self.path, self.schema = path, schema
        self.schemas = {RAW: schema, METRICS: metrics_schema}
        self.lock_timeout, self.memory_limit = lock_timeout, memory_limit
        self.log = log or logging.getLogger(__name__)
        self.ensured: set[str] = set()  # tables this engine has ensured: once per table, not once per operation
        self._session: duckdb.DuckDBPyConnection | None = None

    def table(self, name: str, within: str = RAW) -> str:
        return f"{quote(self.schemas[within])}.{quote(name)}"

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The engine's one connection: opened by the outermost `connect`, shared by every nested one (a write and
        its figures, a step's checks), closed when the outermost ends."""
        if self._session is not None:
            yield self._session
            return
        self._session = self._open()
        try:
            yield self._session
        finally:
            con, self._session = self._session, None
            con.close()

    def _open(self) -> duckdb.DuckDBPyConnection:
        """A configured connection, waiting while another process holds the file's write lock."""
        folder = Path(self.path).parent
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            self.log.warning("Created the folder %s for the DuckDB file %s", folder.resolve(), Path(self.path).name)
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                con = duckdb.connect(self.path)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.05, 0.5))
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"SET memory_limit = '{self.memory_limit}'")
            con.execute("SET preserve_insertion_order = false")  # lets large inserts stream instead of buffer
        except BaseException:
            con.close()
            raise
        return con

    # -- schema -------------------------------------------------------------------------------------------------

    def ensure_table(self, spec: DatasetSpec, contract: DatasetContract) -> None:
        """Create the schema and table on first use; add contract columns that are new; refuse a changed type."""
        with self.connect() as con:
            self._ensure_table(con, contract)

    def _ensure_table(self, con: duckdb.DuckDBPyConnection, contract: DatasetContract) -> None:
        if contract.name in self.ensured:
            return
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}")
        columns = ", ".join(f"{quote(c.name)} {duckdb_type(c.type, c.repeated)}" for c in contract.columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS {self.table(contract.name)} ({columns})")
        existing = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ?",
                [self.schema, contract.name],
            ).fetchall()
        )
        for column in contract.columns:
            wanted = duckdb_type(column.type, column.repeated)
            found = existing.get(column.name)
            if found is None:
                con.execute(f"ALTER TABLE {self.table(contract.name)} ADD COLUMN {quote(column.name)} {wanted}")
            elif found.upper() != wanted:
                raise SchemaConflictError(
                    f"{contract.name}.{column.name} is {found} in {self.path} but the contract says {wanted}; "
                    "the table was not changed (migrate it by hand)"
                )
        self.ensured.add(contract.name)

    # -- writes -------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, contract: DatasetContract) -> Iterator[duckdb.DuckDBPyConnection]:
        """One connection with the table ensured and everything inside one transaction, rolled back on any failure."""
        with self.connect() as con:
            self._ensure_table(con, contract)
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def replace_days(
        self,
        spec: DatasetSpec,
        contract: DatasetContract,
        spooled: SpooledDataset,
        days: Sequence[DayBounds],
        guard: DayGuard,
    ) -> WriteResult:
        """Swap whole local days of a fact table in one transaction: readers see the old days or the new ones.

        The days are judged inside the transaction (no other write can come between the judgement and the swap);
        a refused read is kept in the quarantine schema for inspection.
        """
        column, bounds = quote(spec.partition_column), [*guard.history, *days]
        try:
            with self._transaction(contract) as con:
                stored = self._day_counts(con, self.table(contract.name), column, bounds, [])
                new = self._day_counts(con, "read_parquet(?)", column, days, [_files(spooled)]) if spooled.rows else {}
                refuse_days(contract.name, day_verdicts(days, guard, by_day(bounds, stored), by_day(days, new)), guard)
                replaced = self._delete_days(con, contract, column, days[0].start, days[-1].end)
                written = self._insert_latest(con, spec, contract, spooled) if spooled.rows else 0
                held = self._day_counts(con, self.table(contract.name), column, days, []) if written else {}
                table_rows = self._count(con, contract.name)
        except RefusedDaysError as refusal:
            raise refusal.kept_in(self.keep_refused(contract, spooled)) from None
        return WriteResult(spooled.rows, written, rows_replaced=replaced, per_day=per_day(days, new, held),
                           table_rows=table_rows)  # fmt: skip

    def day_counts(self, spec: DatasetSpec, bounds: Sequence[DayBounds]) -> dict[int, int]:
        """Stored rows per day (by position in `bounds`), in one scan."""
        with self.connect() as con:
            return self._day_counts(con, self.table(spec.name), quote(spec.partition_column), bounds, [])

    def keep_refused(self, contract: DatasetContract, spooled: SpooledDataset) -> str | None:
        """Copy a refused read into a table of the quarantine schema (`<schema>_quarantine`); says where."""
        if not spooled.rows:
            return None
        schema = f"{self.schema}_quarantine"
        name = f"{contract.name}_{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}_{uuid.uuid4().hex[:6]}"
        with self.connect() as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
            con.execute(f"CREATE TABLE {quote(schema)}.{quote(name)} AS SELECT * FROM read_parquet($spool)",
                        {"spool": _files(spooled)})  # fmt: skip
        return f"the table {schema}.{name} of {self.path} (drop it when done)"

    def _day_counts(
        self, con: duckdb.DuckDBPyConnection, relation: str, column: str, days: Sequence[DayBounds], params: list
    ) -> dict[int, int]:
        rows = con.execute(
            f"SELECT d.i, count(*) FROM {relation} AS t "
            "JOIN (SELECT unnest(?) AS s, unnest(?) AS e, unnest(?) AS i) AS d "
            f"ON t.{column} >= d.s AND t.{column} < d.e GROUP BY d.i",
            [*params, [d.start for d in days], [d.end for d in days], list(range(len(days)))],
        ).fetchall()
        return {int(i): int(n) for i, n in rows}

    def _delete_days(
        self, con: duckdb.DuckDBPyConnection, contract: DatasetContract, column: str, start: datetime, end: datetime
    ) -> int:
        return con.execute(
            f"DELETE FROM {self.table(contract.name)} WHERE {column} >= ? AND {column} < ?", [start, end]
        ).fetchone()[0]

    def _insert_latest(
        self, con: duckdb.DuckDBPyConnection, spec: DatasetSpec, contract: DatasetContract, spooled: SpooledDataset
    ) -> int:
        names, staged = column_list(contract.column_names), "read_parquet($spool)"
        return con.execute(
            f"INSERT INTO {self.table(contract.name)} ({names}) SELECT {names} FROM {staged} "
            f"{latest_per_key(staged, spec.dedupe_key, SEQ_COLUMN)}",
            {"spool": _files(spooled)},
        ).fetchone()[0]

    def upsert(self, spec: DatasetSpec, contract: DatasetContract, spooled: SpooledDataset) -> WriteResult:
        """Current state by key: rows whose key exists replace it, the rest are added; one transaction."""
        if spooled.rows == 0:
            self.ensure_table(spec, contract)
            return WriteResult(0, 0, table_rows=self.row_count(contract.name))
        target, names, staged = self.table(contract.name), column_list(contract.column_names), "read_parquet($spool)"
        with self._transaction(contract) as con:
            con.execute(
                f"CREATE TEMP TABLE fresh AS SELECT {names} FROM {staged} {latest_per_key(staged, spec.dedupe_key, SEQ_COLUMN)}",
                {"spool": _files(spooled)},
            )
            matched = f"EXISTS (SELECT 1 FROM fresh WHERE {same_key('fresh', 't', spec.key)})"
            updated = con.execute(f"DELETE FROM {target} AS t WHERE {matched}").fetchone()[0]
            written = self._insert_fresh(con, target, names)
            con.execute("DROP TABLE fresh")
            table_rows = self._count(con, contract.name)
        return WriteResult(spooled.rows, written, rows_updated=updated, table_rows=table_rows)

    def _insert_fresh(self, con: duckdb.DuckDBPyConnection, target: str, names: str) -> int:
        return con.execute(f"INSERT INTO {target} ({names}) SELECT {names} FROM fresh").fetchone()[0]

    def query(self, sql: str, params: Params | None = None) -> list[dict[str, object]]:
        """Project SQL (see `sql.compile_sql`) run here; for bounded results such as check figures."""
        with self.connect() as con:
            cursor = con.execute(self.compile(sql, params or {}), bind(sql, params or {}))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def frame(self, sql: str, params: Params | None = None) -> pl.DataFrame:
        """Project SQL run here, its answer as a polars frame (Arrow, no pandas)."""
        params = params or {}
        with self.connect() as con:
            frame = pl.from_arrow(con.sql(self.compile(sql, params), params=bind(sql, params)).to_arrow_table())
        assert isinstance(frame, pl.DataFrame)
        return frame

    def compile(self, sql: str, params: Params) -> str:
        return compile_sql(sql, "duckdb", self.schemas, params=params)

    def column_type(self, column: Column) -> str:
        """A contract column's type as `stored_columns` reports it."""
        return duckdb_type(column.type, column.repeated)

    def stored_columns(self, name: str) -> list[tuple[str, str]]:
        """The table's columns in order with their engine types; empty when the table does not exist."""
        with self.connect() as con:
            return con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [self.schema, name],
            ).fetchall()

    # -- provenance -------------------------------------------------------------------------------------------

    def source_of(self, name: str) -> str | None:
        """The source recorded in the table's comment (`esputnik_source=demo|live`), None if none was recorded."""
        with self.connect() as con:
            row = con.execute(
                "SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?", [self.schema, name]
            ).fetchone()
        comment = (row[0] or "") if row else ""
        return comment.removeprefix(SOURCE_COMMENT) if comment.startswith(SOURCE_COMMENT) else None

    def record_source(self, name: str, source: str) -> None:
        if source not in SOURCES:  # a literal in SQL below: only the two known words may get there
            raise ValueError(f"unknown source {source!r}")
        with self.connect() as con:
            con.execute(f"COMMENT ON TABLE {self.table(name)} IS '{SOURCE_COMMENT}{source}'")

    # -- reads --------------------------------------------------------------------------------------------------

    def row_count(self, name: str) -> int:
        with self.connect() as con:
            return self._count(con, name)

    def _count(self, con: duckdb.DuckDBPyConnection, name: str) -> int:
        return int(con.execute(f"SELECT count(*) FROM {self.table(name)}").fetchone()[0])

    def preview(self, name: str, rows: int) -> list[dict[str, object]]:
        """The table's first rows, for the asset page."""
        with self.connect() as con:
            cursor = con.execute(f"SELECT * FROM {self.table(name)} LIMIT {int(rows)}")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def read(self, rows: TableRead) -> pl.DataFrame:
        """Rows of a table as DuckDB types them (a raw table: the contract's columns, in order)."""
        query, params = self._select(rows)
        with self.connect() as con:
            if rows.contract is not None:
                self._ensure_table(con, rows.contract)
            frame = pl.from_arrow(con.sql(query, params=params).to_arrow_table())
        if not isinstance(frame, pl.DataFrame):
            raise WarehouseError(f"{rows.name}: unexpected read result")
        return frame

    def spill(self, rows: TableRead, path: Path) -> None:
        """Rows of a table written to a Parquet file by DuckDB itself, streaming: never held whole in memory."""
        query, params = self._select(rows)
        with self.connect() as con:
            if rows.contract is not None:
                self._ensure_table(con, rows.contract)
            con.sql(query, params=params).write_parquet(str(path))

    def _select(self, rows: TableRead) -> tuple[str, list]:
        names = column_list(rows.contract.column_names) if rows.contract is not None else "*"
        query = f"SELECT {names} FROM {self.table(rows.name, rows.within)}"
        if rows.column is None or rows.bounds is None:
            return query, []
        return query + f" WHERE {quote(rows.column)} >= ? AND {quote(rows.column)} < ?", list(rows.bounds)
