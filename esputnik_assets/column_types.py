"""THE type map: a contract or metric column type -> its DuckDB type, its BigQuery type and its polars type.

The contracts (datasets.csv), the metric tables, both warehouses and every polars frame of the project read their
types here, so a column is typed the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class ColumnType:
    """One column type in each engine the project uses."""

    duckdb: str  # as DuckDB's information_schema reports it
    bigquery: str  # BigQuery standard SQL
    polars: pl.DataType


COLUMN_TYPES: dict[str, ColumnType] = {
    "int": ColumnType("BIGINT", "INT64", pl.Int64()),
    "float": ColumnType("DOUBLE", "FLOAT64", pl.Float64()),
    "string": ColumnType("VARCHAR", "STRING", pl.String()),
    "timestamp": ColumnType("TIMESTAMP WITH TIME ZONE", "TIMESTAMP", pl.Datetime("us", "UTC")),
    "json": ColumnType("JSON", "JSON", pl.String()),  # a JSON document, kept as text in polars
    "date": ColumnType("DATE", "DATE", pl.Date()),
}
