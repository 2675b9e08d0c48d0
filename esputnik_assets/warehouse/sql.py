"""SQL text helpers shared by the warehouses: identifiers are always quoted, values always bound as parameters."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import sqlglot
from sqlglot import exp


def quote(identifier: str) -> str:
    """A double-quoted identifier (DuckDB; BigQuery uses backticks, see bigquery.py)."""
    return '"' + identifier.replace('"', '""') + '"'


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


@lru_cache(maxsize=256)
def portable(sql: str, dialect: str, schema: str, project: str | None = None) -> str:
    """One query text for both engines: DuckDB SQL with `$name` parameters and bare table names, qualified with the
    warehouse's schema (and project) and written in `dialect` ("duckdb" or "bigquery", where `$name` becomes `@name`).
    """

    def qualify(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and not node.args.get("db") and node.name:
            node.set("db", exp.to_identifier(schema, quoted=True))
            if project:
                node.set("catalog", exp.to_identifier(project, quoted=True))
        return node

    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    return tree.transform(lambda n: n if isinstance(n, exp.Table) and n.name in ctes else qualify(n)).sql(dialect=dialect)
