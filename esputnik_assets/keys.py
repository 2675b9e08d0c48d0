"""The names the raw tables go by in Dagster, in one neutral place every layer may import (assets, doctor, metrics)."""

import dagster as dg

RAW_GROUP = "esputnik"
RAW_KEY_PREFIX = "esputnik"
IO_MANAGER_KEY = "warehouse_io_manager"


def raw_asset_key(dataset: str) -> dg.AssetKey:
    """The asset key of a raw table: `esputnik/<dataset>`."""
    return dg.AssetKey([RAW_KEY_PREFIX, dataset])
