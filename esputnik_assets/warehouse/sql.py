"""The project's one SQL path: queries written once in BigQuery's dialect, compiled by sqlglot for each engine.

Every query the project runs on tables it does not write itself (metrics, checks, previews, downstream reads) is
written in BigQuery's dialect (the production engine) against `raw.<dataset>` and `metrics.<metric>`, with named
parameters (`@day`, `@start`, ...) that the engine's driver binds: values are never formatted into the text.
`compile_sql` points the two schemas at the configured, quoted ones and writes the engine's dialect; compilations
are cached, so a query run for many days or tables is parsed once. The engines' own write statements (loads,
swaps, merges) stay native to each engine, built from the helpers below with identifiers always quoted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from functools import lru_cache

import sqlglot
from sqlglot import exp

from esputnik_assets.column_types import COLUMN_TYPES

SOURCE_DIALECT = "bigquery"
RAW, METRICS = "raw", "metrics"  # the schema names project SQL is written against
METRICS_SCHEMA = "esputnik_metrics"  # the metric tables' schema (dataset) unless configured
INLINED = ("tz",)  # parameters compiled into the text as escaped literals (see compile_sql)
Params = Mapping[str, date | datetime | int | float | str | bool]

def duckdb_type(kind: str, repeated: bool = False) -> str:
    """A column type in DuckDB, as its information_schema reports it."""
    return COLUMN_TYPES[kind].duckdb + ("[]" if repeated else "")


def bigquery_type(kind: str, repeated: bool = False) -> str:
    """A column type in BigQuery's standard SQL (`ARRAY<...>` for a repeated column)."""
    base = COLUMN_TYPES[kind].bigquery
    return f"ARRAY<{base}>" if repeated else base


def quote(identifier: str) -> str:
    """A double-quoted identifier of DuckDB's native statements."""
    return '"' + identifier.replace('"', '""') + '"'


def bq_quote(identifier: str) -> str:
    """A backtick-quoted identifier: project SQL (BigQuery's dialect) and BigQuery's native statements."""
    return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"


def column_list(names: Sequence[str], quote_fn=quote) -> str:
    return ", ".join(quote_fn(n) for n in names)


def latest_per_key(relation: str, key: Sequence[str], order_column: str, quote_fn=quote) -> str:
    """WHERE clause keeping the last-read row of each key (equal keys inside one read are one row); with rows that
    share their parent copy's arrival number (`DatasetSpec.copy_key`), the last-read copy whole.

    A semi-join on the arrival number: only the key and that number are grouped, so it needs far less memory
    than a window over whole rows, and it is the same SQL in DuckDB and BigQuery.
    """
    return (
        f"WHERE {quote_fn(order_column)} IN (SELECT MAX({quote_fn(order_column)}) FROM {relation} "
        f"GROUP BY {column_list(key, quote_fn)})"
    )


def same_key(left: str, right: str, key: Sequence[str], quote_fn=quote) -> str:
    """Key equality that also matches NULL to NULL (a key column may be null, e.g. a revenue row's message)."""
    return " AND ".join(f"{left}.{quote_fn(k)} IS NOT DISTINCT FROM {right}.{quote_fn(k)}" for k in key)


def compile_sql(
    sql: str, dialect: str, schemas: Mapping[str, str], project: str | None = None, params: Params | None = None
) -> str:
    """Project SQL for one engine ("duckdb" or "bigquery"), with `raw.` and `metrics.` tables pointed at the
    configured schemas (and project).

    `@tz` alone becomes a string literal built (and escaped) by sqlglot: the BigQuery emulator misreads a time zone
    given as a parameter to DATETIME(); the value is an IANA zone name checked when the settings are read.
    """
    inlined = tuple((name, str(params[name])) for name in INLINED if params and name in params)
    return _compiled(sql, dialect, tuple(sorted(schemas.items())), project, inlined)


@lru_cache(maxsize=1024)
def _compiled(
    sql: str, dialect: str, schemas: tuple[tuple[str, str], ...], project: str | None,
    inlined: tuple[tuple[str, str], ...],
) -> str:  # fmt: skip
    tree, targets, literals = sqlglot.parse_one(sql, read=SOURCE_DIALECT), dict(schemas), dict(inlined)

    def qualify(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.db in targets:
            return exp.table_(node.name, db=targets[node.db], catalog=project, alias=node.alias or None)
        if isinstance(node, exp.Parameter) and node.name in literals:
            return exp.Literal.string(literals[node.name])
        return node

    return tree.transform(qualify).sql(dialect=dialect, identify=True)


@lru_cache(maxsize=1024)
def parameter_names(sql: str) -> frozenset[str]:
    """The named parameters (`@name`) a query uses: only those are bound (DuckDB refuses extra ones)."""
    return frozenset(p.name for p in sqlglot.parse_one(sql, read=SOURCE_DIALECT).find_all(exp.Parameter))


def bind(sql: str, params: Params) -> dict[str, date | datetime | int | float | str | bool]:
    """The subset of the available values that the query names; a missing one is an error here, not later."""
    wanted = parameter_names(sql) - set(INLINED)
    missing = wanted - set(params)
    if missing:
        raise KeyError(f"SQL names parameters without values: {sorted(missing)}")
    return {name: params[name] for name in sorted(wanted)}
