"""SQL text helpers shared by the warehouses: identifiers are always quoted, values always bound as parameters."""

from __future__ import annotations

from collections.abc import Sequence


def quote(identifier: str) -> str:
    """A double-quoted identifier (DuckDB; BigQuery uses backticks, see bigquery.py)."""
    return '"' + identifier.replace('"', '""') + '"'


def column_list(names: Sequence[str], quote_fn=quote) -> str:
    return ", ".join(quote_fn(n) for n in names)


def latest_per_key(key: Sequence[str], order_column: str, quote_fn=quote) -> str:
    """Filter keeping the last-read row of each key (equal keys inside one read are one row).

    `WHERE TRUE` because BigQuery accepts QUALIFY only beside a WHERE, GROUP BY or HAVING clause.
    """
    return (
        f"WHERE TRUE QUALIFY row_number() OVER (PARTITION BY {column_list(key, quote_fn)} "
        f"ORDER BY {quote_fn(order_column)} DESC) = 1"
    )


def same_key(left: str, right: str, key: Sequence[str], quote_fn=quote) -> str:
    """Key equality that also matches NULL to NULL (a key column may be null, e.g. a revenue row's message)."""
    return " AND ".join(f"{left}.{quote_fn(k)} IS NOT DISTINCT FROM {right}.{quote_fn(k)}" for k in key)
