"""eSputnik's "Export to BigQuery" datasets as a Dagster asset graph (see README.md)."""

from esputnik_assets.definitions import defs

__all__ = ["defs"]
